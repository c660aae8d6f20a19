"""Small float formats (FP4 E2M1, FP8 E4M3) with a scale per group, the MX formats' power-of-two scales (E8M0), and
NVFP4's two scale levels, in float32 as nncf 3.4.0 computes them.

Per group ``W`` of a format whose largest value is ``M`` (6 for E2M1, 448 for E4M3)::

    s = max|W| / M            (|s| < eps  ->  s = eps; nncf's OpenVINO path clamps max|W| before dividing)
    MX:  s = 2 ** clip(ceil(log2 s), -127, 127)        (stored as E8M0, the exponent biased by 127)
    q = round_to_format(W / s)                         W ~ q * s

``round_to_format`` is the conversion OpenVINO performs (nncf converts through it): round to nearest, ties to even,
E2M1 saturating at 6; E4M3 first rounds to float16, then to E4M3, and a value above 464 becomes NaN.

NVFP4 quantizes FP4 with ``group_size`` 16 and ``s`` as above, then quantizes the scales themselves to FP8 E4M3
with one float32 scale for the whole weight (``global = max|s| / 448``): ``W ~ q * s8 * global``.

Codes are the formats' bit patterns (uint8): E2M1 ``sign << 3 | exponent << 1 | mantissa``, E4M3
``sign << 7 | exponent << 3 | mantissa``.
"""

from __future__ import annotations

import functools

import numpy as np

from optimum_wc.kernels.integer import EPS
from optimum_wc.kernels.nncf_paths import openvino_log2, openvino_path

Axis = int | tuple[int, ...]


def _format_values(exponent_bits: int, mantissa_bits: int, bias: int) -> np.ndarray:
    """The values of the non-negative codes of a float format, in code order (no inf; NaN left to the caller)."""
    values = []
    for exponent in range(2**exponent_bits):
        for mantissa in range(2**mantissa_bits):
            fraction = mantissa / 2**mantissa_bits
            if exponent == 0:
                values.append(fraction * 2.0 ** (1 - bias))
            else:
                values.append((1 + fraction) * 2.0 ** (exponent - bias))
    return np.array(values, dtype=np.float32)


def _signed(positive: np.ndarray) -> np.ndarray:
    return np.concatenate([positive, -positive]).astype(np.float32)


F4E2M1_POSITIVE = _format_values(2, 1, 1)  # 0, 0.5, 1, 1.5, 2, 3, 4, 6
F4E2M1_VALUES = _signed(F4E2M1_POSITIVE)  # by code
F8E4M3_POSITIVE = _format_values(4, 3, 7)
F8E4M3_POSITIVE[-1] = np.nan  # code 0x7F is NaN; E4M3 has no infinity
F8E4M3_VALUES = _signed(F8E4M3_POSITIVE)
F4E2M1_MAX = np.float32(6.0)
F8E4M3_MAX = np.float32(448.0)
E8M0_BIAS = 127


# E2M1 decision boundaries between neighbouring magnitudes, and whether a value exactly on one goes up (to the even
# code): 0 | 0.5 | 1 | 1.5 | 2 | 3 | 4 | 6
F4E2M1_BOUNDARIES = ((0.25, False), (0.75, True), (1.25, False), (1.75, True), (2.5, False), (3.5, True), (5.0, False))


def to_f4e2m1(values: np.ndarray) -> np.ndarray:
    """FP4 E2M1 codes of float32 ``values``: nearest, ties to even, saturating at +-6 (the sign of zero is kept).
    The magnitude's code is the number of boundaries it passes (seven vectorised comparisons)."""
    magnitude = np.abs(values)
    codes = np.signbit(values).astype(np.uint8) << np.uint8(3)
    above = np.empty(values.shape, dtype=bool)
    for boundary, tie_up in F4E2M1_BOUNDARIES:
        (np.greater_equal if tie_up else np.greater)(magnitude, np.float32(boundary), out=above)
        codes += above
    return codes


def to_f8e4m3(values: np.ndarray) -> np.ndarray:
    """FP8 E4M3 codes of float32 ``values`` as OpenVINO converts them: rounded to float16 first, then to E4M3
    (nearest, ties to even); a magnitude above 464 (or NaN) is NaN. The second step is a lookup in a table of the
    codes of all 65536 float16 values (:func:`_half_to_f8e4m3`)."""
    return _F16_TO_F8E4M3[values.astype(np.float16).view(np.uint16)]


def _half_to_f8e4m3(half: np.ndarray) -> np.ndarray:
    """FP8 E4M3 codes of float16 ``half``, on its bits: a normal E4M3 value drops 7 of float16's 10 mantissa bits
    (rounded to even; a carry moves into the exponent) and rebiases the exponent from 15 to 7; below 2**-6 it is a
    multiple of 2**-9."""
    bits = half.view(np.uint16)
    magnitude = bits & np.uint16(0x7FFF)
    rounded = (magnitude + np.uint16(0x3F) + ((magnitude >> np.uint16(7)) & np.uint16(1))) >> np.uint16(7)
    rounded -= np.uint16(8 << 3)  # E4M3's exponent bias is 7, float16's 15 (wraps below 2**-6: replaced below)
    codes = np.minimum(rounded, np.uint16(0x7F)).astype(np.uint8)  # 0x7F (NaN) past 448
    small = magnitude < np.uint16(9 << 10)  # float16 exponent 9: 2**-6
    if small.any():
        codes[small] = np.rint(np.abs(half[small]).astype(np.float32) * np.float32(2**9)).astype(np.uint8)
    codes |= (bits >> np.uint16(15)).astype(np.uint8) << np.uint8(7)
    return codes


_F16_TO_F8E4M3 = _half_to_f8e4m3(np.arange(1 << 16, dtype=np.uint16).view(np.float16))


CONVERTERS = {"f4e2m1": (to_f4e2m1, F4E2M1_VALUES, F4E2M1_MAX), "f8e4m3": (to_f8e4m3, F8E4M3_VALUES, F8E4M3_MAX)}


def group_absmax(weight: np.ndarray, axis: Axis) -> np.ndarray:
    """``max|W|`` over ``axis`` (keepdims). Over a short last axis of power-of-two length (the groups), by halving it
    with elementwise maxima: the same values, several times faster than numpy's reduction over a short axis."""
    if axis in (-1, weight.ndim - 1) and weight.ndim > 1 and 2 <= weight.shape[-1] <= 64:
        size = weight.shape[-1]
        if size & (size - 1) == 0:
            values = np.abs(weight)
            while size > 1:
                size //= 2
                values = np.maximum(values[..., :size], values[..., size:])
            return values
    return np.max(np.abs(weight), axis=axis, keepdims=True)


def absmax_scale(weight: np.ndarray, axis: Axis, maximum: np.float32) -> np.ndarray:
    """``max|W| / maximum`` per group, clamped to eps as nncf clamps it on the path it takes for ``weight``."""
    absmax = group_absmax(weight, axis).astype(np.float32, copy=False)
    if openvino_path(weight.size):  # clamped, then divided
        return (np.where(np.abs(absmax) < EPS, EPS, absmax) / maximum).astype(np.float32)
    scale = (absmax / maximum).astype(np.float32)  # divided, then clamped
    return np.where(np.abs(scale) < EPS, EPS, scale).astype(np.float32)


# The ceiling of OpenVINO's log(s) / log(2) differs from the exact one only for float32 values within a few dozen
# ulps of a power of two (tests/kernels/test_floats.py checks every power, up to 20000 ulps away); within this
# many, the ceiling is OpenVINO's, looked up in a table made once
NEAR_POWER_ULPS = 512


@functools.cache
def _openvino_ceilings() -> np.ndarray:
    """``[256, 2 * NEAR_POWER_ULPS + 1]`` int32: the clipped ceiling of OpenVINO's log2 of the float32 whose bits are
    ``(e << 23) + offset``, at ``[e, offset + NEAR_POWER_ULPS]`` (positive finite values; the rows' ends past them
    are never looked up)."""
    offsets = np.arange(-NEAR_POWER_ULPS, NEAR_POWER_ULPS + 1, dtype=np.int64)
    bits = (np.arange(256, dtype=np.int64)[:, None] << 23) + offsets[None, :]
    values = np.clip(bits, 1, 0x7F7FFFFF).astype(np.uint32).view(np.float32)
    log2 = np.nan_to_num(openvino_log2()(values), nan=-np.inf)
    return np.clip(np.ceil(log2), -E8M0_BIAS, E8M0_BIAS).astype(np.int32)


def e8m0_exponent(scale: np.ndarray, nncf_size: int) -> np.ndarray:
    """``clip(ceil(log2 scale), -127, 127)`` as int32 for positive float32 ``scale``, with the log2 nncf computes for
    an array of ``nncf_size`` elements: numpy's float32 ``log2``, or OpenVINO's ``log(s) / log(2)`` (registered by the
    openvino layer), which differ from each other and from the exact value near powers of two. For the OpenVINO
    path, the exact ceiling, but OpenVINO's (from a table) within :data:`NEAR_POWER_ULPS` of a power of two, and
    OpenVINO's own for subnormal values."""
    if not openvino_path(nncf_size):
        return np.clip(np.ceil(np.log2(scale)), -E8M0_BIAS, E8M0_BIAS).astype(np.int32)
    exponent = np.clip(np.ceil(np.log2(scale.astype(np.float64))), -E8M0_BIAS, E8M0_BIAS).astype(np.int32)
    bits = np.ascontiguousarray(scale, dtype=np.float32).view(np.uint32)
    mantissa = bits & np.uint32(0x7FFFFF)
    near = (mantissa <= NEAR_POWER_ULPS) | (mantissa >= (1 << 23) - NEAR_POWER_ULPS)
    if near.any():
        close = bits[near].astype(np.int64)
        power = (close + NEAR_POWER_ULPS) >> 23  # the exponent field of the nearest power of two
        exponent[near] = _openvino_ceilings()[power, close - (power << 23) + NEAR_POWER_ULPS]
    subnormal = bits < np.uint32(1 << 23)  # below the eps clamp of every scale: asked of OpenVINO itself
    if subnormal.any():
        exponent[subnormal] = np.clip(np.ceil(openvino_log2()(scale[subnormal])), -E8M0_BIAS, E8M0_BIAS)
    return exponent


def float_parameters(fmt: str, mx: bool):
    """``(weight, axis, bits) -> (scale, None)`` of a float format, with MX's power-of-two rounding when ``mx``."""
    maximum = CONVERTERS[fmt][2]

    def parameters(weight: np.ndarray, axis: Axis, bits: int) -> tuple[np.ndarray, None]:
        scale = absmax_scale(weight, axis, maximum)
        if mx:
            scale = np.ldexp(np.float32(1), e8m0_exponent(scale, weight.size)).astype(np.float32)
        return scale, None

    return parameters


def float_quantizer(fmt: str):
    """``(weight, scale, zero_point, bits) -> codes`` of a float format."""
    convert = CONVERTERS[fmt][0]

    def quantize(weight: np.ndarray, scale: np.ndarray, zero_point: None, bits: int, nncf_size=None) -> np.ndarray:
        return convert(np.divide(weight, scale, dtype=np.float32))

    return quantize


def float_levels(fmt: str):
    """``(codes, zero_point) -> float32 values`` of a float format."""
    table = CONVERTERS[fmt][1]

    def levels(codes: np.ndarray, zero_point: None) -> np.ndarray:
        return table[codes]

    return levels


def nvfp4_scales(scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NVFP4's second level: the FP8 E4M3 values of ``scale`` (float32) and their float32 global scale, whose shape
    has a 1 for each axis of ``scale``."""
    axes = tuple(range(scale.ndim))
    global_scale = absmax_scale(scale, axes, F8E4M3_MAX)
    return F8E4M3_VALUES[to_f8e4m3(np.divide(scale, global_scale, dtype=np.float32))], global_scale
