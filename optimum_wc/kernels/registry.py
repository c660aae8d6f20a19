"""Mode -> kernel registry: how each compression mode chooses parameters, quantizes, dequantizes and is stored.

Choosing the parameters and quantizing are separate steps so that the data-aware algorithms (scale estimation,
GPTQ) can quantize with parameters of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from optimum_wc.config.enums import CODE_BITS
from optimum_wc.kernels.groups import group_weight
from optimum_wc.kernels.integer import (
    asymmetric_parameters,
    integer_levels,
    quantize_integer,
    quantized_integer_levels,
    symmetric_parameters,
)
from optimum_wc.kernels.nf4 import nf4_levels, nf4_parameters, quantize_nf4, quantized_nf4_levels
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
    """

    bits: int
    storage: str
    has_zero_point: bool
    parameters: Callable[[np.ndarray, Axis, int], tuple[np.ndarray, np.ndarray | None]]
    quantize: Callable[[np.ndarray, np.ndarray, np.ndarray | None, int], np.ndarray]
    levels: Callable[[np.ndarray, np.ndarray | None], np.ndarray]
    quantized_levels: Callable[..., np.ndarray]
    integer: bool = True


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
}


def compress_grouped(
    grouped: GroupedWeight, mode: str, scale: np.ndarray | None = None, zero_point: np.ndarray | None = None
) -> CompressedWeight:
    """Compresses a grouped weight with ``mode``; with ``scale`` (and ``zero_point``) given, quantizes with them."""
    kernel = KERNELS[mode]
    if scale is None:
        scale, zero_point = kernel.parameters(grouped.data, grouped.axis, kernel.bits)
    elif kernel.has_zero_point and zero_point is None:
        raise ValueError(f"mode {mode} needs a zero point together with a precomputed scale")
    scale = np.asarray(scale, dtype=np.float32)
    codes = kernel.quantize(grouped.data, scale, zero_point, kernel.bits)
    if zero_point is not None:
        zero_point = np.asarray(zero_point).astype(np.int32)
    return CompressedWeight(codes, scale, zero_point, mode, kernel.bits, grouped.group_size, grouped.original_shape)


BLOCK_ELEMENTS = 2**20  # larger 2-D weights are compressed in blocks of output channels (cache-sized temporaries)


def compress(
    weight: np.ndarray,
    reduction_axes: tuple[int, ...],
    mode: str,
    group_size: int,
    scale: np.ndarray | None = None,
    zero_point: np.ndarray | None = None,
) -> CompressedWeight:
    """Compresses a float weight with ``mode`` (a ``CompressWeightsMode`` value) and ``group_size`` (-1: per channel).

    ``scale`` and ``zero_point``, when given, are in the grouped layout (size 1 on the group axis). A 2-D weight of
    more than :data:`BLOCK_ELEMENTS` reduced along its last axis is compressed in blocks of rows (each row's result
    depends on that row alone), so the float32 temporaries stay small; the result is the same.
    """
    if scale is None and weight.ndim == 2 and reduction_axes in ((1,), (-1,)) and weight.size > BLOCK_ELEMENTS:
        # blocks of whole rows and at least BLOCK_ELEMENTS / 2 elements, far above NF4's 10k-element rounding
        # switch, so the same rounding rule applies as for the whole weight
        blocks = [
            compress_grouped(group_weight(block, reduction_axes, group_size), mode)
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
        )
    return compress_grouped(group_weight(weight, reduction_axes, group_size), mode, scale, zero_point)


def dequantize_grouped(compressed: CompressedWeight) -> np.ndarray:
    """Returns the float32 weight in the grouped layout: ``levels(codes) * scale``."""
    return KERNELS[compressed.mode].levels(compressed.codes, compressed.zero_point) * compressed.scale


def decompress(compressed: CompressedWeight) -> np.ndarray:
    """Returns the float32 weight that the decompression subgraph computes, in the original shape."""
    return dequantize_grouped(compressed).reshape(compressed.original_shape)
