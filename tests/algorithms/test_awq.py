"""AWQ scales: the data-free formula, and the data-aware search only where it lowers the error."""

import numpy as np

from optimum_wc import kernels
from optimum_wc.algorithms.awq import data_aware_scale, data_free_scale
from optimum_wc.config.advanced import AdvancedAWQParameters


def test_data_free_scale_is_inverse_mean_magnitude():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(6, 5)).astype(np.float32)
    weight[:, 2] = 0
    expected = 1 / np.maximum(np.abs(weight.astype(np.float64)).mean(axis=0), np.finfo(np.float32).eps)
    np.testing.assert_allclose(data_free_scale(weight), expected, rtol=1e-6)


def _group_error(weight, x, c, mode):
    q = kernels.decompress(kernels.compress(weight * c, (1,), mode, -1)).astype(np.float64)
    return np.mean(np.abs(q @ (x / c[:, None]).astype(np.float64) - weight.astype(np.float64) @ x.astype(np.float64)))


def test_data_aware_scale_touches_only_salient_groups_and_lowers_their_error():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(16, 64)).astype(np.float32)
    x = rng.normal(size=(64, 12)).astype(np.float32)
    x[37] *= 40  # one salient channel, in group 2 of 16
    s = np.abs(x).max(axis=1)
    c = data_aware_scale(weight, s, x, "int4_sym", 16, AdvancedAWQParameters())
    assert np.all(c[:32] == 1) and np.all(c[48:] == 1)
    assert np.any(c[32:48] != 1)
    group = slice(32, 48)
    assert _group_error(weight[:, group], x[group], c[group], "int4_sym") < _group_error(
        weight[:, group], x[group], np.ones(16, dtype=np.float32), "int4_sym"
    )
