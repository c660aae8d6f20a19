"""What the layer-wise data-aware algorithms (GPTQ, SpQR) keep of each MatMul input, and how the weights that
share an input are batched."""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from optimum_wc.algorithms.gptq import Hessian, InverseHessian, SummedHessian, invert_hessian
from optimum_wc.planning import WeightPlan


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
    estimation, the item means over all axes but the hidden one (computed as nncf does, a float32 numpy mean)."""

    def __init__(self, columns: int, keep_means: bool, summed: bool = False):
        self.hessian = SummedHessian(columns) if summed else Hessian(columns)
        self.keep_means = keep_means
        self.means: list[np.ndarray] = []
        self.tokens: list[int] = []
        self._inverse: InverseHessian | None = None
        self._lock = threading.Lock()

    def add(self, activation: np.ndarray) -> None:
        self.hessian.add(activation)
        if self.keep_means:
            self.means.append(np.mean(activation, axis=tuple(range(activation.ndim - 1))))
            self.tokens.append(activation.size // activation.shape[-1])

    def inverse(self, damp_percent: float, act_order: bool) -> InverseHessian:
        """The inverse of the shared Hessian, computed once (by the first of the threads that ask)."""
        with self._lock:
            if self._inverse is None:
                self._inverse = invert_hessian(self.hessian.matrix, damp_percent, act_order)
                self.hessian = None  # the matrix is no longer needed
            return self._inverse
