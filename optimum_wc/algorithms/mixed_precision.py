"""Mixed precision by ``ratio``: which weights get the primary (4-bit) precision.

``ratio`` is a share of weight *elements* of the ratio-defining set. Weights are taken in ascending order of
sensitivity (ties keep their order in the model), and the selection stops at the first weight whose inclusion
would bring the selected share to ``ratio`` or above; the rest stay in the backup precision.

Sensitivity is a weight term times, for the data-aware metrics, an activation term aggregated over calibration
items (``x`` is one item's input to the MatMul, the sequence on axis -2):

====================================  ==================================  ===========================================
metric                                weight term                          activation term
====================================  ==================================  ===========================================
WEIGHT_QUANTIZATION_ERROR             1 / (e + eps), e = max_c mean(dW^2)  (none)
MEAN_ACTIVATION_VARIANCE              1 / (e + eps)                        mean over items of mean(var_seq(x))
MAX_ACTIVATION_VARIANCE               1 / (e + eps)                        mean over items of max(var_seq(x))
MEAN_ACTIVATION_MAGNITUDE             1 / (e + eps)                        mean over items of mean(max_seq(|x|))
HESSIAN_INPUT_ACTIVATION (HAWQ)       ||dW||_F                             2 / N * sum over items of sum(x^2)/size(x)
====================================  ==================================  ===========================================

``dW = Q8(W) - W`` with per-channel INT8_ASYM; embeddings score 0 under data-aware metrics (compressed first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from optimum_wc.config.enums import SensitivityMetric
from optimum_wc.kernels.errors import int8_frobenius_error, weight_sensitivity


@dataclass(frozen=True)
class Sensitivity:
    """How a metric scores a weight: ``weight_term(W, axes) * aggregate([reducer(x) for each item])``."""

    weight_term: Callable[[np.ndarray, tuple[int, ...]], float]
    reducer: Callable[[np.ndarray], np.floating] | None = None
    aggregate: Callable[[list], float] | None = None

    @property
    def data_aware(self) -> bool:
        return self.reducer is not None


def _mean(values: list) -> float:
    return float(np.mean(np.stack(values)))


def _hessian_trace(values: list) -> float:
    return float(np.sum(np.stack(values)) * 2 / len(values))


SENSITIVITIES: dict[SensitivityMetric, Sensitivity] = {
    SensitivityMetric.WEIGHT_QUANTIZATION_ERROR: Sensitivity(weight_sensitivity),
    SensitivityMetric.MEAN_ACTIVATION_VARIANCE: Sensitivity(
        weight_sensitivity, lambda x: np.mean(np.var(x, axis=-2)), _mean
    ),
    SensitivityMetric.MAX_ACTIVATION_VARIANCE: Sensitivity(
        weight_sensitivity, lambda x: np.max(np.var(x, axis=-2)), _mean
    ),
    SensitivityMetric.MEAN_ACTIVATION_MAGNITUDE: Sensitivity(
        weight_sensitivity, lambda x: np.mean(np.max(np.abs(x), axis=-2)), _mean
    ),
    SensitivityMetric.HESSIAN_INPUT_ACTIVATION: Sensitivity(
        int8_frobenius_error, lambda x: np.sum(np.square(x)) / x.size, _hessian_trace
    ),
}


def select_primary(sizes: list[int], scores: list[float], ratio: float) -> list[int]:
    """Returns the indexes of the weights that get the primary precision.

    Args:
        sizes: Number of elements of each weight.
        scores: Sensitivity of each weight.
        ratio: Target share of elements in the primary precision, in [0, 1].
    """
    total = sum(sizes)
    chosen, count = [], 0
    for index in sorted(range(len(scores)), key=lambda i: scores[i]):
        if (count + sizes[index]) / total >= ratio:
            break
        chosen.append(index)
        count += sizes[index]
    return chosen
