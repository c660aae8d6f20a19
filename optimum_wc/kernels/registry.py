"""Mode -> kernel registry: how each compression mode quantizes, dequantizes and is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from optimum_wc.kernels.groups import group_weight
from optimum_wc.kernels.integer import compress_asymmetric, compress_symmetric, dequantize_integer
from optimum_wc.kernels.nf4 import compress_nf4, dequantize_nf4
from optimum_wc.kernels.records import CompressedWeight, GroupedWeight


@dataclass(frozen=True)
class Kernel:
    """How one mode compresses a weight.

    Attributes:
        bits: Bits per code.
        storage: OpenVINO element type name of the codes constant (``u8``, ``i8``, ``u4``, ``i4``, ``nf4``).
        has_zero_point: Whether the mode stores a zero point (of the same element type as the codes).
        compress: ``(grouped weight, bits, mode) -> CompressedWeight``.
        dequantize: ``CompressedWeight -> float32`` array in the grouped layout.
    """

    bits: int
    storage: str
    has_zero_point: bool
    compress: Callable[[GroupedWeight, int, str], CompressedWeight]
    dequantize: Callable[[CompressedWeight], np.ndarray]


KERNELS: dict[str, Kernel] = {
    "int8_asym": Kernel(8, "u8", True, compress_asymmetric, dequantize_integer),
    "int8_sym": Kernel(8, "i8", False, compress_symmetric, dequantize_integer),
    "int4_asym": Kernel(4, "u4", True, compress_asymmetric, dequantize_integer),
    "int4_sym": Kernel(4, "i4", False, compress_symmetric, dequantize_integer),
    "nf4": Kernel(4, "nf4", False, compress_nf4, dequantize_nf4),
}


def compress(weight: np.ndarray, reduction_axes: tuple[int, ...], mode: str, group_size: int) -> CompressedWeight:
    """Compresses a float weight with ``mode`` (a ``CompressWeightsMode`` value) and ``group_size`` (-1: per channel)."""
    kernel = KERNELS[mode]
    return kernel.compress(group_weight(weight, reduction_axes, group_size), kernel.bits, mode)


def decompress(compressed: CompressedWeight) -> np.ndarray:
    """Returns the float32 weight that the decompression subgraph computes, in the original shape."""
    return KERNELS[compressed.mode].dequantize(compressed).reshape(compressed.original_shape)
