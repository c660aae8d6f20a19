"""Mixed precision by ``ratio``: which weights get the primary (4-bit) precision.

``ratio`` is a share of weight *elements* of the ratio-defining set. Weights are taken in ascending order of
sensitivity (ties keep their order in the model), and the selection stops at the first weight whose inclusion
would bring the selected share to ``ratio`` or above; the rest stay in the backup precision.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from optimum_wc.enums import SensitivityMetric
from optimum_wc.kernels.errors import weight_sensitivity

# metric -> scorer(weight, reduction axes) -> sensitivity (larger: keep in the backup precision first)
SENSITIVITY_SCORERS: dict[SensitivityMetric, Callable[[np.ndarray, tuple[int, ...]], float]] = {
    SensitivityMetric.WEIGHT_QUANTIZATION_ERROR: weight_sensitivity,
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
