"""Mode -> kernel registry: how each compression mode chooses parameters, quantizes, dequantizes and is stored.

Choosing the parameters and quantizing are separate steps so that the data-aware algorithms (scale estimation,
GPTQ) can quantize with parameters of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from optimum_wc.config.enums import CODE_BITS
from optimum_wc.kernels.codebook import (
    CB4_LEVELS,
    codebook_levels,
    codebook_parameters,
    codebook_quantizer,
    index_storage,
)
from optimum_wc.kernels.floats import float_levels, float_parameters, float_quantizer, nvfp4_scales
from optimum_wc.kernels.groups import group_weight
from optimum_wc.kernels.integer import (
    asymmetric_parameters,
    integer_levels,
    quantize_integer,
    quantized_integer_levels,
    symmetric_parameters,
)
from optimum_wc.kernels.nf4 import nf4_levels, nf4_parameters, quantize_nf4, quantized_nf4_levels
from optimum_wc.kernels.packing import StoredWeight, to_storage
from optimum_wc.kernels.records import CompressedWeight, GroupedWeight

Axis = int | tuple[int, ...]


@dataclass(frozen=True)
class Kernel:
    """How one mode compresses a weight.

    Attributes:
        bits: Bits per code.
        storage: OpenVINO element type name of the codes constant (``u8``, ``i8``, ``u4``, ``i4``, ``nf4``).
        has_zero_point: Whether the mode stores a zero point (of the same element type as the codes).
        parameters: ``(float32 data, reduction axis, bits) -> (scale, zero point or None)``, keepdims.
        quantize: ``(float32 data, scale, zero point, bits) -> codes``.
        levels: ``(codes, zero point) -> float32`` unscaled values, so that ``W ~ levels * scale``.
        quantized_levels: ``(float32 data, scale, zero point, bits, out=None) -> levels(quantize(...), zero point)``
            in one step (what the data-aware algorithms' inner loops need), into the float32 array ``out`` when
            given (a loop that reuses its buffers does not page-fault a fresh one on every step). Both also take
            ``nncf_size``, the size of the array nncf would quantize at once (see ``nncf_paths.py``).
        integer: Whether the levels are uniform integers (nncf's integer path), not float values (its float path).
        scale_storage: Element type of the stored scale: ``f16``, ``f8e8m0`` (MX: powers of two) or ``f8e4m3``.
        second_level: Quantizes the scale itself, ``scale -> (scale values, global scale)`` (NVFP4).
        stored_offset: Symmetric codes stored unsigned: this is added to them and subtracted back as a scalar
            zero point (INT3/INT2, whose OpenVINO types are unsigned).
        always_numpy: nncf quantizes this mode through numpy whatever the weight's size (``nncf_paths.py``).
        codebook: The codebook the codes index (codebook modes), in its own dtype; stored as a Constant that a
            Gather reads, in ``codebook_storage`` (``f8e4m3`` for CB4) or, when None, in its own dtype.
    """

    bits: int
    storage: str
    has_zero_point: bool
    parameters: Callable[[np.ndarray, Axis, int], tuple[np.ndarray, np.ndarray | None]]
    quantize: Callable[[np.ndarray, np.ndarray, np.ndarray | None, int], np.ndarray]
    levels: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
    quantized_levels: Callable[..., np.ndarray]
    integer: bool = True
    scale_storage: str = "f16"
    second_level: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    stored_offset: int | None = None
    always_numpy: bool = False
    codebook: np.ndarray | None = None
    codebook_storage: str | None = None


def _composed(quantize: Callable, levels: Callable) -> Callable[..., np.ndarray]:
    """``quantized_levels`` as ``levels(quantize(...))``, for the modes whose codes are table indices."""

    def quantized_levels(weight, scale, zero_point, bits, out=None, nncf_size=None) -> np.ndarray:
        values = levels(quantize(weight, scale, zero_point, bits), zero_point)
        if out is None:
            return values
        np.copyto(out, values)
        return out

    return quantized_levels


def _float_kernel(fmt: str, bits: int, mx: bool = False, **fields) -> Kernel:
    return Kernel(
        bits,
        fmt,
        False,
        float_parameters(fmt, mx),
        float_quantizer(fmt),
        float_levels(fmt),
        _composed(float_quantizer(fmt), float_levels(fmt)),
        integer=False,
        **fields,
    )


def codebook_kernel(codebook: np.ndarray, codebook_storage: str | None = None) -> Kernel:
    """The kernel of a codebook: nearest-value indices with an absmax scale; nncf has no OpenVINO path for it."""
    storage, bits = index_storage(codebook.size)
    quantize, levels = codebook_quantizer(codebook), codebook_levels(codebook)
    return Kernel(
        bits,
        storage,
        False,
        codebook_parameters(codebook),
        quantize,
        levels,
        _composed(quantize, levels),
        integer=False,
        always_numpy=True,
        codebook=codebook,
        codebook_storage=codebook_storage,
    )


def _narrow_integer_kernel(bits: int) -> Kernel:
    """INT3/INT2: symmetric codes, stored unsigned; nncf has no OpenVINO path for them."""
    return Kernel(
        bits,
        f"u{bits}",
        False,
        symmetric_parameters,
        lambda w, s, z, b, nncf_size=None: quantize_integer(w, s, z, b, nncf_size=0),
        integer_levels,
        lambda w, s, z, b, out=None, nncf_size=None: quantized_integer_levels(w, s, z, b, out, nncf_size=0),
        stored_offset=2 ** (bits - 1),
        always_numpy=True,
    )


KERNELS: dict[str, Kernel] = {
    "int8_asym": Kernel(
        CODE_BITS["int8_asym"],
        "u8",
        True,
        asymmetric_parameters,
        quantize_integer,
        integer_levels,
        quantized_integer_levels,
    ),
    "int8_sym": Kernel(
        CODE_BITS["int8_sym"],
        "i8",
        False,
        symmetric_parameters,
        quantize_integer,
        integer_levels,
        quantized_integer_levels,
    ),
    "int4_asym": Kernel(
        CODE_BITS["int4_asym"],
        "u4",
        True,
        asymmetric_parameters,
        quantize_integer,
        integer_levels,
        quantized_integer_levels,
    ),
    "int4_sym": Kernel(
        CODE_BITS["int4_sym"],
        "i4",
        False,
        symmetric_parameters,
        quantize_integer,
        integer_levels,
        quantized_integer_levels,
    ),
    "nf4": Kernel(
        CODE_BITS["nf4"], "nf4", False, nf4_parameters, quantize_nf4, nf4_levels, quantized_nf4_levels, integer=False
    ),
    "int3_sym": _narrow_integer_kernel(CODE_BITS["int3_sym"]),
    "int2_sym": _narrow_integer_kernel(CODE_BITS["int2_sym"]),
    "fp8_e4m3": _float_kernel("f8e4m3", CODE_BITS["fp8_e4m3"]),
    "fp4": _float_kernel("f4e2m1", CODE_BITS["fp4"]),
    "mxfp8_e4m3": _float_kernel("f8e4m3", CODE_BITS["mxfp8_e4m3"], mx=True, scale_storage="f8e8m0"),
    "mxfp4": _float_kernel("f4e2m1", CODE_BITS["mxfp4"], mx=True, scale_storage="f8e8m0"),
    "nvfp4": _float_kernel("f4e2m1", CODE_BITS["nvfp4"], scale_storage="f8e4m3", second_level=nvfp4_scales),
    "cb4": codebook_kernel(CB4_LEVELS, "f8e4m3"),
}
CODEBOOK_MODES = ("codebook", "adaptive_codebook")  # their codebook comes with the call


def kernel_for(mode: str | Kernel, codebook: np.ndarray | None = None) -> Kernel:
    """The kernel of ``mode``; CODEBOOK and ADAPTIVE_CODEBOOK take ``codebook``. A kernel is returned as it is (the
    data-aware algorithms take either: a mode's name, or the kernel of a codebook)."""
    if isinstance(mode, Kernel):
        return mode
    if mode in CODEBOOK_MODES:
        if codebook is None:
            raise ValueError(f"mode {mode} needs a codebook")
        return codebook_kernel(np.asarray(codebook))
    return KERNELS[mode]


def compress_grouped(
    grouped: GroupedWeight,
    mode: str,
    scale: np.ndarray | None = None,
    zero_point: np.ndarray | None = None,
    codebook: np.ndarray | None = None,
) -> CompressedWeight:
    """Compresses a grouped weight with ``mode``; with ``scale`` (and ``zero_point``) given, quantizes with them.
    ``codebook``: the values of modes CODEBOOK and ADAPTIVE_CODEBOOK."""
    kernel = kernel_for(mode, codebook)
    if scale is None:
        scale, zero_point = kernel.parameters(grouped.data, grouped.axis, kernel.bits)
    elif kernel.has_zero_point and zero_point is None:
        raise ValueError(f"mode {mode} needs a zero point together with a precomputed scale")
    else:
        scale = np.asarray(scale, dtype=np.float32)
    codes = kernel.quantize(grouped.data, scale, zero_point, kernel.bits)
    if zero_point is not None:
        zero_point = np.asarray(zero_point).astype(np.int32)
    global_scale = None
    if kernel.second_level is not None:
        scale, global_scale = kernel.second_level(scale)
    return CompressedWeight(
        codes,
        scale,
        zero_point,
        mode,
        kernel.bits,
        grouped.group_size,
        grouped.original_shape,
        global_scale,
        kernel.codebook,
    )


BLOCK_ELEMENTS = 2**20  # larger 2-D weights are compressed in blocks of output channels (cache-sized temporaries)


def compress(
    weight: np.ndarray,
    reduction_axes: tuple[int, ...],
    mode: str,
    group_size: int,
    scale: np.ndarray | None = None,
    zero_point: np.ndarray | None = None,
    codebook: np.ndarray | None = None,
) -> CompressedWeight:
    """Compresses a float weight with ``mode`` (a ``CompressWeightsMode`` value) and ``group_size`` (-1: per channel)
    (``codebook``: the values of modes CODEBOOK and ADAPTIVE_CODEBOOK).

    ``scale`` and ``zero_point``, when given, are in the grouped layout (size 1 on the group axis). A 2-D weight of
    more than :data:`BLOCK_ELEMENTS` reduced along its last axis is compressed in blocks of rows (each row's result
    depends on that row alone), so the float32 temporaries stay small; the result is the same.
    """
    blockwise = kernel_for(mode, codebook).second_level is None  # NVFP4's second level spans the whole weight
    if (
        blockwise
        and scale is None
        and weight.ndim == 2
        and reduction_axes in ((1,), (-1,))
        and weight.size > BLOCK_ELEMENTS
    ):
        # blocks of whole rows and at least BLOCK_ELEMENTS / 2 elements, far above NF4's 10k-element rounding
        # switch, so the same rounding rule applies as for the whole weight
        blocks = [
            compress_grouped(group_weight(block, reduction_axes, group_size), mode, codebook=codebook)
            for block in np.array_split(weight, min(weight.shape[0], -(-weight.size // BLOCK_ELEMENTS)))
        ]
        first = blocks[0]
        zero_point = None if first.zero_point is None else np.concatenate([b.zero_point for b in blocks])
        return CompressedWeight(
            np.concatenate([b.codes for b in blocks]),
            np.concatenate([b.scale for b in blocks]),
            zero_point,
            mode,
            first.bits,
            group_size,
            tuple(weight.shape),
            codebook=first.codebook,
        )
    return compress_grouped(group_weight(weight, reduction_axes, group_size), mode, scale, zero_point, codebook)


def dequantize_grouped(compressed: CompressedWeight) -> np.ndarray:
    """Returns the float32 weight in the grouped layout: ``levels(codes) * scale`` (times the global scale)."""
    scale = compressed.scale if compressed.global_scale is None else compressed.scale * compressed.global_scale
    kernel = kernel_for(compressed.mode, compressed.codebook)
    return kernel.levels(compressed.codes, compressed.zero_point) * scale


def decompress(compressed: CompressedWeight) -> np.ndarray:
    """Returns the float32 weight that the decompression subgraph computes, in the original shape."""
    return dequantize_grouped(compressed).reshape(compressed.original_shape)


def store(compressed: CompressedWeight) -> StoredWeight:
    """Packs a compressed weight for the IR in its mode's element types."""
    kernel = kernel_for(compressed.mode, compressed.codebook)
    return to_storage(compressed, kernel.storage, kernel.scale_storage, kernel.stored_offset, kernel.codebook_storage)


SCALE_BITS = {"f16": 16, "f8e8m0": 8, "f8e4m3": 8}


def stored_bits_per_weight(mode: str | Kernel, group_elements: int) -> float | None:
    """Bits the IR stores per weight in ``mode`` with a scale (and zero point) per ``group_elements`` weights: the
    code, plus the scale's and zero point's share (NVFP4's one float32 per weight is left out). None for a mode
    without a kernel (SpQR counts its own)."""
    kernel = mode if isinstance(mode, Kernel) else KERNELS.get(mode)
    if kernel is None:
        return None
    per_group = SCALE_BITS[kernel.scale_storage] + (kernel.bits if kernel.has_zero_point else 0)
    return kernel.bits + per_group / group_elements
