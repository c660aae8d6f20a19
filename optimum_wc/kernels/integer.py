"""Uniform integer quantization (INT8/INT4, symmetric and asymmetric), in float32 as nncf computes it.

Asymmetric, ``b`` bits, ``hi = 2**b - 1``, over each group ``W``::

    lo_W = min(min(W), 0)      hi_W = max(max(W), 0)
    s    = (hi_W - lo_W) / hi                 (|s| < eps  ->  s = eps)
    z    = clip(-round(lo_W / s), 0, hi)
    q    = clip(round(W / s + z), 0, hi)      W ~ (q - z) * s

Symmetric, ``f = 2**(b-1)``: the element of largest magnitude maps to ``-f``, so the scale is signed::

    s = (|min(W)| if |min(W)| >= max(W) else -max(W)) / f     (|s| < eps  ->  s = eps)
    q = clip(round(W / s), -f, f - 1)                          W ~ q * s

``round`` is round-half-to-even and ``eps`` is float32 machine epsilon.
"""

from __future__ import annotations

import numpy as np

from optimum_wc.kernels.nncf_paths import openvino_path

EPS = np.finfo(np.float32).eps
Axis = int | tuple[int, ...]


def _clamp_eps(scale: np.ndarray) -> np.ndarray:
    return np.where(np.abs(scale) < EPS, EPS, scale).astype(np.float32, copy=False)


def asymmetric_parameters(weight: np.ndarray, axis: Axis, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns the float32 scale and int32 zero point of asymmetric quantization, reduced over ``axis``."""
    level_high = 2**bits - 1
    low = np.minimum(np.min(weight, axis=axis, keepdims=True), np.float32(0))
    high = np.maximum(np.max(weight, axis=axis, keepdims=True), np.float32(0))
    scale = _clamp_eps((high - low) / np.float32(level_high))
    zero_point = np.float32(0) - np.round(low / scale)
    zero_point = np.clip(zero_point.astype(np.int32), 0, level_high)
    return scale, zero_point


def symmetric_scale(weight: np.ndarray, axis: Axis, bits: int) -> np.ndarray:
    """Returns the signed float32 scale of symmetric quantization, reduced over ``axis``."""
    factor = np.float32(2 ** (bits - 1))
    abs_min = np.abs(np.min(weight, axis=axis, keepdims=True))
    high = np.max(weight, axis=axis, keepdims=True)
    scale = np.where(abs_min >= high, abs_min, -high) / factor
    return _clamp_eps(scale)


def _rounded_codes(
    weight: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, bits: int, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The codes as float32 (``clip(round(W / s + z))``, in ``out`` when given), and the zero point as float32 (None
    without one)."""
    codes = np.divide(weight, scale, dtype=np.float32, out=out)
    zero = None if zero_point is None else zero_point.astype(np.float32)
    if zero is not None:
        codes += zero
        low, high = 0, 2**bits - 1
    else:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    np.rint(codes, out=codes)
    np.clip(codes, low, high, out=codes)
    return codes, zero


def _nan_codes_as_nncf(codes: np.ndarray, scale: np.ndarray, low: int, size: int) -> None:
    """A zero or NaN scale (candidates of scale estimation for an all-zero group, or from the NaN mean of an input
    that no token reached, such as an expert no token was routed to) makes NaN codes: nncf's OpenVINO path clamps
    them to the lowest level, its numpy path casts them to 0 (see nncf_paths.py)."""
    if not np.all(np.abs(scale) > 0):  # False for a zero or a NaN
        np.copyto(codes, low if openvino_path(size) else 0, where=np.isnan(codes))


def _low(zero_point: np.ndarray | None, bits: int) -> int:
    return 0 if zero_point is not None else -(2 ** (bits - 1))


def quantize_integer(
    weight: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, bits: int, nncf_size: int | None = None
) -> np.ndarray:
    """Returns the integer codes: ``uint8`` with a zero point (asymmetric), ``int8`` without (symmetric).
    ``nncf_size``: the size of the array nncf quantizes at once (default ``weight.size``)."""
    codes, zero = _rounded_codes(weight, scale, zero_point, bits)
    _nan_codes_as_nncf(codes, scale, _low(zero_point, bits), weight.size if nncf_size is None else nncf_size)
    return codes.astype(np.int8 if zero is None else np.uint8)


def quantized_integer_levels(
    weight: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    bits: int,
    out: np.ndarray | None = None,
    nncf_size: int | None = None,
) -> np.ndarray:
    """``integer_levels(quantize_integer(...), zero_point)`` in float32 without the integer round trip: the same
    values (small integers, exact in float32), fewer passes over the data; written into ``out`` when given."""
    levels, zero = _rounded_codes(weight, scale, zero_point, bits, out)
    _nan_codes_as_nncf(levels, scale, _low(zero_point, bits), weight.size if nncf_size is None else nncf_size)
    if zero is not None:
        levels -= zero
    return levels


def symmetric_parameters(weight: np.ndarray, axis: Axis, bits: int) -> tuple[np.ndarray, None]:
    return symmetric_scale(weight, axis, bits), None


def integer_levels(codes: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
    """Returns the unscaled float32 values of the codes: ``q - z`` (asymmetric) or ``q`` (symmetric)."""
    values = codes.astype(np.int32)
    if zero_point is not None:
        values = values - zero_point.astype(np.int32)
    return values.astype(np.float32)
