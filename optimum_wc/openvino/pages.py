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
import os
import sys

import numpy as np

MADV_DONTNEED = 4  # Linux

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


Region = tuple[int, int, str]  # [low, high) and the mapped file's path


def _read_regions() -> tuple[Region, ...]:
    """The shared mappings of a file that the process cannot write through, from ``/proc/self/maps``."""
    regions = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.rstrip("\n").split(maxsplit=5)
                if len(fields) < 6 or fields[1][1] != "-" or fields[1][3] != "s" or fields[4] == "0":
                    continue
                if fields[5].startswith("/"):
                    low, high = (int(value, 16) for value in fields[0].split("-"))
                    regions.append((low, high, fields[5]))
    except OSError:
        return ()
    return tuple(regions)


def mappings_of(path: str | os.PathLike) -> list[tuple[int, int]]:
    """The address ranges ``[low, high)`` where the process maps the file ``path`` shared and read-only."""
    source = os.path.realpath(path)
    return [(low, high) for low, high, mapped in _read_regions() if mapped == source]


def _still_mapped(region: Region) -> bool:
    """Whether exactly this mapping of this file still exists (one ``readlink``, not a read of the whole map)."""
    low, high, path = region
    try:
        return os.readlink(f"/proc/self/map_files/{low:x}-{high:x}") == path
    except OSError:  # gone, split, or the link cannot be read here
        return False


_regions: tuple[Region, ...] = ()  # as last read; an entry is trusted only after _still_mapped says so


def _inside_shared_read_only_file_mapping(start: int, stop: int) -> bool:
    """Whether ``[start, stop)`` lies in one shared mapping of a file that the process cannot write through.

    The map read last time is reused when the mapping it shows around ``[start, stop)`` still exists (a mapping
    unmapped since, and memory mapped anew at its addresses, fails that check); otherwise the map is read again.
    """
    global _regions

    def find(regions: tuple[Region, ...]) -> Region | None:
        return next((r for r in regions if r[0] <= start and stop <= r[1]), None)

    cached = find(_regions)
    if cached is not None and _still_mapped(cached):
        return True
    _regions = _read_regions()
    return find(_regions) is not None


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
