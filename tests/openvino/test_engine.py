"""OpenVINO as the arithmetic engine: the same stored weights as the numpy kernels, and nncf's OpenVINO path where
the two differ (non-finite weights)."""

from __future__ import annotations

import numpy as np
import pytest

import openvino as ov
from optimum_wc import kernels
from optimum_wc.kernels.packing import StoredWeight, pack
from optimum_wc.openvino import engine
from optimum_wc.openvino.decompression import packed_constant


def _weight(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(dtype)
    flat = weight.reshape(-1)
    flat[::97] = 0  # zeros, and one group of zeros (scale eps), one of a tiny value
    flat[: shape[-1]] = 0
    flat[shape[-1] : 2 * shape[-1]] = dtype(1e-7)
    return weight


def _assert_same(stored: StoredWeight, expected: StoredWeight) -> None:
    for name in ("codes", "zero_point"):
        ours, theirs = getattr(stored, name), getattr(expected, name)
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert (ours.shape, ours.storage, ours.data.dtype) == (theirs.shape, theirs.storage, theirs.data.dtype)
            assert np.array_equal(ours.data.reshape(-1), theirs.data.reshape(-1)), name
    assert stored.scale.dtype == expected.scale.dtype and np.array_equal(stored.scale, expected.scale)
    assert (stored.group_size, stored.original_shape) == (expected.group_size, expected.original_shape)
    assert stored.global_scale is None and stored.codebook is None


@pytest.mark.parametrize("mode", [mode for mode in engine.FORMULAS if mode != engine.ERROR_MODE])
@pytest.mark.parametrize("group_size", [-1, 32, 64])
@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=["f16", "f32"])
@pytest.mark.parametrize("shape", [(100, 256), (3, 41, 128)], ids=["2d", "3d"])
def test_same_stored_weight_as_the_numpy_kernels(mode, group_size, dtype, shape, monkeypatch):
    monkeypatch.setattr(engine, "BLOCK_ELEMENTS", 4096)  # several blocks and a partial last one
    weight = _weight(shape, dtype)
    block = engine.BlockShape.of(weight, (weight.ndim - 1,), mode, group_size, workers=1)
    assert block is not None and (weight.size // block.columns) % block.rows  # the last block is partial
    prepared = engine.prepare(block)
    expected = kernels.store(kernels.compress(weight, (weight.ndim - 1,), mode, group_size))
    _assert_same(engine.store(weight, prepared, group_size), expected)


def test_a_read_only_weight_is_read_in_place_and_threads_share_a_model(monkeypatch):
    """The weight of an IR is a read-only view of a Constant; two threads each infer on their own request."""
    from optimum_wc._utils.parallel import ordered_map

    weights = [_weight((128, 512), np.float16, seed) for seed in range(4)]
    for weight in weights:
        weight.setflags(write=False)
    block = engine.BlockShape.of(weights[0], (1,), "int4_sym", 128, workers=2)
    prepared = engine.prepare(block)
    results = [stored for _, stored in ordered_map(lambda w: engine.store(w, prepared, 128), weights, workers=2)]
    for weight, stored in zip(weights, results):
        _assert_same(stored, kernels.store(kernels.compress(weight, (1,), "int4_sym", 128)))


def test_non_finite_weights_are_quantized_as_nncf_quantizes_them():
    """nncf quantizes a weight this large through OpenVINO, whose min/max skip a NaN that numpy's propagate: here
    the engine and nncf agree, the numpy kernels do not (so the test can fail)."""
    from nncf.parameters import CompressWeightsMode
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.weight_lowering import do_integer_quantization
    from nncf.tensor import Tensor

    weight = _weight((300, 256), np.float32)
    weight[7, 9], weight[8, 1], weight[9, 200] = np.nan, np.inf, -np.inf
    numpy_differs = []
    for mode in ("int8_asym", "int8_sym", "int4_asym", "int4_sym"):
        block = engine.BlockShape.of(weight, (1,), mode, 128, workers=1)
        stored = engine.store(weight, engine.prepare(block), 128)
        config = WeightCompressionConfig(mode=CompressWeightsMode(mode), group_size=128)
        theirs = do_integer_quantization(Tensor(weight), config, reduction_axes=(1,))
        storage = kernels.KERNELS[mode].storage
        codes = np.asarray(theirs.tensor.data).reshape(stored.codes.shape)
        assert np.array_equal(stored.codes.data.reshape(-1), pack(codes, storage).data.reshape(-1)), mode
        scale = np.asarray(theirs.scale.data).reshape(stored.scale.shape).astype(np.float16)
        assert np.array_equal(stored.scale, scale, equal_nan=True), mode
        if theirs.zero_point is not None:
            zero_point = np.asarray(theirs.zero_point.data).reshape(stored.scale.shape)
            assert np.array_equal(stored.zero_point.data, pack(zero_point, storage).data), mode
        with np.errstate(invalid="ignore"):
            ours = kernels.store(kernels.compress(weight, (1,), mode, 128))
        numpy_differs.append(not np.array_equal(ours.scale, stored.scale, equal_nan=True))
    assert all(numpy_differs)


@pytest.mark.parametrize(
    "weight, axes, mode, group_size, why",
    [
        (np.zeros((64, 128), np.float16), (1,), "int4_asym", 32, "under nncf's OpenVINO path size"),
        (np.zeros((256, 128), np.float16), (0,), "int4_asym", 32, "groups not along the last axis"),
        (np.zeros((256, 256), np.float16).T, (1,), "int4_asym", 32, "not C-contiguous"),
        (np.zeros((256, 128), np.float16), (1,), "fp8_e4m3", -1, "a mode the engine does not have"),
        (np.zeros((256, 128), np.float64), (1,), "int8_asym", -1, "float64"),
        (np.zeros((256, 96), np.float16), (1,), "int4_asym", 64, "group size not dividing the channels"),
    ],
)
def test_weights_the_engine_leaves_to_the_numpy_kernels(weight, axes, mode, group_size, why):
    assert engine.BlockShape.of(weight, axes, mode, group_size, workers=1) is None, why


def test_nncf_switch_to_numpy_sends_every_weight_to_the_numpy_kernels(monkeypatch):
    weight = np.zeros((256, 128), np.float16)
    assert engine.BlockShape.of(weight, (1,), "int8_sym", -1, workers=1) is not None
    monkeypatch.setenv("NNCF_DISABLE_OPTIMIZED_COMPRESSION", "1")
    assert engine.BlockShape.of(weight, (1,), "int8_sym", -1, workers=1) is None


@pytest.mark.parametrize("mode", ["int4_asym", "int8_sym"])
def test_the_constant_owns_the_codes_the_engine_wrote(mode):
    """No copy of the codes: the Constant is backed by the tensor the engine allocated and filled."""
    weight = _weight((256, 128), np.float16)
    block = engine.BlockShape.of(weight, (1,), mode, 32, workers=1)
    stored = engine.store(weight, engine.prepare(block), 32)
    constant = packed_constant(stored.codes, "w")
    address = stored.codes.data.ctypes.data
    del stored
    assert constant.get_tensor_view().data.ctypes.data == address
    assert constant.get_output_element_type(0) == {"int4_asym": ov.Type.u4, "int8_sym": ov.Type.i8}[mode]


def test_nf4_values_on_a_boundary_go_up_as_in_openvino():
    """A value exactly on a boundary between two NF4 levels takes the upper one on nncf's OpenVINO path (and the
    lower one by the midpoint rule of its numpy path: the check can fail)."""
    from optimum_wc.kernels.nf4 import OPENVINO_NF4_BOUNDARIES, nf4_indices

    weight = np.resize(OPENVINO_NF4_BOUNDARIES, (128, 128)).astype(np.float32)
    weight[:, 0] = 1.0  # the scale of every row: normalized values are the boundaries themselves
    block = engine.BlockShape.of(weight, (1,), "nf4", -1, workers=1)
    stored = engine.store(weight, engine.prepare(block), -1)
    _assert_same(stored, kernels.store(kernels.compress(weight, (1,), "nf4", -1)))
    upper = pack(nf4_indices(weight, openvino_rounding=True), "nf4").data
    lower = pack(nf4_indices(weight, openvino_rounding=False), "nf4").data
    assert np.array_equal(stored.codes.data, upper) and not np.array_equal(upper, lower)


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=["f16", "f32"])
def test_int8_error_is_the_value_nncf_computes(dtype):
    """Mixed precision's data-free sensitivity: the engine gives nncf's OpenVINO value to the bit; numpy's mean sums
    in another order and misses it for some weights (so the check can fail)."""
    from nncf.parameters import CompressWeightsMode
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.weight_lowering import get_integer_quantization_error
    from nncf.tensor import Tensor

    from optimum_wc.kernels.errors import int8_quantization_error

    config = WeightCompressionConfig(mode=CompressWeightsMode.INT8_ASYM, group_size=-1)
    numpy_matches = []
    shapes = [(1024, 512), (300, 256), (64, 2048), (3, 100, 512), (256, 1536)]
    for seed in range(16):  # about half of numpy's values match here: all 16 would by chance once in 60,000
        shape = shapes[seed % len(shapes)]
        weight = (np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * 0.03).astype(dtype)
        block = engine.BlockShape.of(weight, (weight.ndim - 1,), engine.ERROR_MODE, -1, workers=1)
        theirs = np.float32(get_integer_quantization_error(Tensor(weight), (weight.ndim - 1,), config, "max_mean"))
        assert engine.int8_error(weight, engine.prepare(block)) == theirs, shape
        numpy_matches.append(int8_quantization_error(weight, (weight.ndim - 1,)) == theirs)
    assert not all(numpy_matches)


def test_a_prepared_model_works_after_the_cache_let_go_of_it(monkeypatch):
    """Weights in flight hold their compiled model: preparing others past the cache's size does not break them."""
    monkeypatch.setattr(engine, "MAX_COMPILED", 1)
    weight = _weight((128, 256), np.float16)
    first = engine.prepare(engine.BlockShape.of(weight, (1,), "int4_asym", 64, workers=1))
    engine.prepare(engine.BlockShape.of(weight, (1,), "int8_sym", -1, workers=1))
    assert first.shape not in engine._COMPILED
    _assert_same(engine.store(weight, first, 64), kernels.store(kernels.compress(weight, (1,), "int4_asym", 64)))
