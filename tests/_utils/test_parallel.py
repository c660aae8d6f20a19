"""Numpy work on a few threads: results in input order, items read lazily, BLAS on one thread meanwhile."""

from __future__ import annotations

import threading

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from optimum_wc._utils.parallel import ordered_map


def _blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_results_come_in_input_order_and_items_are_read_at_most_one_submission_ahead():
    read = []

    def items():
        for index in range(12):
            read.append(index)
            yield index

    seen = []
    for item, result in ordered_map(lambda i: (i * i, threading.get_ident()), items(), workers=2):
        assert len(read) <= item + 4  # the item handed out, the workers' items and one more
        seen.append((item, result[0]))
    assert seen == [(i, i * i) for i in range(12)]


def test_blas_runs_on_one_thread_while_the_workers_run_and_as_before_after():
    before = _blas_threads()
    assert before, "numpy's BLAS is not visible to threadpoolctl"
    inside = [threads for _, threads in ordered_map(lambda _: _blas_threads(), range(3), workers=2)]
    assert inside == [[1] * len(before)] * 3
    assert _blas_threads() == before


@pytest.mark.parametrize("threads", [1, 2])
def test_blas_exact_work_runs_at_the_callers_blas_thread_count(threads):
    """A product's rounding may depend on the BLAS thread count (OpenBLAS's Haswell kernel), so work that must
    give the caller's products runs on the calling thread unless BLAS has one thread anyway."""
    caller = threading.get_ident()
    with threadpool_limits(limits=threads, user_api="blas"):
        seen = [
            result
            for _, result in ordered_map(
                lambda _: (threading.get_ident(), _blas_threads()), range(4), workers=2, blas_exact=True
            )
        ]
    assert all(blas == [threads] * len(blas) for _, blas in seen)
    on_caller = [ident == caller for ident, _ in seen]
    assert all(on_caller) if threads > 1 else not any(on_caller)
