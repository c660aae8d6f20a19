"""Scale estimation: per-group scales that minimise the output error of a MatMul on calibration data.

For a weight ``W`` (``[out, in]``, groups along ``in``), input means ``X`` (``[in, n]``) and channel magnitudes
``s`` (``[in]``), each group starts from the min-max scale ``d0`` with its zero point ``z`` fixed, and minimises::

    L(d) = mean_n ((W_g X_g - Q_d(W_g) X_g) ** 2)   [+ penalty * mean((Q_d(W_g) - W_g) ** 2)]

over candidates ``d* = sum_j a_j |w_j| / (|t_j| + 0.001 [t_j = 0])``, with ``t = q - z`` the unscaled codes and
``a`` the importance of each weight: ``s`` of its input channel, zero where ``t = 0``, normalised to sum 1 per
group. ``initial_steps`` refine ``d*`` from the codes of the best scale so far; ``scale_steps`` re-derive it from
the codes of ``(1 - 0.05 k) d0``. A candidate replaces the best when its loss is not larger. (nncf 3.4.0's
"scale estimation", in float32 as nncf computes it.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimum_wc.kernels.registry import KERNELS

EPS = np.finfo(np.float32).eps
ZERO_CODE_OFFSET = np.float32(0.001)
ZERO_TOLERANCE = 1e-8  # np.isclose's default absolute tolerance


@dataclass(frozen=True)
class ScaleEstimationSettings:
    subset_size: int = 64
    initial_steps: int = 5
    scale_steps: int = 5
    weight_penalty: float = -1.0


@dataclass(frozen=True)
class EstimatedParameters:
    """Scale (and zero point) in the grouped layout ``[out, groups, 1]``, or ``[out, 1]`` per channel."""

    scale: np.ndarray
    zero_point: np.ndarray | None


class _Group:
    """The fixed parts of the problem: grouped weights, importance, reference outputs ``W_g X_g``."""

    def __init__(self, weight: np.ndarray, s: np.ndarray, x: np.ndarray, mode: str, group_size: int, penalty: float):
        out, channels = weight.shape
        self.kernel = KERNELS[mode]
        self.w = weight.reshape(out, channels // group_size, group_size)  # [out, G, gs]
        self.x = x.reshape(channels // group_size, group_size, x.shape[-1])  # [G, gs, n]
        self.s = s.reshape(1, channels // group_size, group_size)
        self.penalty = penalty
        self.fp_out = np.matmul(self.w.transpose(1, 0, 2), self.x)  # [G, out, n]

    def levels(self, scale: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
        """``q - z`` for the codes ``q`` of ``W`` with ``scale`` and (float32) ``zero_point``."""
        return self.kernel.quantized_levels(self.w, scale, zero_point, self.kernel.bits)

    def unscaled(self, scale: np.ndarray, zero_point: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``t`` and the mask of zero codes ``[t = 0]``."""
        t = self.levels(scale, zero_point)
        return t, np.abs(t) <= ZERO_TOLERANCE  # np.isclose(t, 0), without its overhead

    def loss(self, scale: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
        """``L`` per output row and group, ``[out, G]``."""
        q = self.levels(scale, zero_point) * scale
        q_out = np.matmul(q.transpose(1, 0, 2), self.x)
        loss = np.mean((self.fp_out - q_out) ** 2, axis=-1).T
        if self.penalty > 0:
            loss = loss + self.penalty * np.mean((q - self.w) ** 2, axis=-1)
        return loss


def _candidate(abs_w: np.ndarray, t: np.ndarray, zero_mask: np.ndarray, importance: np.ndarray) -> np.ndarray:
    """``d* = sum_j a_j |w_j| / (|t_j| + 0.001 [t_j = 0])``, per group."""
    offset = ZERO_CODE_OFFSET * zero_mask.astype(np.float32)
    return np.sum(abs_w / (np.abs(t) + offset) * importance, axis=-1, keepdims=True)


def estimate_scale(
    weight: np.ndarray,
    s: np.ndarray,
    x: np.ndarray,
    mode: str,
    group_size: int,
    settings: ScaleEstimationSettings = ScaleEstimationSettings(),
) -> EstimatedParameters:
    """Returns the estimated scale (and the min-max zero point) of ``weight`` ``[out, in]`` for ``mode``.

    Args:
        weight: float32 ``[out, in]``.
        s: ``[in]`` channel magnitudes (max over items of the mean absolute input).
        x: ``[in, n]`` item means of the input.
        mode: A 4-bit mode (``int4_sym``, ``int4_asym``, ``nf4``).
        group_size: Group size along ``in``; -1 for one group per row.
    """
    per_channel = group_size == -1
    group_size = weight.shape[1] if per_channel else group_size
    problem = _Group(weight.astype(np.float32, copy=False), s, x, mode, group_size, settings.weight_penalty)
    kernel = problem.kernel

    scale, zero_point = kernel.parameters(problem.w, 2, kernel.bits)
    zp = None if zero_point is None else zero_point.astype(np.float32)
    t, zero_mask = problem.unscaled(scale, zp)
    importance = np.where(zero_mask, np.float32(0), np.ones_like(problem.w) * problem.s)
    importance = importance / (np.sum(importance, axis=-1, keepdims=True) + EPS)

    abs_w = np.abs(problem.w)
    best_loss = problem.loss(scale, zp)
    best = scale
    sign = scale / np.abs(scale)

    def consider(candidate: np.ndarray) -> None:
        nonlocal best, best_loss
        loss = problem.loss(candidate, zp)
        worse = (loss > best_loss).astype(np.float32)
        best_loss = worse * best_loss + (1 - worse) * loss
        worse = worse[..., None]
        best = worse * best + (1 - worse) * candidate

    for step in range(settings.initial_steps):
        consider(_candidate(abs_w, t, zero_mask, importance) * sign)
        if step < settings.initial_steps - 1:
            t, zero_mask = problem.unscaled(best, zp)
    for step in range(settings.scale_steps):
        factor = 1.0 - 0.05 * step
        t, zero_mask = problem.unscaled(factor * scale, zp)
        consider(_candidate(abs_w, t, zero_mask, importance) * sign)

    if per_channel:
        best = best[:, 0, :]
        zp = None if zp is None else zp[:, 0, :]
    return EstimatedParameters(best.astype(np.float32), zp)
