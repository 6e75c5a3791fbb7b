"""Checking a Static Large Object as it streams: each segment's MD5, as its
manifest names it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from drivers.errors import HashMismatch
from drivers.storage.swift.auth import PROVIDER


def verified_segments(
    chunks: Iterable[bytes], expected: list[tuple[str, int]], what: str
) -> Iterator[bytes]:
    """Yield ``chunks``; raise :class:`HashMismatch` as soon as a segment's
    MD5 (``expected``: (md5 hex, size) per segment) differs, or bytes run past
    the last segment."""
    index, current, left = 0, hashlib.md5(), expected[0][1] if expected else 0
    for chunk in chunks:
        view = memoryview(chunk)
        while len(view):
            take = view[:left]
            current.update(take)
            left -= len(take)
            view = view[len(take) :]
            if left == 0 and index < len(expected):
                if current.hexdigest() != expected[index][0]:
                    raise HashMismatch(
                        f"{what}: MD5 of segment {index + 1}",
                        expected=expected[index][0],
                        actual=current.hexdigest(),
                        provider=PROVIDER,
                    )
                index += 1
                current = hashlib.md5()
                left = expected[index][1] if index < len(expected) else 0
            if left == 0 and index >= len(expected) and len(view):
                raise HashMismatch(
                    f"{what}: bytes past the last segment",
                    expected="end",
                    actual="more",
                    provider=PROVIDER,
                )
        yield chunk
