"""Greedy selection of the primary-precision weights by ratio."""

from __future__ import annotations

from optimum_wc.algorithms.mixed_precision import select_primary


def test_takes_least_sensitive_first_and_stops_at_first_overflow():
    sizes = [10, 10, 10, 10]
    scores = [4.0, 1.0, 3.0, 2.0]
    # ascending scores: 1 (idx1), 2 (idx3), 3 (idx2); 30/40 = 0.75 >= 0.7 stops before the third
    assert select_primary(sizes, scores, 0.7) == [1, 3]
    assert select_primary(sizes, scores, 0.76) == [1, 3, 2]


def test_stops_even_if_a_later_smaller_weight_would_fit():
    sizes = [10, 100, 1]
    scores = [1.0, 2.0, 3.0]
    assert select_primary(sizes, scores, 0.5) == [0]


def test_ties_keep_model_order():
    assert select_primary([1, 1, 1, 1], [5.0, 5.0, 5.0, 5.0], 0.6) == [0, 1]


def test_ratio_zero_selects_nothing():
    assert select_primary([3, 4], [1.0, 2.0], 0.0) == []
