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

from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples
from optimum_wc.config.advanced import AdvancedScaleEstimationParameters
from optimum_wc.kernels.nncf_paths import openvino_path
from optimum_wc.kernels.registry import Kernel, kernel_for

EPS = np.finfo(np.float32).eps
ZERO_CODE_OFFSET = np.float32(0.001)
ZERO_TOLERANCE = 1e-8  # np.isclose's default absolute tolerance


def c_ordered_like_nncf(size: int, mode: str | Kernel) -> bool:
    """Whether nncf's quantized arrays are C-ordered for a weight of ``size`` elements in ``mode``: on its OpenVINO
    path, and on its numpy path for float levels (NF4); its numpy integer path keeps the weight's memory order."""
    kernel = kernel_for(mode)
    return (openvino_path(size) and not kernel.always_numpy) or not kernel.integer


@dataclass(frozen=True)
class EstimatedParameters:
    """Scale (and zero point) in the grouped layout ``[out, groups, 1]``, or ``[out, 1]`` per channel."""

    scale: np.ndarray
    zero_point: np.ndarray | None


class _Group:
    """The fixed parts of the problem: grouped weights, importance, reference outputs ``W_g X_g``; and the work
    buffers every step reuses (fresh temporaries of this size would each be mapped and page-faulted anew)."""

    def __init__(
        self,
        weight: np.ndarray,
        s: np.ndarray,
        x: np.ndarray,
        mode: str | Kernel,
        group_size: int,
        penalty: float,
        nncf_size: int,
    ):
        out, channels = weight.shape
        self.kernel = kernel_for(mode)
        self.w = weight.reshape(out, channels // group_size, group_size)  # [out, G, gs]
        self.abs_w = np.abs(self.w)
        self.x = x.reshape(channels // group_size, group_size, x.shape[-1])  # [G, gs, n]
        self.s = s.reshape(1, channels // group_size, group_size)
        self.penalty = penalty
        self.fp_out = np.matmul(self.w.transpose(1, 0, 2), self.x)  # [G, out, n]
        self.nncf_size = nncf_size  # the size nncf quantizes at once, which picks its arithmetic path
        # C-ordered, or in the weight's memory order (a strided view for a weight stored transposed), as nncf's
        # arrays are: the order sets how BLAS and numpy sum, so that the sums round alike.
        order = "C" if c_ordered_like_nncf(nncf_size, mode) else "K"
        self._offset, self._t, self._work, self._q = (np.empty_like(self.w, order=order) for _ in range(4))
        self._zero = np.empty_like(self.w, dtype=bool, order=order)
        self._q_out = np.empty_like(self.fp_out)

    def unscaled(self, scale: np.ndarray, zero_point: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Returns ``t = q - z`` for the codes ``q`` of ``W`` with ``scale`` and (float32) ``zero_point``, and the
        mask of zero codes ``[t = 0]``: buffers that the next call overwrites."""
        t = self.kernel.quantized_levels(
            self.w, scale, zero_point, self.kernel.bits, out=self._t, nncf_size=self.nncf_size
        )
        np.less_equal(
            np.abs(t, out=self._work), ZERO_TOLERANCE, out=self._zero
        )  # np.isclose(t, 0), without its overhead
        return t, self._zero

    def candidate(self, t: np.ndarray, zero_mask: np.ndarray, importance: np.ndarray) -> np.ndarray:
        """``d* = sum_j a_j |w_j| / (|t_j| + 0.001 [t_j = 0])``, per group."""
        offset = np.multiply(zero_mask, ZERO_CODE_OFFSET, out=self._offset)
        value = np.add(np.abs(t, out=self._work), offset, out=self._work)
        np.divide(self.abs_w, value, out=value)
        return np.sum(np.multiply(value, importance, out=value), axis=-1, keepdims=True)

    def loss(self, scale: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
        """``L`` per output row and group, ``[out, G]``."""
        q = self.kernel.quantized_levels(
            self.w, scale, zero_point, self.kernel.bits, out=self._q, nncf_size=self.nncf_size
        )
        np.multiply(q, scale, out=q)
        error = np.matmul(q.transpose(1, 0, 2), self.x, out=self._q_out)
        np.subtract(self.fp_out, error, out=error)
        loss = np.mean(np.square(error, out=error), axis=-1).T
        if self.penalty > 0:
            loss = loss + self.penalty * np.mean((q - self.w) ** 2, axis=-1)
        return loss


def estimate_scale(
    weight: np.ndarray,
    s: np.ndarray,
    x: np.ndarray,
    mode: str | Kernel,
    group_size: int,
    settings: AdvancedScaleEstimationParameters = AdvancedScaleEstimationParameters(),
    nncf_size: int | None = None,
) -> EstimatedParameters:
    """Returns the estimated scale (and the min-max zero point) of ``weight`` ``[out, in]`` for ``mode``.

    Args:
        weight: float32 ``[out, in]``, contiguous or a transposed view.
        s: ``[in]`` channel magnitudes (max over items of the mean absolute input).
        x: ``[in, n]`` item means of the input.
        mode: A 4-bit mode (``int4_sym``, ``int4_asym``, ``nf4``).
        group_size: Group size along ``in``; -1 for one group per row.
        nncf_size: The size of the weight nncf quantizes at once (all experts' of a 3-D weight; default: this one's),
            which picks its arithmetic path (``kernels/nncf_paths.py``).
    """
    per_channel = group_size == -1
    group_size = weight.shape[1] if per_channel else group_size
    nncf_size = weight.size if nncf_size is None else nncf_size
    problem = _Group(weight.astype(np.float32, copy=False), s, x, mode, group_size, settings.weight_penalty, nncf_size)
    kernel = problem.kernel

    scale, zero_point = kernel.parameters(problem.w, 2, kernel.bits)
    zp = None if zero_point is None else zero_point.astype(np.float32)
    t, zero_mask = problem.unscaled(scale, zp)
    importance = np.where(zero_mask, np.float32(0), np.ones_like(problem.w) * problem.s)
    importance = importance / (np.sum(importance, axis=-1, keepdims=True) + EPS)

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
        consider(problem.candidate(t, zero_mask, importance) * sign)
        if step < settings.initial_steps - 1:
            t, zero_mask = problem.unscaled(best, zp)
    for step in range(settings.scale_steps):
        factor = 1.0 - 0.05 * step
        t, zero_mask = problem.unscaled(factor * scale, zp)
        consider(problem.candidate(t, zero_mask, importance) * sign)

    if per_channel:
        best = best[:, 0, :]
        zp = None if zp is None else zp[:, 0, :]
    return EstimatedParameters(best.astype(np.float32), zp)


def estimate_expert_scales(
    weight: np.ndarray,
    inputs: InputStatistics,
    mode: str | Kernel,
    group_size: int,
    settings: AdvancedScaleEstimationParameters,
) -> EstimatedParameters:
    """:func:`estimate_scale` of each expert of a 3-D weight ``[experts, out, in]`` (fused MoE experts) with its own
    inputs (``inputs.means`` ``[items, experts, in]``), stacked: what nncf's batched computation gives, expert by
    expert."""
    found = []
    for expert in range(weight.shape[0]):
        own = inputs.expert(expert)
        found.append(
            estimate_scale(
                weight[expert],
                *magnitudes_and_samples(own, settings.subset_size),
                mode,
                group_size,
                settings,
                nncf_size=weight.size,
            )
        )
    zero_points = None if found[0].zero_point is None else np.stack([f.zero_point for f in found])
    return EstimatedParameters(np.stack([f.scale for f in found]), zero_points)


def estimated_group_parameters(
    inputs: InputStatistics, mode: str | Kernel, settings: AdvancedScaleEstimationParameters
):
    """GPTQ's ``group_parameters`` by scale estimation: ``(weight slice [out, gs], first column) -> (scale, zero
    point)`` of the slice as one group, from the inputs' means over the slice's columns."""

    def parameters(w_slice: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray | None]:
        s, x = magnitudes_and_samples(inputs.sliced(column, column + w_slice.shape[1]), settings.subset_size)
        estimated = estimate_scale(w_slice, s, x, mode, -1, settings)
        return estimated.scale, estimated.zero_point

    return parameters
