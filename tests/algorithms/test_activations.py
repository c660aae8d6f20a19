"""Reduced activations: which items AWQ and scale estimation keep, and the channel magnitudes."""

import numpy as np

from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples


def test_magnitudes_use_all_items_and_samples_follow_token_count():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(10, 6)).astype(np.float32)
    tokens = (5, 9, 9, 1, 7, 3, 9, 2, 8, 4)
    s, x = magnitudes_and_samples(InputStatistics(means, tokens), subset_size=4)
    np.testing.assert_array_equal(s, np.abs(means).max(axis=0))
    # step 10 // 4 = 2 over items sorted by descending token count, ties in item order: 1 2 6 8 4 0 9 5 7 3
    np.testing.assert_array_equal(x, means[[1, 6, 4, 9, 7]].T)


def test_all_items_kept_when_the_subset_is_large_enough():
    means = np.arange(12, dtype=np.float32).reshape(3, 4)
    _, x = magnitudes_and_samples(InputStatistics(means, (1, 2, 3)), subset_size=3)
    np.testing.assert_array_equal(x, means.T)


def test_scaled_and_sliced():
    stats = InputStatistics(np.ones((2, 4), dtype=np.float32), (3, 3))
    np.testing.assert_array_equal(stats.scaled(np.array([1, 2, 3, 4], dtype=np.float32)).means[1], [1, 2, 3, 4])
    assert stats.sliced(1, 3).means.shape == (2, 2)
