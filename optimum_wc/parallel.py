"""Running numpy work on a few threads (numpy releases the GIL in its heavy loops), results in input order.

Worker functions must not call OpenVINO: concurrent access to constants of a model can deadlock against the main
thread. Read what they need on the main thread, in the ``items`` iterable, which is consumed lazily there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import os
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return os.cpu_count() or 1


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[tuple[T, R]]:
    """Yields ``(item, fn(item))`` in order, computing at most ``workers + 1`` results ahead of the consumer.

    ``items`` is iterated on the calling thread, one item ahead of each submission, so a generator that reads
    weights keeps at most ``workers + 1`` of them alive.
    """
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) > workers:
                first, future = pending.pop(0)
                yield first, future.result()
        for item, future in pending:
            yield item, future.result()

