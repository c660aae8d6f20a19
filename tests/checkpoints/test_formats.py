"""Reading the packed GPTQ/AWQ tensors: unpacking against independent packers, v1's zero offset, the AWQ nibble
order, the layout of our subgraph (signed codes for symmetric checkpoints, a permutation for scattered groups)."""

from __future__ import annotations

import numpy as np
from prequantized import AWQ_ORDER, pack_along_columns, pack_along_rows, v2_to_v1
import pytest

from optimum_wc.checkpoints import QuantizationSpec, to_imported, unpack_columns, unpack_rows
from optimum_wc.checkpoints.formats import read_awq, read_gptq
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError


@pytest.mark.parametrize("bits", [4, 8])
def test_unpacking_inverts_the_format_packing(bits):
    rng = np.random.default_rng(bits)
    values = rng.integers(0, 2**bits, (64, 48))
    assert np.array_equal(unpack_rows(pack_along_rows(values, bits), bits), values)
    assert np.array_equal(unpack_columns(pack_along_columns(values, bits), bits), values)
    # the high nibble of a word set means a negative int32: still read as unsigned bits
    assert (pack_along_rows(np.full((8, 1), 2**bits - 1), bits) < 0).all()


def test_awq_nibble_order():
    values = np.arange(16).reshape(2, 8)
    packed = pack_along_columns(values, 4, AWQ_ORDER)
    assert hex(int(packed[0, 0]) & 0xFFFFFFFF) == "0x75316420"  # columns 0,2,4,6,1,3,5,7 from the low nibble up
    assert np.array_equal(unpack_columns(packed, 4, AWQ_ORDER), values)


def _gptq_tensors(codes, zeros, scales, g_idx, bits, stored_offset):
    qzeros = pack_along_columns(zeros, bits)
    if stored_offset:
        qzeros = v2_to_v1(qzeros, bits)
    return {
        "l.qweight": pack_along_rows(codes.T, bits),
        "l.qzeros": qzeros,
        "l.scales": scales,
        "l.g_idx": g_idx.astype(np.int32),
    }


def test_v1_without_borrow_is_zero_minus_one_in_each_field():
    zeros = np.array([[1, 5, 15, 2, 3, 4, 6, 7]])
    assert np.array_equal(unpack_columns(v2_to_v1(pack_along_columns(zeros, 4), 4), 4), zeros - 1)
    with_zero = np.array([[0, 5, 0, 2, 3, 4, 6, 7]])  # the -1 of a zero of 0 borrows from the next field
    assert not np.array_equal(unpack_columns(v2_to_v1(pack_along_columns(with_zero, 4), 4), 4) + 1, with_zero)


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("checkpoint_format, offset", [("gptq", 1), ("gptq_v2", 0)])
def test_gptq_v1_stores_zero_minus_one_and_v2_the_zero(checkpoint_format, offset, bits):
    rng = np.random.default_rng(0)
    top = 2**bits
    codes, zeros = rng.integers(0, top, (16, 64)), rng.integers(0, top, (2, 16))
    zeros[0, :3] = 0  # zeros of 0 included
    scales = rng.uniform(0.01, 0.02, (2, 16)).astype(np.float16)
    g_idx = np.arange(64) // 32
    spec = QuantizationSpec.from_config(
        {"quant_method": "gptq", "bits": bits, "group_size": 32, "format": checkpoint_format}
    )  # gptqmodel's newer key
    linear = read_gptq(_gptq_tensors(codes, zeros, scales, g_idx, bits, offset), "l", spec)
    assert np.array_equal(linear.codes, codes) and np.array_equal(linear.zeros, zeros)
    expected = (codes - zeros[g_idx].T).astype(np.float64) * scales[g_idx].T.astype(np.float64)  # exact in float64
    assert np.array_equal(linear.dequantize(), expected)


def test_awq_reads_codes_and_zeros_in_its_order():
    rng = np.random.default_rng(1)
    codes, zeros = rng.integers(0, 16, (16, 64)), rng.integers(0, 16, (4, 16))
    scales = rng.uniform(0.01, 0.02, (4, 16)).astype(np.float16)
    tensors = {
        "l.qweight": pack_along_columns(codes.T, 4, AWQ_ORDER),
        "l.qzeros": pack_along_columns(zeros, 4, AWQ_ORDER),
        "l.scales": scales,
    }
    linear = read_awq(tensors, "l", QuantizationSpec.from_config({"quant_method": "awq", "group_size": 16}))
    assert np.array_equal(linear.codes, codes) and np.array_equal(linear.zeros, zeros)
    assert np.array_equal(linear.g_idx, np.arange(64) // 16)


def _linear(rng, g_idx, zeros_value=None, bits=4, groups=2):
    from optimum_wc.checkpoints import PrequantizedLinear

    zeros = np.full((groups, 8), zeros_value) if zeros_value is not None else rng.integers(0, 2**bits, (groups, 8))
    return PrequantizedLinear(
        rng.integers(0, 2**bits, (8, 64)).astype(np.uint8),
        zeros.astype(np.int16),
        rng.uniform(0.01, 0.02, (groups, 8)).astype(np.float16),
        g_idx,
        bits,
    )


def _unpack_nibbles(packed, signed):
    low, high = packed.data & 0x0F, packed.data >> 4
    values = np.stack([low, high], axis=1).reshape(-1)[: int(np.prod(packed.shape))].astype(np.int16)
    return (np.where(values > 7, values - 16, values) if signed else values).reshape(packed.shape)


def test_symmetric_zeros_become_signed_codes_without_zero_point():
    rng = np.random.default_rng(2)
    linear = _linear(rng, np.arange(64) // 32, zeros_value=8)
    imported = to_imported(linear)
    assert imported.mode == "int4_sym" and imported.stored.zero_point is None and imported.permutation is None
    assert imported.stored.codes.storage == "i4" and imported.stored.codes.shape == (8, 2, 32)
    codes = _unpack_nibbles(imported.stored.codes, signed=True)
    assert np.array_equal(codes.reshape(8, 64), linear.codes.astype(np.int16) - 8)
    assert np.array_equal(imported.stored.scale.reshape(8, 2), linear.scales.T)


def test_scattered_groups_are_made_contiguous_by_a_permutation():
    rng = np.random.default_rng(3)
    g_idx = np.repeat([0, 1], 32)
    rng.shuffle(g_idx)
    linear = _linear(rng, g_idx)
    imported = to_imported(linear)
    assert imported.mode == "int4_asym" and imported.permutation is not None
    assert np.array_equal(g_idx[imported.permutation], np.repeat([0, 1], 32))  # groups now contiguous
    codes = _unpack_nibbles(imported.stored.codes, signed=False).reshape(8, 64)
    assert np.array_equal(codes, linear.codes[:, imported.permutation])
    zeros = _unpack_nibbles(imported.stored.zero_point, signed=False).reshape(8, 2)
    assert np.array_equal(zeros, linear.zeros.T)
    with pytest.raises(InvalidArgumentError, match="every group must hold 32"):
        to_imported(_linear(rng, np.r_[np.zeros(40, int), np.ones(24, int)]))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"quant_method": "bitsandbytes"}, "quant_method='bitsandbytes' cannot be imported"),
        ({"quant_method": "gptq", "bits": 3}, "GPTQ with bits=3 cannot be imported yet"),
        ({"quant_method": "gptq", "checkpoint_format": "marlin"}, "checkpoint_format='marlin'"),
        ({"quant_method": "awq", "version": "gemv"}, "supported: bits 4, version 'gemm', zero_point true"),
        ({"quant_method": "awq", "zero_point": False}, "zero_point true"),
        ({"quant_method": "awq", "backend": "llm-awq"}, "backend 'llm-awq' cannot be imported"),
        ({"quant_method": "gptq", "pack_dtype": "int16"}, "pack_dtype='int16' cannot be imported"),
    ],
)
def test_formats_we_cannot_read_exactly_are_refused(config, message):
    with pytest.raises(NotYetSupportedError, match=message):
        QuantizationSpec.from_config(config)
    with pytest.raises(InvalidArgumentError, match="group_size must be positive or -1"):
        QuantizationSpec.from_config({"quant_method": "gptq", "group_size": 0})
