"""Scale estimation: never worse than min-max on its own objective, checked in float64."""

import numpy as np
import pytest

from optimum_wc import kernels
from optimum_wc.algorithms.scale_estimation import ScaleEstimationSettings, estimate_scale


def _output_error(weight, x, mode, group_size, scale=None, zero_point=None) -> np.ndarray:
    """Squared output error per row and group, float64, with the given (or min-max) parameters."""
    compressed = kernels.compress(weight, (1,), mode, group_size, scale, zero_point)
    dequantized = kernels.decompress(compressed).astype(np.float64)
    out, channels = weight.shape
    gs = channels if group_size == -1 else group_size
    w = weight.astype(np.float64).reshape(out, -1, gs)
    q = dequantized.reshape(out, -1, gs)
    xg = x.astype(np.float64).reshape(-1, gs, x.shape[1])
    return np.einsum("ogk,gkn->ogn", w - q, xg).__pow__(2).mean(-1)


@pytest.mark.parametrize("mode", ["int4_sym", "int4_asym", "nf4"])
@pytest.mark.parametrize("group_size", [16, -1])
def test_never_worse_than_min_max_and_keeps_the_zero_point(mode, group_size):
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(24, 64)).astype(np.float32)
    x = (rng.normal(size=(64, 20)) * rng.uniform(0.1, 3, size=(64, 1))).astype(np.float32)
    s = np.abs(x).max(axis=1)
    estimated = estimate_scale(weight, s, x, mode, group_size, ScaleEstimationSettings(initial_steps=5, scale_steps=5))
    baseline = _output_error(weight, x, mode, group_size)
    improved = _output_error(weight, x, mode, group_size, estimated.scale, estimated.zero_point)
    assert np.all(improved <= baseline * (1 + 1e-4) + 1e-9)
    assert improved.sum() < baseline.sum() * 0.98  # and it does improve
    minmax = kernels.compress(weight, (1,), mode, group_size)
    assert estimated.scale.shape == minmax.scale.shape
    if minmax.zero_point is not None:
        np.testing.assert_array_equal(estimated.zero_point, minmax.zero_point)
