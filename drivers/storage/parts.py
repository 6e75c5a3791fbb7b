"""Sending a stream as parts (S3 multipart, Azure blocks): part sizes that
grow so a provider's part-count limit is never reached, regrouping chunks
into parts, and sending up to ``parallel`` parts at once with memory bounded
by the parts in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor


def part_size_at(base: int, number: int, maximum: int) -> int:
    """The size of part ``number`` (1-based): ``base``, doubling every 1,000
    parts, at most ``maximum``: 10,000 parts of 8 MiB would stop at 78 GiB,
    these reach terabytes."""
    return min(maximum, base << ((number - 1) // 1000))


def parts_of(chunks: Iterable[bytes], sizes: Callable[[int], int]) -> Iterator[bytes]:
    """Regroup ``chunks`` into parts of ``sizes(number)`` bytes (the last may
    be short; an empty stream is one empty part)."""
    buffer = bytearray()
    number = 1
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= sizes(number):
            size = sizes(number)
            with memoryview(buffer) as view:
                part = bytes(view[:size])  # one copy, not two
            del buffer[:size]
            number += 1
            yield part
            del part
    if buffer or number == 1:
        yield bytes(buffer)


def chain(ahead: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """``ahead``'s parts (dropping each as it goes), then ``rest``."""
    while ahead:
        yield ahead.pop(0)
    yield from rest


def send_parts(
    parts: Iterator[bytes],
    send: Callable[[int, bytes], str],
    parallel: int,
    name: str,
    seen: Callable[[bytes], None] | None = None,
) -> tuple[list[str], int]:
    """``send(number, data)`` every part, ``parallel`` at a time, in a pool of
    threads called ``name``; returns what each send returned, in order, and
    the bytes sent. ``seen`` sees every part, in order, as it goes.

    A part is read from ``parts`` only once a slot is free, so memory holds
    ``parallel`` parts (and the one filling). The first failure stops the
    reading and is raised; parts not yet started are cancelled."""
    slots = threading.BoundedSemaphore(parallel)
    futures: list[Future[str]] = []
    written = 0

    def sent(number: int, data: bytes) -> str:
        try:
            return send(number, data)
        finally:
            slots.release()

    with ThreadPoolExecutor(parallel, thread_name_prefix=name) as pool:
        try:
            number = 0
            while True:
                slots.acquire()
                data = next(parts, None)
                if data is None:
                    slots.release()
                    break
                number += 1
                if seen is not None:
                    seen(data)
                written += len(data)
                failed = [future for future in futures if future.done() and future.exception()]
                if failed:
                    slots.release()
                    failed[0].result()
                futures.append(pool.submit(sent, number, data))
                del data
            return [future.result() for future in futures], written
        except BaseException:
            for future in futures:
                future.cancel()
            raise
