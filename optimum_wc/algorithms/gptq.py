"""GPTQ (Frantar et al., 2023): quantize a weight column by column, spreading each column's error over the
columns not yet quantized so that the layer's output on calibration data changes least.

Algorithm 1 of the paper, for ``W`` ``[out, in]`` and the Hessian of the layer-wise loss ``H = 2/N sum_n x_n x_n^T``
(``N`` counted in items, as nncf does)::

    dead columns (H_jj = 0): H_jj = 1, W[:, j] = 0
    H += damp * mean(diag(H)) * I
    Hinv = Cholesky(H^-1)^T                              (upper triangular)
    for each block B of ``block_size`` columns:
        for each column j in B:
            if j starts a group: (scale, zero point) of W[:, j:j+gs]  (min-max, or scale estimation)
            q_j = Q(w_j)
            e_j = (w_j - q_j) / Hinv_jj
            W[:, j:B_end] -= e_j Hinv[j, j:B_end]
        W[:, B_end:] -= E_B Hinv[B, B_end:]

Group parameters come from ``W`` as updated by the previous blocks (not by the columns of the current block), as in
nncf 3.4.0; the arithmetic is float32 like nncf's.

``act_order`` (an optimum-wc option, off by default; not in nncf) quantizes the columns in order of decreasing
``H_jj``, so that the inputs with the most energy are quantized first and the later, less important columns absorb
their error. Groups stay contiguous in the original column order (the stored layout does not change): each group's
parameters are fixed from the original weight before the loop ("static groups").
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Callable

import numpy as np

from optimum_wc.kernels.registry import KERNELS

# (weight slice [out, gs], first column) -> (scale [out, 1], zero point [out, 1] or None)
GroupParameters = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class GPTQSettings:
    damp_percent: float = 0.1
    block_size: int = 128
    subset_size: int = 128
    act_order: bool = False


@dataclass(frozen=True)
class GPTQResult:
    """The fake-quantized weight ``[out, in]`` and its parameters in the grouped layout (``[out, groups, 1]``, or
    ``[out, 1]`` per channel)."""

    weight: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray | None


class Hessian:
    """Accumulates ``H = 2/N sum_n x_n x_n^T`` over calibration items, one item at a time (bounded memory)."""

    def __init__(self, columns: int):
        self.matrix = np.zeros((columns, columns), dtype=np.float32)
        self.items = 0

    def add(self, activation: np.ndarray) -> None:
        """Adds one item's input ``[..., in]``; a 3D input counts as ``shape[0]`` items."""
        batch = activation.shape[0] if activation.ndim == 3 else 1
        x = activation.reshape(-1, activation.shape[-1]).astype(np.float32, copy=False).T
        self.matrix *= self.items / (self.items + batch)
        self.items += batch
        x = x * math.sqrt(2 / self.items)
        self.matrix += x @ x.T


def min_max_parameters(mode: str) -> GroupParameters:
    kernel = KERNELS[mode]

    def parameters(weight: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray | None]:
        return kernel.parameters(weight, 1, kernel.bits)

    return parameters


@dataclass(frozen=True)
class InverseHessian:
    """What GPTQ needs of ``H``: the upper Cholesky factor of the damped inverse, the dead input columns, and the
    column order (``None``: the natural order; else ``upper`` is that of the permuted ``H[order][:, order]``)."""

    upper: np.ndarray
    dead: np.ndarray
    order: np.ndarray | None = None


def invert_hessian(hessian: np.ndarray, damp_percent: float, act_order: bool = False) -> InverseHessian:
    """``Hinv = Cholesky((H + damp * mean(diag H) * I)^-1)^T`` after setting dead diagonal entries to 1 (float32);
    with ``act_order``, of ``H`` permuted by decreasing diagonal."""
    h = hessian.astype(np.float32, copy=True)
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    order = None
    if act_order:
        order = np.argsort(-np.diag(h), kind="stable")
        h = h[order][:, order]
    diagonal = np.arange(h.shape[0])
    h[diagonal, diagonal] += damp_percent * np.mean(np.diag(h))
    lower_inverse = np.linalg.inv(np.linalg.cholesky(h))
    return InverseHessian(np.linalg.cholesky(lower_inverse.T @ lower_inverse).T, dead, order)


def gptq_quantize(
    weight: np.ndarray,
    inverse: InverseHessian,
    mode: str,
    group_size: int,
    settings: GPTQSettings = GPTQSettings(),
    group_parameters: GroupParameters | None = None,
) -> GPTQResult:
    """Quantizes ``weight`` ``[out, in]`` with GPTQ given the inverse Hessian of its inputs; ``group_parameters``
    chooses each group's scale (min-max by default; scale estimation plugs in here)."""
    kernel = KERNELS[mode]
    group_parameters = group_parameters or min_max_parameters(mode)
    w = weight.astype(np.float32, copy=True)
    w[:, inverse.dead] = 0
    if inverse.order is not None:
        return _gptq_act_order(w, inverse, kernel, group_size, settings, group_parameters)
    hinv = inverse.upper

    columns = w.shape[1]
    per_channel = group_size == -1
    group_size = columns if per_channel else group_size
    quantized = np.zeros_like(w)
    scales, zero_points = [], []
    for i1 in range(0, columns, settings.block_size):
        i2 = min(i1 + settings.block_size, columns)
        block = w[:, i1:i2].copy()
        errors = np.zeros_like(block)
        hinv_block = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            column = i1 + i
            if column % group_size == 0:
                scale, zero_point = group_parameters(w[:, column : column + group_size], column)
                scales.append(scale)
                zero_points.append(zero_point)
            w_j = block[:, i : i + 1]
            codes = kernel.quantize(w_j, scales[-1], zero_points[-1], kernel.bits)
            q_j = kernel.levels(codes, None)
            if zero_points[-1] is not None:
                q_j = q_j - zero_points[-1].astype(np.float32)
            q_j = (q_j * scales[-1])[:, 0]
            quantized[:, column] = q_j
            error = (block[:, i] - q_j) / hinv_block[i, i]
            block[:, i:] -= np.outer(error, hinv_block[i, i:])
            errors[:, i] = error
        w[:, i2:] -= errors @ hinv[i1:i2, i2:]

    scale = np.stack(scales, axis=1)
    zero_point = None if zero_points[0] is None else np.stack(zero_points, axis=1)
    if per_channel:
        scale = scale[:, 0]
        zero_point = None if zero_point is None else zero_point[:, 0]
    return GPTQResult(quantized, scale.astype(np.float32), zero_point)


def _quantize_column(kernel, column: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
    """``q = s * (levels(Q(w)) - z)`` for one column ``[out, 1]`` -> ``[out]``."""
    q = kernel.levels(kernel.quantize(column, scale, zero_point, kernel.bits), None)
    if zero_point is not None:
        q = q - zero_point.astype(np.float32)
    return (q * scale)[:, 0]


def _gptq_act_order(w, inverse: InverseHessian, kernel, group_size: int, settings: GPTQSettings, group_parameters):
    """GPTQ over the columns in ``inverse.order``, with each group's parameters fixed from ``w`` beforehand."""
    columns = w.shape[1]
    per_channel = group_size == -1
    group_size = columns if per_channel else group_size
    fixed = [group_parameters(w[:, start : start + group_size], start) for start in range(0, columns, group_size)]
    order, hinv = inverse.order, inverse.upper
    permuted = w[:, order]
    quantized = np.zeros_like(permuted)
    for i1 in range(0, columns, settings.block_size):
        i2 = min(i1 + settings.block_size, columns)
        block = permuted[:, i1:i2].copy()
        errors = np.zeros_like(block)
        hinv_block = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            scale, zero_point = fixed[order[i1 + i] // group_size]
            q_j = _quantize_column(kernel, block[:, i : i + 1], scale, zero_point)
            quantized[:, i1 + i] = q_j
            error = (block[:, i] - q_j) / hinv_block[i, i]
            block[:, i:] -= np.outer(error, hinv_block[i, i:])
            errors[:, i] = error
        permuted[:, i2:] -= errors @ hinv[i1:i2, i2:]
    result = np.empty_like(quantized)
    result[:, order] = quantized
    scale = np.stack([p[0] for p in fixed], axis=1)
    zero_point = None if fixed[0][1] is None else np.stack([p[1] for p in fixed], axis=1)
    if per_channel:
        scale = scale[:, 0]
        zero_point = None if zero_point is None else zero_point[:, 0]
    return GPTQResult(result, scale.astype(np.float32), zero_point)

