"""The weight-only sensitivity against nncf's and a float64 recomputation."""

from __future__ import annotations

import numpy as np
import pytest

from optimum_wc.kernels.errors import int8_quantization_error, weight_sensitivity


def _float64_error(weight: np.ndarray) -> float:
    w = weight.astype(np.float64)
    low, high = np.minimum(w.min(1, keepdims=True), 0), np.maximum(w.max(1, keepdims=True), 0)
    scale = (high - low) / 255
    zero_point = np.clip(-np.round(low / scale), 0, 255)
    restored = (np.clip(np.round(w / scale + zero_point), 0, 255) - zero_point) * scale
    return float(np.max(np.mean((restored - w) ** 2, axis=1)))


@pytest.mark.parametrize("shape", [(16, 64), (64, 256)])
def test_error_matches_float64_and_nncf(shape):
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.weight_lowering import get_integer_quantization_error
    from nncf.tensor import Tensor

    weight = np.random.default_rng(6).normal(size=shape).astype(np.float32)
    ours = float(int8_quantization_error(weight, (1,)))
    assert ours == pytest.approx(_float64_error(weight), rel=1e-4)
    reference = get_integer_quantization_error(Tensor(weight), (1,), WeightCompressionConfig(), reduction="max_mean")
    assert ours == pytest.approx(reference, rel=1e-6)


def test_sensitivity_uses_the_weight_dtype_epsilon():
    weight = np.zeros((4, 8), dtype=np.float16)  # error 0: the score is 1 / eps(float16)
    assert weight_sensitivity(weight, (1,)) == pytest.approx(1 / float(np.finfo(np.float16).eps))
    assert weight_sensitivity(weight.astype(np.float32), (1,)) == pytest.approx(1 / float(np.finfo(np.float32).eps))


def test_noisier_weight_is_less_sensitive_score():
    rng = np.random.default_rng(7)
    smooth = rng.normal(0, 0.01, size=(8, 64)).astype(np.float32)
    wide = rng.normal(0, 1.0, size=(8, 64)).astype(np.float32)
    assert weight_sensitivity(smooth, (1,)) > weight_sensitivity(wide, (1,))
