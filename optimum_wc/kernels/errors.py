"""Weight-only sensitivity: how much a layer suffers from 8-bit quantization.

``e = max over output channels of mean((Q8(W) - W)**2)``, with ``Q8`` per-channel INT8_ASYM fake quantization; the
data-free score of mixed precision is ``1 / (e + eps)`` (nncf's WEIGHT_QUANTIZATION_ERROR).
"""

from __future__ import annotations

import numpy as np

from optimum_wc.kernels.integer import EPS, asymmetric_parameters


def _int8_residual(weight: np.ndarray, reduction_axes: tuple[int, ...]) -> tuple[np.ndarray, int | tuple[int, ...]]:
    """``Q8(W) - W`` in float32, computed in place on one buffer, and the reduction axis."""
    data = weight if weight.dtype == np.float32 else weight.astype(np.float32)
    axis = reduction_axes if len(reduction_axes) > 1 else reduction_axes[0]
    scale, zero_point = asymmetric_parameters(data, axis, 8)
    zero = zero_point.astype(np.float32)
    residual = np.divide(data, scale, dtype=np.float32)
    residual += zero
    np.rint(residual, out=residual)
    np.clip(residual, 0, 255, out=residual)
    residual -= zero
    residual *= scale
    residual -= data
    return residual, axis


def int8_quantization_error(weight: np.ndarray, reduction_axes: tuple[int, ...]) -> np.float32:
    """Returns ``max(mean((Q8(W) - W)**2, reduction_axes))`` in float32."""
    residual, axis = _int8_residual(weight, reduction_axes)
    np.square(residual, out=residual)
    return np.max(np.mean(residual, axis=axis)).astype(np.float32)


def int8_frobenius_error(weight: np.ndarray, reduction_axes: tuple[int, ...]) -> float:
    """Returns ``||Q8(W) - W||_F`` (the weight term of the Hessian-based metric)."""
    residual, _ = _int8_residual(weight, reduction_axes)
    return float(np.linalg.norm(residual.reshape(-1)))


def sensitivity_of(error: np.float32, dtype: np.dtype) -> float:
    """``1 / (e + eps)`` in float64 from the float32 error, ``eps`` the machine epsilon of the weight's own type."""
    eps = float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else float(EPS)
    return 1.0 / (float(error) + eps)


def weight_sensitivity(weight: np.ndarray, reduction_axes: tuple[int, ...]) -> float:
    """The data-free score: larger means more sensitive, so the layer is kept in the backup precision first."""
    return sensitivity_of(int8_quantization_error(weight, reduction_axes), weight.dtype)
