"""Adaptive codebooks (nncf's ADAPTIVE_CODEBOOK): a codebook per weight (or per family of weights) fitted by
weighted k-means to its normalized values.

Each weight is normalized by a per-channel scale, and every value weighs as much as the largest input magnitude of
its channel. The values are binned into a histogram of equal-width intervals, and k-means runs on the bins:
centroids start at quantiles of the weighted distribution, the smallest, the largest and the one nearest zero stay
fixed, and every fifth iteration is kept as a candidate. The candidate (and the starting codebook, and the integers
``-n/2 .. n/2 - 1``) whose quantized weight gives the smallest mean absolute error of the layer's outputs on the
calibration inputs, ``mean |W X - Q X|``, is the codebook, in ``value_type``.

The histogram, the initial quantiles and the updates mix double-precision scalars with float32 arrays exactly where
nncf does, so that the same codebook comes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples
from optimum_wc.errors import UnsupportedModelError
from optimum_wc.kernels import compress, decompress
from optimum_wc.kernels.floats import F8E4M3_VALUES, to_f8e4m3
from optimum_wc.kernels.groups import group_weight
from optimum_wc.kernels.integer import EPS
from optimum_wc.kernels.registry import codebook_kernel

HISTOGRAM_BINS = 700  # of one weight's values; of a family's (across blocks): FAMILY_HISTOGRAM_BINS
FAMILY_HISTOGRAM_BINS = 100_000
SAVE_EVERY = 5  # iterations between candidates kept
MAX_ITERATIONS = 70
CLOSE = 0.05  # initial centroids closer than this (relative) are spread
CONVERGED = 0.00001


@dataclass(frozen=True)
class Histogram:
    """Equal-width bins of the values that fall in them: bin centres, ``sum(value * weight)`` and ``sum(weight)``
    per bin (float32; empty bins dropped)."""

    centres: np.ndarray
    weighted_values: np.ndarray
    weights: np.ndarray


def nearest_left(points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the point of sorted float32 ``points`` nearest each value (the lower one at a midpoint)."""
    return np.searchsorted(0.5 * (points[1:] + points[:-1]), values, side="left")


def histogram(values: np.ndarray, weights: np.ndarray, intervals: int) -> Histogram:
    """Bins of width ``(max - min) / intervals`` from the minimum, each holding the values nearest its centre."""
    low, high = values.min().item(), values.max().item()
    width = (high - low) / intervals
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    centres, edges, start = [], [], low
    while start < high:  # double-precision bin bounds, as nncf accumulates them
        centres.append(start + width / 2)
        start += width
        if len(centres) > 1:
            edges.append(0.5 * (centres[-2] + centres[-1]))
        edges.append(centres[-1])
    centres32 = np.array(centres, dtype=values.dtype)
    cuts = nearest_left(values, np.array(edges, dtype=values.dtype))
    kept, weighted_values, bin_weights = [], [], []
    last = centres32.size - 1
    for i in range(centres32.size):  # from the edge left of the centre to the edge right of it
        if i == 0:
            begin, end = 0, cuts[1]
        elif i == last:
            begin, end = cuts[-2], values.size
        else:
            begin, end = cuts[2 * i - 1], cuts[2 * i + 1]
        if end <= begin:
            continue
        kept.append(centres32[i].item())
        weighted_values.append(np.sum(values[begin:end] * weights[begin:end]).item())
        bin_weights.append(np.sum(weights[begin:end]).item())
    as32 = [np.array(v, dtype=values.dtype) for v in (kept, weighted_values, bin_weights)]
    return Histogram(*as32)


def initial_centroids(values: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    """Centroids at evenly spaced quantiles of the weighted distribution of sorted ``values`` (the first and last
    at its ends), those closer to their right neighbour than :data:`CLOSE` (relative) moved between neighbours."""
    step = 1.0 / (count - 1)
    cumulative = np.cumsum(weights / np.sum(weights), axis=0)
    centroids = np.zeros((count,), dtype=values.dtype)
    centroids[0], centroids[-1] = values[0], values[-1]
    for i in range(1, count - 1):
        below = values[np.nonzero(cumulative <= i * step)[0][-1]].item()
        above = values[np.nonzero(cumulative <= (i + 1) * step)[0][-1]].item()
        centroids[i] = (below + above) / 2
    for i in range(1, count - 1):
        a, b = centroids[i], centroids[i + 1]
        larger = b if abs(b) > abs(a) else a  # the first of equals, as max() takes it
        if abs(a - b) / abs(larger) < CLOSE:
            centroids[i] = (centroids[i - 1] + centroids[i + 1]) / 2
    return centroids


def weighted_kmeans(values: np.ndarray, weights: np.ndarray, count: int, intervals: int) -> list[np.ndarray]:
    """The candidate codebooks of flattened float32 ``values``: every :data:`SAVE_EVERY`-th iteration's centroids
    and the last ones (the best of the fit is the last)."""
    low, high = values.min(), values.max()
    if low == high:  # nncf's histogram has no bin then and fails with an IndexError
        msg = f"every normalized value is {low.item()}, and a codebook cannot be fitted to one value"
        raise UnsupportedModelError(msg)
    fixed = [0, count // 2 - 1, count - 1] if low < 0.0 else [0, count - 1]
    bins = histogram(values, weights, intervals)
    start = initial_centroids(bins.centres, bins.weights, count)
    start[0], start[-1] = low, high
    zero = np.argmin(np.abs(start), axis=0).item()
    if low <= 0.0:  # zero is a centroid
        start[zero] = 0.0
        fixed[1] = zero
    centroids, candidates = start.copy(), []
    for iteration in range(MAX_ITERATIONS):
        previous = centroids.copy()
        if iteration % SAVE_EVERY == 0:
            candidates.append(centroids.copy())
        owner = nearest_left(centroids, bins.centres)
        for i in range(count):
            mine = owner == i
            if mine.any():
                centroids[i] = np.sum(bins.weighted_values[mine]).item() / np.sum(bins.weights[mine]).item()
        for i in fixed:
            centroids[i] = start[i]
        if np.all(np.abs(centroids - previous) < CONVERGED):
            break
    candidates.append(centroids.copy())
    return candidates


def integer_codebook(count: int) -> np.ndarray:
    """The integers ``-count // 2 .. count - count // 2 - 1``, a candidate nncf always tries (float16)."""
    return np.arange(-count // 2, count - count // 2).astype(np.float16)


def best_codebook(
    candidates: list[np.ndarray],
    convert: Callable[[np.ndarray], np.ndarray],
    error: Callable[[np.ndarray], float],
) -> np.ndarray:
    """The first candidate, converted to the codebook's type, with the smallest output ``error`` (the last fit's
    centroids if none is finite)."""
    best, smallest = convert(candidates[-1]), float("inf")
    for candidate in candidates:
        codebook = convert(candidate)
        value = error(codebook)
        if value < smallest:
            smallest, best = value, codebook
    return best


def _seed(candidates: list[np.ndarray], start: np.ndarray, count: int) -> None:
    """Puts nncf's two fixed candidates in place of the fit's first two: the configured codebook (when it has
    ``count`` values) and the integers."""
    if count == start.size:
        candidates[0] = start.astype(np.float16)
    candidates[1] = integer_codebook(count)


@dataclass(frozen=True)
class CodebookTask:
    """What the estimation of one codebook needs of a weight: the float weight in its stored layout, its input
    channels' axis, and its inputs."""

    weight: np.ndarray
    reduction_axes: tuple[int, ...]
    inputs: InputStatistics


def _signed_scale(weight: np.ndarray, axes: tuple[int, ...], top: np.floating) -> np.ndarray:
    """The extreme of each group with its sign (the negative one on a tie of magnitudes) over ``top``, clamped to
    eps: normalized, each group's extreme becomes ``+top``."""
    low, high = np.min(weight, axis=axes, keepdims=True), np.max(weight, axis=axes, keepdims=True)
    scale = np.where(np.abs(low) >= np.abs(high), low, high) / top
    return np.where(np.abs(scale) < EPS, EPS, scale)


def layer_codebook(
    task: CodebookTask,
    group_size: int,
    start: np.ndarray,
    count: int,
    convert: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The codebook of ``count`` values for one weight (``start``: the configured codebook; ``convert``: to the
    codebook's type). A weight stored ``[in, out]`` is transposed for the fit, but quantized along its stored
    reduction axis when the candidates are compared, as nncf does."""
    axes = task.reduction_axes
    weight = task.weight.astype(np.float32)
    s, x = magnitudes_and_samples(task.inputs, -1)  # [in], [in, items]: every item
    if axes[0] == 0:
        weight = weight.T
    shape = weight.shape
    grouped, group_axes = weight, axes
    if group_size != -1:
        grouped = group_weight(weight, axes, group_size).data
        group_axes = (axes[0] + 1,)
        s = s.reshape(1, -1, group_size)
    importance = np.ones_like(grouped) * s
    normalized = grouped / _signed_scale(grouped, group_axes, np.max(np.abs(start)))
    candidates = weighted_kmeans(normalized.flatten(), importance.flatten(), count, HISTOGRAM_BINS)
    _seed(candidates, start, count)
    weight = grouped.reshape(shape)
    outputs = weight @ x

    def error(codebook: np.ndarray) -> float:
        quantized = decompress(compress(weight, axes, codebook_kernel(codebook), group_size)).reshape(shape)
        return np.mean(np.abs(outputs - quantized @ x)).item()

    return best_codebook(candidates, convert, error)


def family_codebook(
    tasks: list[CodebookTask],
    start: np.ndarray,
    count: int,
    convert: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """One codebook for a family of per-channel weights (the same name but for digits, e.g. every ``down_proj``):
    the fit on all their values, each normalized by its channel's absmax, and the candidates compared by the sum of
    the layers' output errors, each weighed by the mean magnitude of its inputs."""
    axis = tasks[0].reduction_axes[0]
    axes = tasks[0].reduction_axes  # every weight is quantized along the first one's axes, as nncf does
    top = np.max(np.abs(start))
    normalized, importances, inputs, outputs = [], [], [], []
    for task in tasks:
        weight = task.weight.astype(np.float32)
        s, x = magnitudes_and_samples(task.inputs, -1)
        inputs.append(x)
        if axis == 0:  # only the first weight is transposed (nncf's loop turns the axis to 1 there)
            weight, axis = weight.T, 1
        outputs.append(weight @ x)
        importances.append(np.ones_like(weight) * s)
        scale = np.max(np.abs(weight), axis=axes, keepdims=True) / top
        normalized.append(weight / np.where(np.abs(scale) < EPS, EPS, scale))
    values = np.concatenate(normalized, axis=0).flatten()
    candidates = weighted_kmeans(values, np.concatenate(importances, axis=0).flatten(), count, FAMILY_HISTOGRAM_BINS)
    _seed(candidates, start, count)
    weights = [np.mean(np.abs(x)).item() for x in inputs]

    def error(codebook: np.ndarray) -> float:
        total = 0.0
        for task, x, y, c in zip(tasks, inputs, outputs, weights):
            quantized = decompress(compress(task.weight, axes, codebook_kernel(codebook), -1))
            total += c * np.mean(np.abs(y - quantized @ x)).item()
        return total

    return best_codebook(candidates, convert, error)


def family_name(weight_name: str) -> str:
    """The letters of a weight's name: the weights of a family share them (``layers.3.mlp.down_proj.weight``)."""
    return "".join(c for c in weight_name if c.isalpha())


# value_type -> (conversion of candidate centroids to the codebook's values, the codebook's storage when it is not
# its numpy dtype's)
VALUE_TYPES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str | None]] = {
    "f8e4m3": (lambda c: F8E4M3_VALUES[to_f8e4m3(c.astype(np.float32))], "f8e4m3"),
    "float16": (lambda c: c.astype(np.float16), None),
    "float32": (lambda c: c.astype(np.float32), None),
}
