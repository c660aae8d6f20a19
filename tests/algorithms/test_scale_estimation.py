"""Scale estimation: never worse than min-max on its own objective, checked in float64."""

import numpy as np
import pytest

from optimum_wc import kernels
from optimum_wc.algorithms.scale_estimation import estimate_scale
from optimum_wc.config.advanced import AdvancedScaleEstimationParameters


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
    estimated = estimate_scale(
        weight, s, x, mode, group_size, AdvancedScaleEstimationParameters(initial_steps=5, scale_steps=5)
    )
    baseline = _output_error(weight, x, mode, group_size)
    improved = _output_error(weight, x, mode, group_size, estimated.scale, estimated.zero_point)
    assert np.all(improved <= baseline * (1 + 1e-4) + 1e-9)
    assert improved.sum() < baseline.sum() * 0.98  # and it does improve
    minmax = kernels.compress(weight, (1,), mode, group_size)
    assert estimated.scale.shape == minmax.scale.shape
    if minmax.zero_point is not None:
        np.testing.assert_array_equal(estimated.zero_point, minmax.zero_point)


@pytest.mark.parametrize("mode", ["int4_sym", "int4_asym", "nf4"])
@pytest.mark.parametrize("shape", [(64, 96), (128, 512)], ids=["below-10000", "above-10000"])
@pytest.mark.parametrize("switch", [False, True], ids=["openvino-path", "path-off"])
def test_a_weight_stored_transposed_gives_nncfs_float32_scales(mode, shape, switch, monkeypatch):
    """nncf's sums over a group round according to the memory order of its arrays: the weight's own (strided, for a
    weight stored ``[in, out]``) below 10000 elements or with its OpenVINO path switched off, C order above. Ours
    on the transposed view follows it; checked against nncf's own function, bit for bit."""
    from nncf.common.tensor_statistics.statistics import WCTensorStatistic
    from nncf.parameters import CompressWeightsMode
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.scale_estimation import ScaleEstimation
    from nncf.tensor import Tensor

    from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples
    from optimum_wc.kernels.nncf_paths import OPENVINO_PATH_SWITCH

    if switch:
        monkeypatch.setenv(OPENVINO_PATH_SWITCH, "1")
    rng = np.random.default_rng(5)
    channels, outputs = shape
    stored = rng.standard_normal((channels, outputs)).astype(np.float32)  # [in, out]: reduction axis 0
    means = rng.standard_normal((8, channels)).astype(np.float32)
    statistics = WCTensorStatistic([Tensor(m) for m in means], [(1, 5, channels)] * 8)
    config = WeightCompressionConfig(mode=CompressWeightsMode(mode), group_size=32)
    expected, _ = ScaleEstimation.calculate_quantization_params(statistics, Tensor(stored), (0,), config, 2, 32, 5, 5)
    s, x = magnitudes_and_samples(InputStatistics(means, (5,) * 8), 32)
    ours = estimate_scale(stored.T, s, x, mode, 32, AdvancedScaleEstimationParameters(32, 5, 5))
    np.testing.assert_array_equal(np.moveaxis(ours.scale, -3, -1), expected.data)
