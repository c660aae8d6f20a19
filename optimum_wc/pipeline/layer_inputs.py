"""What the layer-wise data-aware algorithms (GPTQ, SpQR) keep of each MatMul input, and how the weights that
share an input are batched."""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from optimum_wc.algorithms.gptq import ExpertHessians, Hessian, InverseHessian, SummedHessian, invert_hessian
from optimum_wc.pipeline.planning import WeightPlan


def batches(weights: list[WeightPlan], inputs_of: Callable[[WeightPlan], Any]) -> list[tuple[list[WeightPlan], Any]]:
    """``weights`` grouped by shared inputs (``inputs_of``) and precision (mode, group size), in order of first
    appearance: GPTQ quantizes each group in one pass over its stacked rows."""
    grouped: dict[tuple, tuple[list[WeightPlan], Any]] = {}
    for weight in weights:
        shared = inputs_of(weight)
        key = (id(shared), weight.precision.mode, weight.precision.group_size)
        grouped.setdefault(key, ([], shared))[0].append(weight)
    return list(grouped.values())


class LayerInputs:
    """What GPTQ keeps of the inputs shared by one or more MatMuls: the Hessian (inverted once) and, for scale
    estimation, the item means over all axes but the hidden one (computed as nncf does, a float32 numpy mean).

    With ``experts`` (MatMuls of 3-D weights ``[experts, out, in]`` on inputs ``[experts, tokens, in]``), one
    Hessian per expert, and item means ``[experts, in]`` over each expert's tokens.
    """

    def __init__(self, columns: int, keep_means: bool, summed: bool = False, experts: int | None = None):
        if experts is not None:
            self.hessian = ExpertHessians(experts, columns)
        else:
            self.hessian = SummedHessian(columns) if summed else Hessian(columns)
        self.experts = experts
        self.keep_means = keep_means
        self.means: list[np.ndarray] = []
        self.tokens: list[int] = []
        self._inverse: InverseHessian | list[InverseHessian] | None = None
        self._lock = threading.Lock()

    def add(self, activation: np.ndarray) -> None:
        self.hessian.add(activation)
        if self.keep_means:
            axes = activation.ndim - 2 if self.experts is not None else tuple(range(activation.ndim - 1))
            self.means.append(np.mean(activation, axis=axes))
            self.tokens.append(
                activation.shape[-2] if self.experts is not None else activation.size // activation.shape[-1]
            )

    def inverse(self, damp_percent: float, act_order: bool) -> InverseHessian | list[InverseHessian]:
        """The inverse of the shared Hessian (one per expert with ``experts``), computed once (by the first of the
        threads that ask)."""
        with self._lock:
            if self._inverse is None:
                matrix = self.hessian.matrix
                if self.experts is None:
                    self._inverse = invert_hessian(matrix, damp_percent, act_order)
                else:
                    self._inverse = [invert_hessian(h, damp_percent, act_order) for h in matrix]
                self.hessian = None  # the matrix is no longer needed
            return self._inverse
