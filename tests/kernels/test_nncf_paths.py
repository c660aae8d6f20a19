"""NaN codes (from a NaN or zero scale) as nncf's two arithmetic paths give them, checked against nncf itself."""

from __future__ import annotations

import numpy as np
import pytest

from optimum_wc.kernels.integer import integer_levels, quantize_integer, quantized_integer_levels
from optimum_wc.kernels.nncf_paths import OPENVINO_PATH_MIN_SIZE, OPENVINO_PATH_SWITCH, openvino_path

MODES = {"int4_sym": (4, False), "int4_asym": (4, True), "int8_sym": (8, False), "int8_asym": (8, True)}


@pytest.mark.parametrize("switch", [False, True], ids=["openvino-path", "path-off"])
@pytest.mark.parametrize("rows", [2, OPENVINO_PATH_MIN_SIZE // 32 + 1], ids=["small", "large"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_nan_codes_are_nncfs(mode, rows, switch, monkeypatch):
    from nncf.parameters import CompressWeightsMode
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.weight_lowering import do_integer_quantization
    from nncf.tensor import Tensor

    if switch:
        monkeypatch.setenv(OPENVINO_PATH_SWITCH, "1")
    bits, asymmetric = MODES[mode]
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((rows, 32)).astype(np.float32)
    weight[1] = 0.0  # 0 / 0
    scale = np.full((rows, 1), 0.05, dtype=np.float32)
    scale[0], scale[1] = np.nan, 0.0
    zero_point = np.full((rows, 1), 2 ** (bits - 1), dtype=np.int32) if asymmetric else None
    config = WeightCompressionConfig(mode=CompressWeightsMode(mode), group_size=-1)
    expected = do_integer_quantization(
        Tensor(weight), config, (1,), Tensor(scale), None if zero_point is None else Tensor(zero_point)
    ).tensor.data
    with np.errstate(invalid="ignore", divide="ignore"):
        codes = quantize_integer(weight, scale, zero_point, bits)
        levels = quantized_integer_levels(weight, scale, zero_point, bits)
    np.testing.assert_array_equal(codes.astype(np.int32), np.asarray(expected).astype(np.int32))
    np.testing.assert_array_equal(levels, integer_levels(codes, zero_point))
    assert openvino_path(weight.size) == (rows > 2 and not switch)
