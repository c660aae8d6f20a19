"""Activation-aware weight quantization (AWQ, Lin et al., 2023), in nncf 3.4.0's modified form.

A MatMul ``Y = W X`` is rewritten as ``Y = (W diag(c)) (diag(c)^-1 X)``: the weight columns of salient input
channels are scaled up before quantization and the inputs scaled down by the previous op, which is exact in
float and lowers the quantization error of ``W diag(c)``.

Data-aware (Section 3.2 of the paper, a grid search on ``alpha``), per group of input channels that holds one of
the ``max(floor(0.002 * in), 1)`` channels of largest magnitude ``s``::

    t   = clip(s_g, quantile_0.1(s_g), 100)
    c   = t ** alpha,  alpha = 0, 0.01, ..., 0.99   (the first strict improvement is kept)
    err = mean | Q(W_g diag(c)) (diag(c)^-1 X_g) - W_g X_g |      (Q: per row over the group, as the layer)

starting from the error bound ``max |W_g X_g|``; other channels keep ``c = 1``. When the scale is folded into a
previous MatMul, ``c`` is clamped so that that MatMul's outputs stay below a quarter of the float16 range.

Data-free: ``c_j = 1 / max(mean_i |W_ij|, eps)``.

Fused MoE experts (a 3-D weight ``[experts, out, in]`` on inputs ``[experts, tokens, in]``) get a ``c`` per expert,
each found as above from the expert's own weight and inputs; the float16 guard uses the previous MatMul's weight
of the same expert and the largest input magnitude of all experts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples
from optimum_wc.config.advanced import AdvancedAWQParameters
from optimum_wc.kernels.registry import Kernel, kernel_for

FP16_MAX = 65504.0
FP16_OVERFLOW_MARGIN = 0.25


@dataclass(frozen=True)
class PreviousLayer:
    """The MatMul that absorbs ``1 / c``: per-channel mean |weight| ``w`` (``[in]``, or ``[experts, in]``), its input
    magnitude ``s`` (a scalar, the max of its channel magnitudes) and its reduced size ``n``; used for the float16
    guard."""

    w: np.ndarray
    s: float
    n: int

    def expert(self, index: int) -> PreviousLayer:
        return PreviousLayer(self.w[index], self.s, self.n)


def data_free_scale(weight: np.ndarray) -> np.ndarray:
    """``c`` for ``weight`` ``[..., out, in]`` without data: ``1 / max(mean over rows of |W|, eps)``, float32
    ``[..., in]``."""
    eps = np.finfo(weight.dtype).eps
    return (1 / np.maximum(np.mean(np.abs(weight), axis=-2), eps)).astype(weight.dtype, copy=False)


def _fake_quantize_rows(weight: np.ndarray, mode: str | Kernel) -> np.ndarray:
    kernel = kernel_for(mode)
    scale, zero_point = kernel.parameters(weight, 1, kernel.bits)
    return kernel.quantized_levels(weight, scale, zero_point, kernel.bits) * scale


def _fp16_guard(c: np.ndarray, previous: PreviousLayer, start: int, stop: int) -> np.ndarray:
    threshold = FP16_OVERFLOW_MARGIN * FP16_MAX
    w = previous.w[start:stop]
    magnitudes = (w / c) * previous.s * previous.n
    if magnitudes.max() >= threshold:
        c = np.where(magnitudes < threshold, c, w * previous.s * previous.n / threshold)
    return c


def data_aware_scale(
    weight: np.ndarray,
    s: np.ndarray,
    x: np.ndarray,
    mode: str | Kernel,
    group_size: int,
    settings: AdvancedAWQParameters = AdvancedAWQParameters(),
    previous: PreviousLayer | None = None,
) -> np.ndarray:
    """Returns ``c`` (float32 ``[in]``) for ``weight`` ``[out, in]``, input magnitudes ``s`` and item means ``x``.

    Args:
        weight: float32 ``[out, in]``.
        s: float32 ``[in]``, max over items of |mean input|.
        x: float32 ``[in, n]``, item means of the input.
        mode: The layer's 4-bit mode.
        group_size: The layer's group size (-1: the whole row).
        previous: The MatMul that will absorb ``1 / c``, if any (float16 guard).
    """
    channels = weight.shape[1]
    group_size = channels if group_size == -1 else group_size
    top_k = max(int(channels * settings.percent_to_apply), 1)
    salient = np.argsort(-s)[:top_k]
    groups = sorted({int(i) // group_size for i in salient})
    alpha_step = (settings.alpha_max - settings.alpha_min) / settings.steps
    c_all = np.ones(channels, dtype=np.float32)
    for group in groups:
        start, stop = group * group_size, (group + 1) * group_size
        w_g, x_g = weight[:, start:stop], x[start:stop]
        t = np.clip(s[start:stop], np.float32(np.quantile(s[start:stop].astype(np.float64), 0.1)), 1e2)
        reference = w_g @ x_g
        best_err, best = np.max(np.abs(reference)), None
        alpha = settings.alpha_min
        for _ in range(settings.steps):
            c = t**alpha
            if previous is not None:
                c = _fp16_guard(c, previous, start, stop)
            out = _fake_quantize_rows(w_g * c, mode) @ (x_g / c[:, None])
            err = np.mean(np.abs(out - reference))
            if err < best_err:
                best_err, best = err, c
            alpha += alpha_step
        if best is not None:
            c_all[start:stop] = best
    return c_all


def data_aware_expert_scales(
    weight: np.ndarray,
    inputs: InputStatistics,
    mode: str | Kernel,
    group_size: int,
    settings: AdvancedAWQParameters = AdvancedAWQParameters(),
    previous: PreviousLayer | None = None,
) -> np.ndarray:
    """:func:`data_aware_scale` of each expert of ``weight`` ``[experts, out, in]`` with its own inputs
    (``inputs.means`` ``[items, experts, in]``) and its own previous weight; float32 ``[experts, in]``."""
    scales = []
    for expert in range(weight.shape[0]):
        s, x = magnitudes_and_samples(inputs.expert(expert), settings.subset_size)
        own_previous = None if previous is None else previous.expert(expert)
        scales.append(data_aware_scale(weight[expert], s, x, mode, group_size, settings, own_previous))
    return np.stack(scales)
