"""Integer kernels against nncf's reference implementation and a float64 recomputation of the formulas."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
import numpy as np
import pytest

from optimum_wc.kernels import compress, decompress
from optimum_wc.kernels.integer import asymmetric_parameters, symmetric_scale

MODES = ["int8_asym", "int8_sym", "int4_asym", "int4_sym"]


def _reference(weight, mode, group_size):
    """nncf's own numpy path (its optimized OpenVINO path is switched off for small inputs anyway)."""
    os.environ["NNCF_DISABLE_OPTIMIZED_COMPRESSION"] = "1"
    try:
        from nncf import CompressWeightsMode
        from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
        from nncf.quantization.algorithms.weight_compression.weight_lowering import do_integer_quantization
        from nncf.tensor import Tensor

        config = WeightCompressionConfig(mode=CompressWeightsMode(mode), group_size=group_size)
        result = do_integer_quantization(Tensor(weight), config, reduction_axes=(1,))
        zero_point = None if result.zero_point is None else result.zero_point.data
        return result.tensor.data, result.scale.data, zero_point
    finally:
        del os.environ["NNCF_DISABLE_OPTIMIZED_COMPRESSION"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("group_size", [-1, 16, 64])
def test_matches_nncf_reference(mode, group_size):
    weight = np.random.default_rng(1).normal(0, 0.05, size=(24, 128)).astype(np.float32)
    weight[3] = 0.0  # all-zero row
    weight[5] = 0.25  # constant row
    weight[7, :] = np.abs(weight[7, :])  # no negative values
    ours = compress(weight, (1,), mode, group_size)
    codes, scale, zero_point = _reference(weight, mode, group_size)
    np.testing.assert_array_equal(ours.codes, codes)
    np.testing.assert_array_equal(ours.scale, scale)
    if zero_point is None:
        assert ours.zero_point is None
    else:
        np.testing.assert_array_equal(ours.zero_point, zero_point)


def _float64_asym(weight, bits):
    low = np.minimum(weight.min(axis=-1, keepdims=True), 0).astype(np.float64)
    high = np.maximum(weight.max(axis=-1, keepdims=True), 0).astype(np.float64)
    scale = np.maximum((high - low) / (2**bits - 1), np.finfo(np.float32).eps)
    zero_point = np.clip(-np.round(low / scale), 0, 2**bits - 1)
    codes = np.clip(np.round(weight / scale + zero_point), 0, 2**bits - 1)
    return (codes - zero_point) * scale


@pytest.mark.parametrize("bits", [8, 4])
def test_asymmetric_within_one_step_of_float64(bits):
    weight = np.random.default_rng(2).uniform(-1, 3, size=(16, 64)).astype(np.float32)
    ours = decompress(compress(weight, (1,), f"int{bits}_asym", -1))
    scale, _ = asymmetric_parameters(weight, 1, bits)
    assert np.all(np.abs(ours - _float64_asym(weight, bits)) <= scale * 1.0001)
    assert np.all(np.abs(ours - weight) <= scale / 2 * 1.0001)


def test_symmetric_scale_is_signed_toward_the_largest_magnitude():
    weight = np.array([[-4.0, 1.0, 2.0], [-1.0, 0.5, 3.0]], dtype=np.float32)
    scale = symmetric_scale(weight, 1, 4)
    np.testing.assert_allclose(scale[:, 0], [4.0 / 8, -3.0 / 8])
    codes = compress(weight, (1,), "int4_sym", -1).codes
    assert codes[0, 0] == -8 and codes[1, 2] == -8


def test_grouped_layout_and_ranges():
    weight = np.random.default_rng(3).normal(size=(8, 256)).astype(np.float32)
    result = compress(weight, (1,), "int4_asym", 32)
    assert result.codes.shape == (8, 8, 32) and result.scale.shape == (8, 8, 1)
    assert result.codes.dtype == np.uint8 and result.codes.max() <= 15
    assert result.zero_point.dtype == np.int32 and result.zero_point.max() <= 15
    sym = compress(weight, (1,), "int4_sym", 32)
    assert sym.codes.dtype == np.int8 and sym.codes.min() >= -8 and sym.codes.max() <= 7
    assert decompress(result).shape == weight.shape


FLOAT_VALUES = st.one_of(
    st.floats(-1e4, 1e4, width=32),
    st.sampled_from([0.0, 1e-30, -1e-30, 1e-41, 6e4, -6e4]),  # zeros, denormals, near the f16 limit
)


@settings(max_examples=200, deadline=None, derandomize=True)  # the same examples on every run
@given(
    mode=st.sampled_from(MODES),
    group=st.sampled_from([-1, 4, 8]),
    dtype=st.sampled_from([np.float32, np.float16]),
    data=st.data(),
)
def test_property_finite_scales_and_bounded_error(mode, group, dtype, data):
    """No NaN or zero scale; the round trip stays within one quantization step.

    (One step, not half: the rounded zero point of asymmetric modes and the clipped positive side of symmetric
    modes can each add half a step at the ends of the range.)"""
    rows = data.draw(st.integers(1, 4))
    weight = data.draw(arrays(np.float32, (rows, 16), elements=FLOAT_VALUES)).astype(dtype)
    result = compress(weight, (1,), mode, group)
    assert np.isfinite(result.scale).all() and (np.abs(result.scale) > 0).all()
    grouped = weight.astype(np.float32).reshape(result.codes.shape)
    error = np.abs(decompress(result).reshape(grouped.shape).astype(np.float64) - grouped)
    rounding = 4 * np.finfo(np.float32).eps * np.abs(grouped).astype(np.float64)  # float32 arithmetic on the value
    assert np.all(error <= np.abs(result.scale).astype(np.float64) * (1 + 1e-6) + rounding)


@pytest.mark.parametrize("mode", MODES + ["nf4"])
@pytest.mark.parametrize("group_size", [-1, 32])
def test_large_weights_compressed_in_row_blocks_give_the_same_result(mode, group_size, monkeypatch):
    from optimum_wc.kernels import registry

    weight = np.random.default_rng(3).normal(0, 0.05, size=(1000, 128)).astype(np.float16)
    whole = compress(weight, (1,), mode, group_size)
    monkeypatch.setattr(registry, "BLOCK_ELEMENTS", 30_000)  # 5 blocks of 200 rows (25,600 elements each)
    blocked = compress(weight, (1,), mode, group_size)
    assert blocked.codes.shape == whole.codes.shape and np.array_equal(blocked.codes, whole.codes)
    assert np.array_equal(blocked.scale, whole.scale)
    assert (whole.zero_point is None) == (blocked.zero_point is None)
    if whole.zero_point is not None:
        assert np.array_equal(blocked.zero_point, whole.zero_point)


def test_blocks_never_split_a_row_even_for_wide_weights(monkeypatch):
    from optimum_wc.kernels import registry

    weight = np.random.default_rng(4).normal(0, 0.05, size=(3, 40_000)).astype(np.float32)
    whole = compress(weight, (1,), "int4_sym", 32)
    monkeypatch.setattr(registry, "BLOCK_ELEMENTS", 10_000)  # would ask for 12 blocks of 3 rows
    blocked = compress(weight, (1,), "int4_sym", 32)
    assert np.array_equal(blocked.codes, whole.codes) and np.array_equal(blocked.scale, whole.scale)


@pytest.mark.parametrize("zero_point", [None, 3])
def test_levels_without_the_integer_round_trip_equal_it_for_zero_and_nan_scales(zero_point):
    """A zero scale (0 / 0) or a NaN one gives NaN codes; both functions set them alike (test_nncf_paths.py)."""
    from optimum_wc.kernels.integer import integer_levels, quantize_integer, quantized_integer_levels

    weight = np.zeros((4, 8), dtype=np.float32)
    weight[2] = np.linspace(-1, 1, 8)
    scale = np.array([[0.0], [np.nan], [0.1], [0.0]], dtype=np.float32)
    zero = None if zero_point is None else np.full((4, 1), zero_point, dtype=np.uint8)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = integer_levels(quantize_integer(weight, scale, zero, 4), zero)
        np.testing.assert_array_equal(quantized_integer_levels(weight, scale, zero, 4), expected)
