"""Codebook (lookup-table) quantization: each weight is the index of the nearest value of a sorted codebook,
with a scale per group (per output channel by default), as nncf 3.4.0 computes it::

    s = max|W| / max|codebook|        (|s| < eps  ->  s = eps)
    i = number of midpoints between neighbouring codebook values below W / s      W ~ codebook[i] * s

The midpoints and the scale are computed in the codebook's own dtype (numpy's promotion), the normalised weight in
float32. CB4 is the fixed 16-value codebook below, stored as FP8 E4M3. Indices are stored as u4 for at most 16
values, u8 for at most 256, u16 above.
"""

from __future__ import annotations

import numpy as np

from optimum_wc.config.enums import codebook_bits
from optimum_wc.kernels.integer import EPS

Axis = int | tuple[int, ...]

CB4_LEVELS = np.array(
    [-3.5, -2.5, -1.875, -1.375, -1.0, -0.625, -0.3125, 0.0, 0.28125, 0.5625, 0.875, 1.125, 1.5, 2.0, 2.5, 3.5],
    dtype=np.float32,
)


def index_storage(size: int) -> tuple[str, int]:
    """The element type of the indices into a codebook of ``size`` values, and its bits (the config's rule)."""
    bits = codebook_bits(size)
    return f"u{bits}", bits


def codebook_scale(weight: np.ndarray, axis: Axis, codebook: np.ndarray) -> np.ndarray:
    """``max|W| / max|codebook|`` per group, clamped to eps, in the dtype numpy gives that division."""
    scale = np.max(np.abs(weight), axis=axis, keepdims=True) / np.max(np.abs(codebook))
    return np.where(np.abs(scale) < EPS, EPS, scale)


def codebook_indices(weight: np.ndarray, scale: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Indices of the nearest codebook values of ``weight / scale`` (a value on a midpoint takes the lower one),
    compared in the dtype numpy's ``searchsorted`` would use; up to 16 values by counting the midpoints below each
    weight (vectorised comparisons, several times faster than a binary search per element)."""
    midpoints = 0.5 * (codebook[1:] + codebook[:-1])
    normalized = np.divide(weight, scale.astype(np.float32), dtype=np.float32)
    storage, _ = index_storage(codebook.size)
    if storage != "u4":
        return np.searchsorted(midpoints, normalized).astype(np.uint16 if storage == "u16" else np.uint8)
    common = np.result_type(midpoints.dtype, np.float32)
    normalized = normalized.astype(common, copy=False)
    indices = np.zeros(normalized.shape, dtype=np.uint8)
    above = np.empty(normalized.shape, dtype=bool)
    for midpoint in midpoints.astype(common):
        np.greater(normalized, midpoint, out=above)
        indices += above
    return indices


def codebook_parameters(codebook: np.ndarray):
    def parameters(weight: np.ndarray, axis: Axis, bits: int) -> tuple[np.ndarray, None]:
        return codebook_scale(weight, axis, codebook), None

    return parameters


def codebook_quantizer(codebook: np.ndarray):
    def quantize(weight: np.ndarray, scale: np.ndarray, zero_point: None, bits: int, nncf_size=None) -> np.ndarray:
        return codebook_indices(weight, scale, codebook)

    return quantize


def codebook_levels(codebook: np.ndarray):
    values = codebook.astype(np.float32)

    def levels(codes: np.ndarray, zero_point: None) -> np.ndarray:
        return values[codes]

    return levels
