"""Property-based tests of every kernel (hypothesis): random shapes and group sizes, constant rows, all-zero rows,
denormals, very large and very small magnitudes, float16 and bfloat16 inputs.

For each: no NaN or zero scale; codes in range; the same codes and scales as the float32 formulas of the module
docstrings, recomputed here independently; dequantized values within one quantization step of the float64 value.
Packing, grouping, the sensitivity score and the GPTQ/AWQ unpacking are checked too. Examples are derandomized:
every run draws the same ones.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from optimum_wc.checkpoints import unpack_columns, unpack_rows
from optimum_wc.kernels import compress, decompress
from optimum_wc.kernels.errors import int8_quantization_error, weight_sensitivity
from optimum_wc.kernels.groups import GroupSizeMismatch, group_weight
from optimum_wc.kernels.nf4 import NF4_LEVELS
from optimum_wc.kernels.packing import pack
from optimum_wc.kernels.registry import KERNELS

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)
EPS32 = np.float32(np.finfo(np.float32).eps)
INTEGER_MODES = {"int8_asym": (8, False), "int8_sym": (8, True), "int4_asym": (4, False), "int4_sym": (4, True)}


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32."""
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


ROW_KINDS = ("normal", "constant", "zero", "denormal", "outlier")


@st.composite
def weights(draw) -> tuple[np.ndarray, int]:
    """A 2-D weight [rows, channels] and a group size (-1 or a divisor of channels), rows of assorted kinds."""
    dtype = draw(st.sampled_from(["float32", "float16", "bfloat16"]))
    group = draw(st.sampled_from([-1, 2, 4, 8, 16, 32]))
    channels = (16 if group == -1 else group) * draw(st.integers(1, 4))
    rows = draw(st.integers(1, 5))
    max_exponent = 4 if dtype == "float16" else 30  # float16 overflows above 65504
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = np.empty((rows, channels), dtype=np.float32)
    for r in range(rows):
        kind = draw(st.sampled_from(ROW_KINDS))
        magnitude = 10.0 ** draw(st.integers(-30 if dtype != "float16" else -4, max_exponent))
        if kind == "normal":
            data[r] = rng.normal(0, 1, channels) * magnitude
        elif kind == "constant":
            data[r] = draw(st.sampled_from([-1.0, 1.0])) * magnitude
        elif kind == "zero":
            data[r] = 0.0
        elif kind == "denormal":
            data[r] = rng.normal(0, 1, channels) * 1e-40
        else:
            data[r] = rng.normal(0, 1, channels) * magnitude * 1e-3
            data[r, rng.integers(channels)] = magnitude
    if dtype == "float16":
        return data.astype(np.float16), group
    return (to_bfloat16(data) if dtype == "bfloat16" else data), group


def _grouped(weight: np.ndarray, group: int) -> np.ndarray:
    data = weight.astype(np.float32)
    return data[:, None, :] if group == -1 else data.reshape(data.shape[0], -1, group)


def _integer_reference(grouped: np.ndarray, bits: int, symmetric: bool):
    """The float32 formulas of optimum_wc/kernels/integer.py, written out again."""
    if symmetric:
        factor = np.float32(2 ** (bits - 1))
        low, high = grouped.min(axis=-1, keepdims=True), grouped.max(axis=-1, keepdims=True)
        scale = np.where(np.abs(low) >= high, np.abs(low), -high) / factor
        scale = np.where(np.abs(scale) < EPS32, EPS32, scale).astype(np.float32)
        codes = np.clip(np.rint((grouped / scale).astype(np.float32)), -factor, factor - 1)
        return codes, scale, None
    top = np.float32(2**bits - 1)
    low = np.minimum(grouped.min(axis=-1, keepdims=True), np.float32(0))
    high = np.maximum(grouped.max(axis=-1, keepdims=True), np.float32(0))
    scale = ((high - low) / top).astype(np.float32)
    scale = np.where(np.abs(scale) < EPS32, EPS32, scale).astype(np.float32)
    zero = np.clip((np.float32(0) - np.rint(low / scale)).astype(np.int32), 0, int(top))
    codes = np.clip(np.rint((grouped / scale).astype(np.float32) + zero.astype(np.float32)), 0, top)
    return codes, scale, zero


@SETTINGS
@given(case=weights(), mode=st.sampled_from(sorted(INTEGER_MODES)))
def test_integer_kernels(case, mode):
    weight, group = case
    bits, symmetric = INTEGER_MODES[mode]
    result = compress(weight, (1,), mode, group)
    grouped = _grouped(weight, group)
    scale = result.scale.reshape(grouped.shape[:-1] + (1,))
    assert np.isfinite(scale).all() and (scale != 0).all()
    codes = result.codes.reshape(grouped.shape).astype(np.int32)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2**bits - 1)
    assert codes.min() >= low and codes.max() <= high

    ref_codes, ref_scale, ref_zero = _integer_reference(grouped, bits, symmetric)
    assert np.array_equal(scale, ref_scale) and np.array_equal(codes, ref_codes.astype(np.int32))
    if ref_zero is not None:
        assert np.array_equal(result.zero_point.reshape(ref_zero.shape), ref_zero)

    exact = grouped.astype(np.float64)
    restored = decompress(result).astype(np.float64).reshape(grouped.shape)
    step = np.abs(scale.astype(np.float64))
    assert np.all(np.abs(restored - exact) <= step * (1 + 1e-6) + 4 * float(EPS32) * np.abs(exact))


@SETTINGS
@given(case=weights())
def test_nf4_kernel(case):
    weight, group = case
    result = compress(weight, (1,), "nf4", group)
    grouped = _grouped(weight, group)
    scale = result.scale.reshape(grouped.shape[:-1] + (1,))
    absmax = np.abs(grouped).max(axis=-1, keepdims=True)
    assert np.array_equal(scale, np.where(absmax < EPS32, EPS32, absmax).astype(np.float32))
    codes = result.codes.reshape(grouped.shape)
    assert codes.max() <= 15
    normalized = (grouped / scale).astype(np.float32)
    distance = np.abs(NF4_LEVELS[codes] - normalized)
    nearest = np.abs(NF4_LEVELS[None, None, None, :] - normalized[..., None]).min(axis=-1)
    assert np.all(distance <= nearest + 1e-6)  # the nearest level (ties may go either way)
    restored = decompress(result).astype(np.float64).reshape(grouped.shape)
    half_gap = float(np.diff(NF4_LEVELS).max()) / 2
    assert np.all(np.abs(restored - grouped) <= half_gap * scale.astype(np.float64) * (1 + 1e-6) + 1e-45)


@SETTINGS
@given(case=weights(), mode=st.sampled_from(sorted(KERNELS)), shrink=st.sampled_from([1.0, 0.9, 0.5]))
def test_quantized_levels_are_the_levels_of_the_codes(case, mode, shrink):
    """The one-step ``quantized_levels`` the data-aware loops use gives exactly ``levels(quantize(...))``, also with
    scales other than the kernel's own (scale estimation and GPTQ try shrunk ones), float32 zero points, and written
    into a buffer."""
    weight, group = case
    kernel = KERNELS[mode]
    grouped = _grouped(weight, group)
    scale, zero_point = kernel.parameters(grouped, -1, kernel.bits)
    scale = (scale * np.float32(shrink)).astype(np.float32)
    for zero in (zero_point, None if zero_point is None else zero_point.astype(np.float32)):
        expected = kernel.levels(kernel.quantize(grouped, scale, zero, kernel.bits), zero)
        if zero is not None and zero.dtype == np.float32:  # levels() takes integer zero points
            expected = kernel.levels(kernel.quantize(grouped, scale, zero, kernel.bits), None) - zero
        actual = kernel.quantized_levels(grouped, scale, zero, kernel.bits)
        # FP8 codes of values beyond 464 times the scale are NaN, in both
        assert actual.dtype == np.float32 and np.array_equal(actual, expected, equal_nan=True)
        buffer = np.full(grouped.shape, np.nan, dtype=np.float32)  # a reused buffer: what it held does not matter
        into = kernel.quantized_levels(grouped, scale, zero, kernel.bits, out=buffer)
        assert into is buffer and np.array_equal(buffer, expected, equal_nan=True)


@SETTINGS
@given(case=weights())
def test_grouping_is_a_reshape_and_sensitivity_is_finite(case):
    weight, group = case
    grouped = group_weight(weight, (1,), group)
    assert grouped.data.dtype == np.float32
    assert np.array_equal(grouped.data.reshape(weight.shape), weight.astype(np.float32))
    if group != -1:
        with pytest.raises(GroupSizeMismatch):
            group_weight(np.zeros((2, weight.shape[1] + 1), np.float32), (1,), group)
    error = int8_quantization_error(weight, (1,))
    assert not np.isnan(error) and error >= 0  # inf where float32 squares overflow (|W| > ~1e19), as in nncf
    assert np.isfinite(error) or np.abs(weight.astype(np.float32)).max() > 1e15
    sensitivity = weight_sensitivity(weight, (1,))
    assert np.isfinite(sensitivity) and sensitivity >= 0


def _unpack_nibbles(data: np.ndarray, count: int, signed: bool) -> np.ndarray:
    values = np.stack([data & 0x0F, data >> 4], axis=1).reshape(-1)[:count].astype(np.int16)
    return np.where(values > 7, values - 16, values) if signed else values


@SETTINGS
@given(
    storage=st.sampled_from(["u4", "i4", "nf4", "u8", "i8"]),
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_packing_round_trips(storage, shape, seed):
    rng = np.random.default_rng(seed)
    signed = storage.startswith("i")
    bits = 8 if storage.endswith("8") else 4
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2**bits)
    values = rng.integers(low, high, shape).astype(np.int8 if signed else np.uint8)
    packed = pack(values, storage)
    assert packed.shape == tuple(shape) and packed.storage == storage
    if bits == 8:
        assert np.array_equal(packed.data, values)
    else:
        assert packed.data.size == (values.size + 1) // 2
        assert np.array_equal(_unpack_nibbles(packed.data, values.size, signed), values.reshape(-1))


@SETTINGS
@given(
    bits=st.sampled_from([2, 4, 8]), rows=st.integers(1, 4), columns=st.integers(1, 4), seed=st.integers(0, 2**32 - 1)
)
def test_gptq_awq_unpacking_reads_every_bit_pattern(bits, rows, columns, seed):
    """Any int32 words, negative ones included: unpacking and repacking gives the same words."""
    words = np.random.default_rng(seed).integers(-(2**31), 2**31, (rows, columns)).astype(np.int32)
    per = 32 // bits
    for unpacked, axis in ((unpack_rows(words, bits), 0), (unpack_columns(words, bits), 1)):
        assert unpacked.max() < 2**bits
        shifted = np.moveaxis(unpacked, axis, -1).reshape(-1, per).astype(np.uint64) << (
            np.arange(per, dtype=np.uint64) * bits
        )
        repacked = shifted.sum(axis=-1).astype(np.uint32).view(np.int32)
        expected = np.moveaxis(words, axis, -1).reshape(-1) if axis else words.T.reshape(-1)
        assert np.array_equal(repacked, expected)
