"""Weight-only sensitivity: how much a layer suffers from 8-bit quantization.

``e = max over output channels of mean((Q8(W) - W)**2)``, with ``Q8`` per-channel INT8_ASYM fake quantization; the
data-free score of mixed precision is ``1 / (e + eps)`` (nncf's WEIGHT_QUANTIZATION_ERROR).
"""

from __future__ import annotations

import numpy as np

from optimum_wc.kernels.integer import EPS, asymmetric_parameters


def int8_quantization_error(weight: np.ndarray, reduction_axes: tuple[int, ...]) -> np.float32:
    """Returns ``max(mean((Q8(W) - W)**2, reduction_axes))`` in float32 (in place on one float32 buffer)."""
    data = weight if weight.dtype == np.float32 else weight.astype(np.float32)
    axis = reduction_axes if len(reduction_axes) > 1 else reduction_axes[0]
    scale, zero_point = asymmetric_parameters(data, axis, 8)
    zero = zero_point.astype(np.float32)
    restored = np.divide(data, scale, dtype=np.float32)
    restored += zero
    np.rint(restored, out=restored)
    np.clip(restored, 0, 255, out=restored)
    restored -= zero
    restored *= scale
    restored -= data
    np.square(restored, out=restored)
    return np.max(np.mean(restored, axis=axis)).astype(np.float32)


def weight_sensitivity(weight: np.ndarray, reduction_axes: tuple[int, ...]) -> float:
    """The data-free score: larger means more sensitive, so the layer is kept in the backup precision first.

    Computed in float64 from the float32 error, with ``eps`` the machine epsilon of the weight's own type.
    """
    eps = float(np.finfo(weight.dtype).eps) if np.issubdtype(weight.dtype, np.floating) else float(EPS)
    return 1.0 / (float(int8_quantization_error(weight, reduction_axes)) + eps)
