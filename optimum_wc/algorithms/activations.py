"""Reduced input activations of a MatMul, as the data-aware algorithms (AWQ, scale estimation) consume them.

For every calibration item only the mean of the input over all axes but the hidden one is kept, with the number
of tokens that were averaged, so memory grows with ``items x hidden``, never with the sequence length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputStatistics:
    """Per-item means of a MatMul input.

    Attributes:
        means: ``[items, hidden]`` float32, one row per calibration item.
        tokens: Number of values averaged into each row (the product of the reduced dimensions).
    """

    means: np.ndarray
    tokens: tuple[int, ...]

    def scaled(self, factor: np.ndarray) -> InputStatistics:
        """The statistics of the input multiplied by ``factor`` along the hidden axis (after AWQ folds 1/s in)."""
        return InputStatistics((self.means * factor).astype(np.float32), self.tokens)

    def expert(self, index: int) -> InputStatistics:
        """The statistics of one expert's input, from means ``[items, experts, hidden]`` (fused MoE experts)."""
        return InputStatistics(self.means[:, index], self.tokens)

    def sliced(self, start: int, stop: int) -> InputStatistics:
        """The statistics of the hidden channels ``start:stop``."""
        return InputStatistics(self.means[:, start:stop], self.tokens)


def magnitudes_and_samples(stats: InputStatistics, subset_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``s`` and ``X`` of the AWQ and scale-estimation papers' notation.

    ``s[c] = max over items of |mean_c|`` (all items), and ``X`` is ``[hidden, n]``: the item means of at most about
    ``subset_size`` items, chosen as nncf does, by taking every ``N // subset_size``-th item in descending order of
    token count (ties in item order).
    """
    x_full = stats.means.T  # [hidden, items]
    count = x_full.shape[1]
    if 0 < subset_size < count:
        step = count // subset_size
        by_length = sorted(range(count), key=lambda i: -stats.tokens[i])
        x = x_full[:, by_length[::step]]
    else:
        x = x_full
    return np.max(np.abs(x_full), axis=1), x
