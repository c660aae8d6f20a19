"""OpenVINO as the arithmetic engine of data-free quantization (INT8, INT4, NF4): the numpy kernels' values, faster.

A weight that nncf would quantize through OpenVINO (``kernels/nncf_paths.py``) and that is stored with its groups
along the last axis is quantized by a small compiled model: the formulas of ``kernels/integer.py`` and
``kernels/nf4.py`` written as OpenVINO ops (:data:`FORMULAS`), the divisions kept as divisions (nncf's
``nonconvertable_divide_0`` mark stops the CPU plugin from turning them into a multiplication by a reciprocal).
With static shapes the CPU plugin fuses the element-wise part (converting the f16 input, dividing, rounding half
to even, clamping, converting to 8-bit codes) into one pass, so a weight is read twice (reduction, then
quantization) rather than once per numpy step, and never copied to float32.

The groups of all weights of a mode, dtype and group size are cut into blocks of one shape (a power of two of
groups, at most :data:`BLOCK_ELEMENTS` elements), so a few compiled models serve them all; a last, partial block is
copied into a zero-filled block (groups are quantized each on its own: zero groups do not change the others).
Every worker thread has its own infer request, on a stream of one thread: the threads divide the weights among
them as they do for the numpy kernels. Models are compiled on the calling thread of :func:`prepare`, never in a
worker. The codes are written into tensors that the new Constants then own, without a copy.

Mixed precision's data-free sensitivity, each weight's per-channel INT8 error (``kernels/errors.py``), is one more
formula (:data:`ERROR_MODE`, :func:`int8_error`): computed with nncf's ops in OpenVINO, it is nncf's value to the
bit, where numpy's mean sums in another order.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Callable

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.kernels.integer import EPS
from optimum_wc.kernels.nf4 import OPENVINO_NF4_BOUNDARIES
from optimum_wc.kernels.nncf_paths import openvino_path
from optimum_wc.kernels.packing import PackedArray, StoredWeight, pack, pack_nibbles_into
from optimum_wc.kernels.registry import KERNELS
from optimum_wc.openvino.decompression import STORAGE_TYPES

BLOCK_ELEMENTS = 2**20  # elements per inference: a block's codes and float temporaries stay in the CPU's caches
INPUT_TYPES = {np.dtype(np.float16): ov.Type.f16, np.dtype(np.float32): ov.Type.f32}
ERROR_MODE = "int8_asym_error"


@dataclass(frozen=True)
class BlockShape:
    """The compiled model's input: ``rows`` groups of ``columns`` elements in ``dtype``, quantized with ``mode`` by
    ``streams`` threads at once."""

    mode: str
    dtype: np.dtype
    rows: int
    columns: int
    streams: int

    @classmethod
    def of(
        cls, weight: np.ndarray, reduction_axes: tuple[int, ...], mode: object, group_size: int, workers: int
    ) -> BlockShape | None:
        """The block shape for ``weight``, or None where the engine does not apply (the numpy kernels do, for a
        mode without a formula here or a codebook's kernel, for example)."""
        if not weight.flags.c_contiguous:
            return None
        return cls.of_layout(tuple(weight.shape), weight.dtype, reduction_axes, mode, group_size, workers)

    @classmethod
    def of_layout(
        cls,
        shape: tuple[int, ...],
        dtype: np.dtype,
        reduction_axes: tuple[int, ...],
        mode: str,
        group_size: int,
        workers: int,
    ) -> BlockShape | None:
        """:meth:`of` for a C-contiguous weight of this shape and dtype."""
        size = int(np.prod(shape))
        if not isinstance(mode, str) or mode not in FORMULAS or np.dtype(dtype) not in INPUT_TYPES or len(shape) < 2:
            return None
        if reduction_axes not in ((len(shape) - 1,), (-1,)) or not openvino_path(size):
            return None
        channels = shape[-1]
        columns = channels if group_size == -1 else group_size
        if channels % columns or (mode in KERNELS and KERNELS[mode].bits == 4 and columns % 2):
            return None  # the numpy kernels raise the error the user sees, or pack an odd count of 4-bit codes
        groups = size // columns
        rows = min(max(1, BLOCK_ELEMENTS // columns), 1 << (groups - 1).bit_length())
        return cls(mode, np.dtype(dtype), rows, columns, workers)


def _divide(numerator: ov.Node, denominator: ov.Node) -> ov.Node:
    quotient = opset.divide(numerator, denominator)
    quotient.get_rt_info()["nonconvertable_divide_0"] = True  # what nncf marks: not rewritten as a * (1 / b)
    return quotient


def _f32(value: float) -> ov.Node:
    return opset.constant(np.float32(value))


def _eps_clamped(scale: ov.Node) -> ov.Node:
    return opset.select(opset.less(opset.abs(scale), _f32(EPS)), _f32(EPS), scale)


def _integer_parts(weight: ov.Node, bits: int, asymmetric: bool) -> tuple[ov.Node, ov.Node, ov.Node | None]:
    """``kernels/integer.py``: the codes (as float32), the scale and (asymmetric) the zero point of each row."""
    low = opset.convert(opset.reduce_min(weight, [1], True), ov.Type.f32)
    high = opset.convert(opset.reduce_max(weight, [1], True), ov.Type.f32)
    zero_point = None
    if asymmetric:
        level_low, level_high = 0, 2**bits - 1
        low, high = opset.minimum(_f32(0), low), opset.maximum(_f32(0), high)
        scale = _eps_clamped(_divide(opset.subtract(high, low), _f32(level_high)))
        zero_point = opset.subtract(_f32(0), opset.round(_divide(low, scale), "half_to_even"))
        zero_point = opset.clamp(zero_point, level_low, level_high)
        codes = opset.add(_divide(opset.convert(weight, ov.Type.f32), scale), zero_point)
    else:
        level_low, level_high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        magnitude = opset.abs(low)
        signed = opset.select(opset.greater_equal(magnitude, high), magnitude, opset.negative(high))
        scale = _eps_clamped(_divide(signed, _f32(-level_low)))
        codes = _divide(opset.convert(weight, ov.Type.f32), scale)
    return opset.clamp(opset.round(codes, "half_to_even"), level_low, level_high), scale, zero_point


def _integer(weight: ov.Node, bits: int, asymmetric: bool) -> list[ov.Node]:
    codes, scale, zero_point = _integer_parts(weight, bits, asymmetric)
    outputs = [opset.convert(codes, ov.Type.u8 if asymmetric else ov.Type.i8), scale]
    return outputs + ([opset.convert(zero_point, ov.Type.i32)] if asymmetric else [])


def _int8_error(weight: ov.Node) -> list[ov.Node]:
    """``kernels/errors.py``'s per-channel INT8_ASYM error of each row, ``mean((Q8(W) - W)**2)``, as nncf's
    OpenVINO path computes it (integer levels, times the scale, squared difference, OpenVINO's mean)."""
    codes, scale, zero_point = _integer_parts(weight, 8, True)
    levels = opset.subtract(opset.convert(codes, ov.Type.i32), opset.convert(zero_point, ov.Type.i32))
    dequantized = opset.multiply(opset.convert(levels, ov.Type.f32), scale)
    difference = opset.squared_difference(dequantized, opset.convert(weight, ov.Type.f32))
    return [opset.reduce_mean(difference, [1], False)]


def _nf4(weight: ov.Node) -> list[ov.Node]:
    """``kernels/nf4.py`` with OpenVINO's tie rule (nncf's path for weights this large): the level index is the
    number of OpenVINO's NF4 boundaries at or below ``W / s``."""
    values = opset.convert(weight, ov.Type.f32)
    scale = _eps_clamped(opset.reduce_max(opset.abs(values), [1], True))
    normalized = _divide(values, scale)
    index = None
    for boundary in OPENVINO_NF4_BOUNDARIES:
        step = opset.convert(opset.greater_equal(normalized, _f32(boundary)), ov.Type.f32)
        index = step if index is None else opset.add(index, step)
    return [opset.convert(index, ov.Type.u8), scale]


# mode -> (the formula of its codes and parameters, as OpenVINO ops; the numpy dtype of its codes)
FORMULAS: dict[str, tuple[Callable[[ov.Node], list[ov.Node]], type]] = {
    "int8_asym": (lambda w: _integer(w, 8, True), np.uint8),
    "int8_sym": (lambda w: _integer(w, 8, False), np.int8),
    "int4_asym": (lambda w: _integer(w, 4, True), np.uint8),
    "int4_sym": (lambda w: _integer(w, 4, False), np.int8),
    "nf4": (_nf4, np.uint8),
    ERROR_MODE: (_int8_error, np.float32),  # mixed precision's data-free sensitivity: no codes, an error per row
}


def _model(shape: BlockShape) -> ov.Model:
    weight = opset.parameter([shape.rows, shape.columns], INPUT_TYPES[shape.dtype], name="weight")
    return ov.Model(FORMULAS[shape.mode][0](weight), [weight], f"optimum_wc_{shape.mode}")


@dataclass(frozen=True, eq=False)
class Prepared:
    """The compiled model of a block shape, held by whoever infers with it (so the cache may let go of it)."""

    shape: BlockShape
    compiled: ov.CompiledModel


MAX_COMPILED = 16  # compiled models kept per process (a model has a few shapes; tests and long sessions more)
_LOCK = threading.Lock()
_COMPILED: dict[BlockShape, ov.CompiledModel] = {}  # in the order of their last preparation
_REQUESTS = threading.local()  # each thread's infer requests: shape -> (compiled model, request)


def prepare(shape: BlockShape) -> Prepared:
    """Compiles the model of ``shape``, or takes it from the process's cache, on the calling thread (workers only
    infer): one stream of one thread for each thread that infers at once (the requests of a single stream would
    wait for one another). Beyond :data:`MAX_COMPILED`, the cache lets go of the one prepared least recently."""
    with _LOCK:
        compiled = _COMPILED.pop(shape, None)  # and put back last
        if compiled is None:
            config = {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": shape.streams}
            config["INFERENCE_NUM_THREADS"] = shape.streams
            compiled = ov.Core().compile_model(_model(shape), "CPU", config)
        _COMPILED[shape] = compiled
        while len(_COMPILED) > MAX_COMPILED:
            del _COMPILED[next(iter(_COMPILED))]
    return Prepared(shape, compiled)


def _request(prepared: Prepared) -> ov.InferRequest:
    """This thread's infer request of the prepared model."""
    requests = getattr(_REQUESTS, "by_shape", None)
    if requests is None or len(requests) > MAX_COMPILED:  # let go of requests of models dropped since
        requests = _REQUESTS.by_shape = {}
    held = requests.get(prepared.shape)
    if held is None or held[0] is not prepared.compiled:
        with _LOCK:
            held = requests[prepared.shape] = (prepared.compiled, prepared.compiled.create_infer_request())
    return held[1]


def _infer(request: ov.InferRequest, block: np.ndarray, outputs: list[np.ndarray]) -> None:
    """Runs one block, the results written straight into ``outputs`` (arrays of the block's shape)."""
    # this constructor shares the memory of a read-only array too (the weight is a view of a Constant's data)
    request.set_input_tensor(ov.Tensor(block, ov.Shape(list(block.shape)), INPUT_TYPES[block.dtype]))
    for index, output in enumerate(outputs):
        request.set_output_tensor(index, ov.Tensor(output, shared_memory=True))
    request.infer()


def _blocks(groups: np.ndarray, prepared: Prepared, results: list[np.ndarray], staged: tuple[np.ndarray, ...] = ()):
    """Infers every block of ``groups`` (rows of the compiled width): the first outputs go into the ``staged`` arrays
    of one block each, the others into the rows of ``results`` (one row per group). Yields each block's
    ``(start, stop)`` rows while ``staged`` holds its outputs. The last, partial block is run zero-filled in the
    compiled shape (groups are quantized each on its own) and only its own rows are kept."""
    request, rows, count = _request(prepared), prepared.shape.rows, groups.shape[0]
    for start in range(0, count, rows):
        stop = min(start + rows, count)
        if stop - start == rows:  # written in place
            _infer(request, groups[start:stop], [*staged, *(r[start:stop] for r in results)])
            yield start, stop
            continue
        block = np.zeros((rows, groups.shape[1]), prepared.shape.dtype)
        block[: stop - start] = groups[start:stop]
        outputs = [np.empty((rows,) + r.shape[1:], r.dtype) for r in results]
        _infer(request, block, [*staged, *outputs])
        for result, output in zip(results, outputs):
            result[start:stop] = output[: stop - start]
        yield start, stop


def store(weight: np.ndarray, prepared: Prepared, group_size: int) -> StoredWeight:
    """Quantizes ``weight`` (reduced over its last axis) with the model :func:`prepare` gave for its block shape, and
    packs it: what ``kernels.store(kernels.compress(...))`` returns for it, with the same values. 8-bit codes are
    written where they are stored; 4-bit ones are packed block by block, while they are in the cache."""
    shape = prepared.shape
    kernel = KERNELS[shape.mode]
    groups = weight.reshape(-1, shape.columns)
    count, columns = groups.shape
    packed = kernel.bits == 4
    if group_size == -1:
        layout = tuple(weight.shape)
    else:
        layout = tuple(weight.shape[:-1]) + (weight.shape[-1] // group_size, group_size)
    stored = ov.Tensor(STORAGE_TYPES[kernel.storage], list(layout))  # the codes' memory, for the Constant to own
    codes = stored.data.view(np.uint8) if packed else stored.data.reshape(count, columns)
    parameters = [np.empty((count, 1), np.float32)]  # scale, zero point
    if kernel.has_zero_point:
        parameters.append(np.empty((count, 1), np.int32))
    if packed:  # each block's codes, packed into the stored ones while in the cache
        block_codes = np.empty((shape.rows, columns), FORMULAS[shape.mode][1])
        for start, stop in _blocks(groups, prepared, parameters, (block_codes,)):
            pack_nibbles_into(block_codes[: stop - start], codes[start * columns // 2 : stop * columns // 2])
    else:
        for _ in _blocks(groups, prepared, [codes, *parameters]):
            pass
    kept = layout[:-1] + (1,)
    return StoredWeight(
        codes=PackedArray(codes if packed else codes.reshape(layout), layout, kernel.storage, stored),
        zero_point=pack(parameters[1].reshape(kept), kernel.storage) if kernel.has_zero_point else None,
        scale=parameters[0].reshape(kept).astype(np.float16),
        group_size=group_size,
        original_shape=tuple(weight.shape),
    )


def int8_error(weight: np.ndarray, prepared: Prepared) -> np.float32:
    """``kernels.errors.int8_quantization_error(weight, (last axis,))`` as nncf's OpenVINO path computes it: the
    largest per-channel mean of ``(Q8(W) - W)**2``, with the model :func:`prepare` gave for its block shape."""
    rows = weight.reshape(-1, prepared.shape.columns)
    errors = np.empty(rows.shape[0], np.float32)
    for _ in _blocks(rows, prepared, [errors]):
        pass
    return errors.max()
