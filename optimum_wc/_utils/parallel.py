"""Running numpy work on a few threads (numpy releases the GIL in its heavy loops), results in input order.

While the workers run, BLAS (numpy's OpenBLAS) is held to one thread: each worker's small matrix products would
otherwise start threads of their own on the same cores. A product's rounding can depend on the BLAS thread count
(OpenBLAS's Haswell and Zen kernels split a matrix into tiles by thread and sum the edge tiles in another order),
so work whose products must equal those the caller's BLAS setting gives (nncf's, for parity) asks
``ordered_map(..., blas_exact=True)``: it then runs on worker threads only where BLAS has one thread anyway.

Worker functions must not call OpenVINO: concurrent access to constants of a model can deadlock against the main
thread. Read what they need on the main thread, in the ``items`` iterable, which is consumed lazily there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
import functools
import os
from typing import Callable, Iterable, Iterator, TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return os.cpu_count() or 1


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # the BLAS libraries loaded at the first call: numpy's by then


def blas_threads() -> int:
    """The largest thread count of the BLAS libraries loaded (1 when threadpoolctl sees none)."""
    return max((info["num_threads"] for info in _controller().info() if info["user_api"] == "blas"), default=1)


def single_threaded_blas() -> AbstractContextManager:
    """BLAS held to one thread inside the block (a BLAS that threadpoolctl does not know runs as it is)."""
    return _controller().limit(limits=1, user_api="blas")


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, blas_exact: bool = False
) -> Iterator[tuple[T, R]]:
    """Yields ``(item, fn(item))`` in order, computing at most ``workers + 1`` results ahead of the consumer.

    ``items`` is iterated on the calling thread, one item ahead of each submission, so a generator that reads
    weights keeps at most ``workers + 1`` of them alive. With ``blas_exact``, ``fn``'s matrix products run at the
    BLAS thread count of the caller: on this thread unless that count is one.
    """
    if blas_exact and blas_threads() > 1:
        workers = 1
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) > workers:
                first, future = pending.pop(0)
                yield first, future.result()
        for item, future in pending:
            yield item, future.result()
