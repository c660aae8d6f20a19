"""Numpy work on a few threads: results in input order, items read lazily, BLAS on one thread meanwhile."""

from __future__ import annotations

import threading

import numpy as np
from threadpoolctl import threadpool_info

from optimum_wc.parallel import ordered_map


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
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 200), dtype=np.float32)
    inside = [(threads, product) for _, (threads, product) in
              ordered_map(lambda _: (_blas_threads(), a @ a.T), range(3), workers=2)]  # fmt: skip
    assert all(threads == [1] * len(before) for threads, _ in inside)
    assert all(np.array_equal(product, a @ a.T) for _, product in inside)  # the same sums on one thread
    assert _blas_threads() == before
