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
their error. Its groups are contiguous in that order, their parameters read as the loop reaches them, as in the
natural order; the weight is stored with its columns permuted and the activation is gathered in the same order at
run time (``GPTQResult.order``). With ``static_groups`` the groups stay contiguous in the original column order (the
stored layout does not change): each group's parameters are fixed from the original weight before the loop; this
is less accurate.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Callable

import numpy as np

from optimum_wc.config.advanced import AdvancedGPTQParameters
from optimum_wc.kernels.registry import Kernel, kernel_for

# (weight slice [out, gs], first column) -> (scale [out, 1], zero point [out, 1] or None)
GroupParameters = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class GPTQResult:
    """The fake-quantized weight ``[out, in]`` (original column order) and its parameters in the grouped layout
    (``[out, groups, 1]``, or ``[out, 1]`` per channel) of the stored weight ``weight[:, order]`` (``order`` None:
    the original order)."""

    weight: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray | None
    order: np.ndarray | None = None

    @property
    def stored(self) -> np.ndarray:
        """The weight in its stored column order."""
        return self.weight if self.order is None else self.weight[:, self.order]


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


class ExpertHessians:
    """One Hessian per expert of a 3-D weight ``[experts, out, in]`` whose MatMul takes ``[experts, tokens, in]``:
    ``H_e = 2/N sum_n x_{n,e} x_{n,e}^T`` with ``N`` the items (each item counts once), accumulated as one batched
    product per item, as nncf 3.4.0 does for fused MoE experts."""

    def __init__(self, experts: int, columns: int):
        self.matrix = np.zeros((experts, columns, columns), dtype=np.float32)
        self.items = 0

    def add(self, activation: np.ndarray) -> None:
        """Adds one item's input ``[experts, tokens, in]``."""
        self.matrix *= self.items / (self.items + 1)
        self.items += 1
        x = np.moveaxis(activation, -1, -2).astype(np.float32) * math.sqrt(2 / self.items)
        self.matrix += x @ np.moveaxis(x, -1, -2)


class SummedHessian:
    """``H = 2/N sum_n x_n x_n^T`` as a float64 sum of float32 products of many items at once, scaled at the end:
    faster than :class:`Hessian`'s running average (nncf's), and not identical to it."""

    ROWS = 1024  # tokens buffered before one product (a buffer of ROWS x in float32 per distinct input)

    def __init__(self, columns: int):
        self.sum = np.zeros((columns, columns), dtype=np.float64)
        self.items = 0
        self.buffer = np.empty((self.ROWS, columns), dtype=np.float32)
        self.rows = 0

    def add(self, activation: np.ndarray) -> None:
        """Adds one item's input ``[..., in]``; a 3D input counts as ``shape[0]`` items."""
        self.items += activation.shape[0] if activation.ndim == 3 else 1
        x = activation.reshape(-1, activation.shape[-1])
        if self.rows + x.shape[0] > self.ROWS:
            self._flush()
        if x.shape[0] > self.ROWS:
            x = x.astype(np.float32, copy=False)
            self.sum += x.T @ x
            return
        self.buffer[self.rows : self.rows + x.shape[0]] = x
        self.rows += x.shape[0]

    def _flush(self) -> None:
        if self.rows:
            x = self.buffer[: self.rows]
            self.sum += x.T @ x
            self.rows = 0

    @property
    def matrix(self) -> np.ndarray:
        self._flush()
        self.buffer = np.empty((0, self.sum.shape[0]), dtype=np.float32)  # no longer needed
        return (self.sum * (2 / max(self.items, 1))).astype(np.float32)


def min_max_parameters(mode: str | Kernel) -> GroupParameters:
    kernel = kernel_for(mode)

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
    # L^-T as a copy of its own: numpy then multiplies by gemm, as nncf does. ``L^-T @ L^-1`` on one buffer would
    # take syrk, whose sums round differently on some BLAS kernels (OpenBLAS's Haswell and Zen).
    transposed = lower_inverse.T.copy(order="K")
    return InverseHessian(np.linalg.cholesky(transposed @ lower_inverse).T, dead, order)


def gptq_quantize(
    weight: np.ndarray,
    inverse: InverseHessian,
    mode: str | Kernel,
    group_size: int,
    settings: AdvancedGPTQParameters = AdvancedGPTQParameters(),
    group_parameters: GroupParameters | None = None,
    parts: tuple[slice, ...] | None = None,
) -> GPTQResult:
    """Quantizes ``weight`` ``[out, in]`` with GPTQ given the inverse Hessian of its inputs; ``group_parameters``
    chooses each group's scale (min-max by default; scale estimation plugs in here).

    ``parts`` (row slices; default: all rows) are the weights stacked in ``weight``: every matrix product, and each
    call of ``group_parameters``, takes one part at a time, with the shapes a call per weight has. A BLAS product's
    rounding may depend on its row count (OpenBLAS's Haswell and Zen kernels sum the tiles at the edge of a matrix
    in another order), so products over stacked rows would not give each weight's own values bit for bit.

    A group's parameters come from ``W`` as updated by the blocks before it; with act order (``inverse.order``) the
    groups are those of the permuted ``W``, or, with ``settings.static_groups``, those of the original ``W`` with
    their parameters fixed before the loop.
    """
    kernel = kernel_for(mode)
    parts = parts or (slice(0, weight.shape[0]),)
    group_parameters = _per_part(group_parameters, parts) if group_parameters else min_max_parameters(mode)
    w = weight.astype(np.float32, copy=True)
    w[:, inverse.dead] = 0
    columns = w.shape[1]
    per_channel = group_size == -1
    group_size = columns if per_channel else group_size
    starts = range(0, columns, group_size)
    order = inverse.order
    if order is None or not settings.static_groups:
        permuted = w if order is None else w[:, order]
        parameters: list[tuple[np.ndarray, np.ndarray | None]] = []

        def parameters_at(column: int) -> tuple[np.ndarray, np.ndarray | None]:
            if column % group_size == 0:  # read when the group comes up: it holds the updates of earlier blocks
                parameters.append(group_parameters(permuted[:, column : column + group_size], column))
            return parameters[-1]

        quantized = _quantize_columns(permuted, inverse.upper, kernel, settings.block_size, parameters_at, parts)
    else:
        parameters = [group_parameters(w[:, start : start + group_size], start) for start in starts]
        quantized = _quantize_columns(
            w[:, order], inverse.upper, kernel, settings.block_size, lambda i: parameters[order[i] // group_size], parts
        )
    if order is not None:
        quantized[:, order] = quantized.copy()  # back to the original column order
    # one group per row (per channel): the same parameters in any column order, so the original layout is kept
    stored_order = None if order is None or settings.static_groups or per_channel else order

    scale = np.stack([p[0] for p in parameters], axis=1)
    zero_point = None if parameters[0][1] is None else np.stack([p[1] for p in parameters], axis=1)
    if per_channel:
        scale = scale[:, 0]
        zero_point = None if zero_point is None else zero_point[:, 0]
    return GPTQResult(quantized, scale.astype(np.float32), zero_point, stored_order)


def gptq_quantize_stacked(
    weights: list[np.ndarray],
    inverse: InverseHessian,
    mode: str | Kernel,
    group_size: int,
    settings: AdvancedGPTQParameters = AdvancedGPTQParameters(),
    group_parameters: GroupParameters | None = None,
) -> list[GPTQResult]:
    """:func:`gptq_quantize` of several weights ``[out_i, in]`` that share the inverse Hessian (the MatMuls of one
    input: q, k and v; gate and up), in one pass over their stacked rows.

    Every step of the algorithm treats the rows of ``W`` independently (the Hessian is shared, each row's scale,
    error and update are its own), and the matrix products take one weight's rows at a time, so the results are
    those of one call per weight; the element-wise work of the column loop, in one pass over the columns instead of
    several, is what it saves.
    """
    if len(weights) == 1:
        return [gptq_quantize(weights[0], inverse, mode, group_size, settings, group_parameters)]
    ends = np.cumsum([w.shape[0] for w in weights])
    parts = tuple(slice(start, end) for start, end in zip([0, *ends[:-1]], ends))
    stacked = gptq_quantize(np.concatenate(weights), inverse, mode, group_size, settings, group_parameters, parts)
    ends = ends[:-1]

    def rows(values: np.ndarray | None) -> list:
        return [None] * len(weights) if values is None else np.split(values, ends)

    parts = zip(rows(stacked.weight), rows(stacked.scale), rows(stacked.zero_point))
    return [GPTQResult(w, scale, zero, stacked.order) for w, scale, zero in parts]


def _per_part(group_parameters: GroupParameters, parts: tuple[slice, ...]) -> GroupParameters:
    """``group_parameters`` called on each part's rows of a weight slice, the results stacked back."""
    if len(parts) == 1:
        return group_parameters

    def parameters(weight: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray | None]:
        results = [group_parameters(weight[rows], column) for rows in parts]
        zero_points = None if results[0][1] is None else np.concatenate([r[1] for r in results])
        return np.concatenate([r[0] for r in results]), zero_points

    return parameters


def _quantize_columns(
    w: np.ndarray, hinv: np.ndarray, kernel, block_size: int, parameters_at, parts: tuple[slice, ...] | None = None
) -> np.ndarray:
    """Algorithm 1's loop over the columns of ``w`` (updated in place), ``parameters_at(j)`` giving column ``j``'s
    scale and zero point; returns the quantized columns ``s * (levels(Q(w_j)) - z)``.

    Each block is worked on transposed, its columns as contiguous rows: the same element-wise arithmetic in the
    same order (so the same values as column by column), about twice as fast; the update of the columns after a
    block is the same product as in the untransposed loop, one product per part of the rows (``parts``).
    """
    parts = parts or (slice(0, w.shape[0]),)
    columns = w.shape[1]
    quantized = np.zeros_like(w)
    for i1 in range(0, columns, block_size):
        i2 = min(i1 + block_size, columns)
        block = w[:, i1:i2].T.copy()  # [columns of the block, rows]
        errors, codes = np.empty_like(block), np.empty_like(block)
        hinv_block = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            scale, zero_point = parameters_at(i1 + i)
            scale = scale[:, 0]
            q = kernel.quantized_levels(
                block[i], scale, None if zero_point is None else zero_point[:, 0], kernel.bits, out=codes[i]
            )
            np.multiply(q, scale, out=q)
            error = np.divide(np.subtract(block[i], q, out=errors[i]), hinv_block[i, i], out=errors[i])
            block[i:] -= np.multiply.outer(hinv_block[i, i:], error)
        quantized[:, i1:i2] = codes.T
        if i2 < columns:
            for rows in parts:
                w[rows, i2:] -= np.ascontiguousarray(errors[:, rows].T) @ hinv[i1:i2, i2:]
    return quantized


def stack_experts(results: list[GPTQResult]) -> GPTQResult:
    """The per-expert results of one 3-D weight (fused MoE experts) as one: weight ``[experts, out, in]``,
    parameters with a leading experts axis (the grouped layout of the 3-D weight)."""
    zero_points = None if results[0].zero_point is None else np.stack([r.zero_point for r in results])
    return GPTQResult(np.stack([r.weight for r in results]), np.stack([r.scale for r in results]), zero_points)
