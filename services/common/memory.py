"""Keeping a streaming process's memory bounded by the data in flight.

Object data moves in parts of megabytes (8 MiB S3 parts, several in flight).
glibc serves such blocks with mmap and returns them to the system on free --
until the first free, after which it raises its mmap threshold to that size
and serves the next parts from per-thread heaps that keep what was freed:
measured with bench/storage.py, a 512 MiB upload to S3 then grew the API
process by 74 MiB instead of 44. Fixing the threshold keeps every big buffer
on mmap, so memory follows the parts in flight.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOG = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
#: Blocks from this size on go to mmap and back to the system when freed.
THRESHOLD = 1024 * 1024


def return_big_buffers_to_the_system() -> bool:
    """Fix glibc's mmap threshold (a no-op elsewhere); True when it was set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    LOG.debug("mmap threshold fixed at %d bytes: %s", THRESHOLD, done)
    return done
