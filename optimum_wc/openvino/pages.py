"""Giving back the resident pages of a weight read from a memory-mapped ``.bin`` once the weight has been used.

OpenVINO reads an IR's weights by mapping the ``.bin`` read-only; a weight's pages become resident when it is read
and stay counted in the process's resident memory until the whole mapping goes. They are clean file pages (the
system can drop and re-read them), but a model compressed weight by weight would otherwise end with all of its
float weights resident. ``release(array)`` tells the kernel the process no longer needs the pages wholly inside
``array`` (``madvise(MADV_DONTNEED)``); a later read faults them in again from the file, with the same bytes.

Only memory inside a shared, read-only mapping of a file (how OpenVINO maps a ``.bin``) is released: its pages are
the file's, so nothing can be lost; for anonymous or private memory the call could discard data, so anything else
(a copy, a weight built in memory, a platform without ``/proc/self/maps``) is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys

import numpy as np

MADV_DONTNEED = 4  # Linux

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


def _inside_shared_read_only_file_mapping(start: int, stop: int) -> bool:
    """Whether ``[start, stop)`` lies in one shared mapping of a file that the process cannot write through."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                low, high = (int(value, 16) for value in fields[0].split("-"))
                if low <= start and stop <= high:
                    read_only_shared = fields[1][1] == "-" and fields[1][3] == "s"
                    return read_only_shared and len(fields) >= 6 and fields[4] != "0" and fields[5].startswith("/")
    except OSError:
        return False
    return False


def release(array: np.ndarray) -> int:
    """Drops the resident pages wholly inside ``array`` if it is a view of a shared read-only file mapping; returns
    the bytes released (0 when nothing was)."""
    if _libc is None or array.nbytes == 0:
        return 0
    page = mmap.PAGESIZE
    begin = array.ctypes.data
    start = -(-begin // page) * page  # whole pages only: neighbours may still be in use
    stop = (begin + array.nbytes) // page * page
    if stop <= start or not _inside_shared_read_only_file_mapping(start, stop):
        return 0
    if _libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(stop - start), MADV_DONTNEED) != 0:
        return 0
    return stop - start
