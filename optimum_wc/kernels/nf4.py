"""NF4: 16 NormalFloat levels in [-1, 1] with an absmax scale per group (QLoRA, Dettmers et al., 2023)::

s = max|W|        (|s| < eps  ->  s = eps)
i = index of the level nearest to W / s        W ~ NF4[i] * s
"""

from __future__ import annotations

import numpy as np

from optimum_wc.kernels.integer import EPS
from optimum_wc.kernels.nncf_paths import openvino_path

NF4_LEVELS = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    dtype=np.float32,
)

# Decision boundaries. Midpoints of adjacent levels in float32; a value equal to one goes to the lower level.
NF4_MIDPOINTS = ((NF4_LEVELS[1:] + NF4_LEVELS[:-1]) / np.float32(2)).astype(np.float32)

# OpenVINO's own f32 -> nf4 conversion uses these boundaries, a value equal to one going to the upper level.
# nncf converts weights on its OpenVINO path (nncf_paths.py) through OpenVINO, so they round this way; the two rules
# differ only for values exactly on a boundary (tests/kernels/test_nf4.py checks both).
OPENVINO_NF4_BOUNDARIES = np.array(
    [
        -0.8480963706970215,
        -0.6106328368186951,
        -0.45999523997306824,
        -0.33967939019203186,
        -0.23460738360881805,
        -0.13791172206401825,
        -0.04552501440048218,
        0.03979015350341797,
        0.12025526165962219,
        0.203521266579628,
        0.2920137941837311,
        0.3893125653266907,
        0.5016634464263916,
        0.642786979675293,
        0.8614784479141235,
    ],
    dtype=np.float32,
)


def nf4_scale(weight: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    scale = np.max(np.abs(weight), axis=axis, keepdims=True)
    return np.where(np.abs(scale) < EPS, EPS, scale).astype(np.float32, copy=False)


def nf4_indices(normalized: np.ndarray, openvino_rounding: bool) -> np.ndarray:
    """Returns the uint8 index of the nearest NF4 level for each value of ``normalized`` (in [-1, 1]).

    The index is the number of boundaries below the value (at or below it with OpenVINO's rounding); fifteen
    vectorised comparisons are several times faster than a binary search per element.
    """
    indices = np.zeros(normalized.shape, dtype=np.uint8)
    compare = np.greater_equal if openvino_rounding else np.greater
    boundaries = OPENVINO_NF4_BOUNDARIES if openvino_rounding else NF4_MIDPOINTS
    above = np.empty(normalized.shape, dtype=bool)
    for boundary in boundaries:
        compare(normalized, boundary, out=above)
        indices += above
    return indices


def nf4_parameters(weight: np.ndarray, axis: int | tuple[int, ...], bits: int) -> tuple[np.ndarray, None]:
    return nf4_scale(weight, axis), None


def quantize_nf4(
    weight: np.ndarray, scale: np.ndarray, zero_point: None, bits: int, nncf_size: int | None = None
) -> np.ndarray:
    """Returns the uint8 level indices of ``weight / scale`` (OpenVINO's tie rule on nncf's OpenVINO path for an
    array of ``nncf_size`` elements, default ``weight.size``)."""
    normalized = np.divide(weight, scale, dtype=np.float32)
    return nf4_indices(normalized, openvino_path(weight.size if nncf_size is None else nncf_size))


def nf4_levels(codes: np.ndarray, zero_point: None) -> np.ndarray:
    return NF4_LEVELS[codes]


def quantized_nf4_levels(
    weight: np.ndarray,
    scale: np.ndarray,
    zero_point: None,
    bits: int,
    out: np.ndarray | None = None,
    nncf_size: int | None = None,
) -> np.ndarray:
    """``nf4_levels(quantize_nf4(...))``, written into ``out`` (float32) when given."""
    if out is None:
        return nf4_levels(quantize_nf4(weight, scale, zero_point, bits, nncf_size), zero_point)
    normalized = np.divide(weight, scale, dtype=np.float32, out=out)
    indices = nf4_indices(normalized, openvino_path(weight.size if nncf_size is None else nncf_size))
    return np.take(NF4_LEVELS, indices, out=out)
