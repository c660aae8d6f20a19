"""NF4 kernel: levels, the two rounding rules at decision boundaries, and agreement with nncf."""

from __future__ import annotations

import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.kernels import compress, decompress
from optimum_wc.kernels.nf4 import NF4_LEVELS, NF4_MIDPOINTS, OPENVINO_NF4_BOUNDARIES, nf4_indices


def _near(values: np.ndarray, ulps: int = 3) -> np.ndarray:
    out = [values]
    low, high = values.copy(), values.copy()
    for _ in range(ulps):
        low, high = np.nextafter(low, np.float32(-2)), np.nextafter(high, np.float32(2))
        out += [low, high]
    return np.concatenate(out).astype(np.float32)


def _openvino_nf4(values: np.ndarray) -> np.ndarray:
    """OpenVINO's own f32 -> nf4 conversion, read back as level indices."""
    count = values.size
    if count % 2:  # nf4 packs two values a byte
        values = np.append(values, np.float32(0))
    constant = opset.constant(values, dtype=ov.Type.nf4)
    restored = ov.Core().compile_model(ov.Model([opset.convert(constant, ov.Type.f32)], []), "CPU")({})[0]
    return np.searchsorted(NF4_LEVELS, restored)[:count]


def test_levels_are_sorted_and_symmetric_bounds():
    assert NF4_LEVELS[0] == -1 and NF4_LEVELS[7] == 0 and NF4_LEVELS[-1] == 1
    assert np.all(np.diff(NF4_LEVELS) > 0)
    assert np.all((NF4_MIDPOINTS > NF4_LEVELS[:-1]) & (NF4_MIDPOINTS < NF4_LEVELS[1:]))


def test_openvino_rounding_matches_openvino_at_every_boundary():
    values = _near(np.concatenate([OPENVINO_NF4_BOUNDARIES, NF4_MIDPOINTS]))
    values = np.concatenate([values, np.random.default_rng(0).uniform(-1, 1, 5000).astype(np.float32)])
    expected = _openvino_nf4(values)
    np.testing.assert_array_equal(nf4_indices(values, openvino_rounding=True), expected)


def test_midpoint_rule_sends_ties_down():
    indices = nf4_indices(NF4_MIDPOINTS, openvino_rounding=False)
    np.testing.assert_array_equal(indices, np.arange(15))
    indices = nf4_indices(np.nextafter(NF4_MIDPOINTS, np.float32(2)), openvino_rounding=False)
    np.testing.assert_array_equal(indices, np.arange(1, 16))


@pytest.mark.parametrize("shape", [(16, 64), (128, 128)], ids=["numpy-path", "openvino-path"])
def test_matches_nncf(shape):
    """Small weights follow nncf's numpy path, weights of 10k elements or more its OpenVINO path."""
    from nncf import CompressWeightsMode
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.weight_lowering import compress_weight
    from nncf.tensor import Tensor

    weight = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    weight[0, :32] = NF4_MIDPOINTS[:15].repeat(3)[:32] * np.abs(weight[0, :32]).max()  # values on boundaries
    config = WeightCompressionConfig(mode=CompressWeightsMode.NF4, group_size=32)
    reference = compress_weight(Tensor(ov.Tensor(weight)), (1,), config)
    ours = compress(weight, (1,), "nf4", 32)
    np.testing.assert_array_equal(ours.scale, reference.scale.data)
    expected = np.searchsorted(NF4_LEVELS, reference.tensor.as_numpy_tensor().data)
    np.testing.assert_array_equal(ours.codes, expected)


def test_dequantize_within_half_the_widest_gap():
    weight = np.random.default_rng(5).normal(size=(8, 64)).astype(np.float32)
    result = compress(weight, (1,), "nf4", 16)
    error = np.abs(decompress(result) - weight).reshape(8, 4, 16)
    assert np.all(error <= result.scale * np.diff(NF4_LEVELS).max() / 2 * 1.0001)
