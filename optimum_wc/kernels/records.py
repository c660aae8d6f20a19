"""Typed records returned by the kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CompressedWeight:
    """A weight in its compressed form, in the grouped layout the decompression subgraph uses.

    Attributes:
        codes: Integer codes. ``uint8`` in ``[0, 2**bits - 1]`` for asymmetric modes, ``int8`` in
            ``[-2**(bits-1), 2**(bits-1) - 1]`` for symmetric ones, ``uint8`` level indices in ``[0, 15]`` for NF4,
            ``uint8`` bit patterns for the float formats (``kernels/floats.py``).
        scale: ``float32`` dequantization scale, with size 1 on the reduced axis (keepdims); powers of two for
            the MX modes.
        zero_point: ``int32`` zero point of asymmetric modes (same shape as ``scale``), else None.
        mode: Name of the kernel that produced it (a ``CompressWeightsMode`` value).
        bits: Bits per code.
        group_size: Elements per group along the input-channel axis, -1 for per-channel.
        original_shape: Shape of the float weight before grouping.
        global_scale: NVFP4's float32 second-level scale (``scale`` then holds FP8 E4M3 values), else None.
        codebook: The values the codes index (codebook modes), else None.
    """

    codes: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray | None
    mode: str
    bits: int
    group_size: int
    original_shape: tuple[int, ...]
    global_scale: np.ndarray | None = None
    codebook: np.ndarray | None = None


@dataclass(frozen=True)
class GroupedWeight:
    """A float32 weight reshaped so that each quantization group lies along ``axis``."""

    data: np.ndarray
    axis: int
    original_shape: tuple[int, ...]
    group_size: int
