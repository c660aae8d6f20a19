"""Activation statistics: run the model on calibration items and reduce the inputs of the target MatMuls.

The model is cloned, the producers of the MatMul inputs become extra outputs, and each item is inferred in float32
(the state of a stateful model is reset before every item, as nncf does). Only reduced values are kept, so memory is
bounded by the number of items, not by their size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import openvino.opset13 as opset

import openvino as ov
from optimum_wc.algorithms.activations import InputStatistics
from optimum_wc.errors import UnsupportedModelError
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.inference import infer_in_order
from optimum_wc.openvino.weights import WeightTarget

Reducer = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class ActivationPoint:
    """An output of an op, feeding the activation input of one or more MatMuls."""

    node: str
    port: int


def activation_point(graph: ModelGraph, target: WeightTarget) -> ActivationPoint:
    """The producer of the activation (non-weight) input of a MatMul target."""
    value = graph.by_name[target.op_name].input_value(1 - target.port)
    return ActivationPoint(value.get_node().get_friendly_name(), value.get_index())


def activation_channel_axis(graph: ModelGraph, target: WeightTarget) -> int:
    """The (non-negative) hidden axis of a MatMul target's activation input."""
    op = graph.by_name[target.op_name]
    port = 1 - target.port
    rank = len(op.input(port).get_partial_shape())
    transpose = op.get_attributes()["transpose_a" if port == 0 else "transpose_b"]
    hidden_last = (port == 0) != bool(transpose)
    return rank - 1 if hidden_last else rank - 2


Probe = Callable[[ov.Output], list[ov.Output]]


def _raw(output: ov.Output) -> list[ov.Output]:
    return [output]


def run_points(
    model: ov.Model,
    points: list[ActivationPoint],
    items: list[Any],
    consume: Callable[[ActivationPoint, list[np.ndarray]], None],
    probe: Probe = _raw,
) -> None:
    """Infers every item in float32 and calls ``consume(point, values)`` for each point, item by item.

    The model is cloned and ``probe(activation)`` (the activation itself by default, or values computed from it
    inside the model) become its outputs in place of its own, so the head never runs; a stateful model keeps its
    state updates (without them the CPU plugin fuses some models differently, which changes the rounding), and
    its state is reset before every item.

    Raises:
        UnsupportedModelError: An activation has fewer than two dimensions.
    """
    clone = model.clone()
    ops = {op.get_friendly_name(): op for op in clone.get_ops()}
    spans = []
    extra: list[ov.Output] = []
    for point in points:
        activation = ops[point.node].output(point.port)
        if len(activation.get_partial_shape()) < 2:
            msg = f"Data-aware compression needs activations of 2 or more dimensions; {point.node!r} has fewer."
            raise UnsupportedModelError(msg)
        outputs = probe(activation)
        spans.append((len(extra), len(outputs)))
        extra.extend(outputs)
    # A new model over the clone's parameters and state updates, with only the probes as results (the head never
    # runs), built as nncf builds its statistics model: OpenVINO's CPU plugin computes the attention of a one-token
    # item of a stateful model differently for it than for the same model extended by ``add_outputs``.
    probes = ov.Model(
        results=[opset.result(output) for output in extra],
        sinks=clone.get_sinks(),
        parameters=clone.get_parameters(),
        name=clone.friendly_name,
    )

    def handle(index: int, values: list[np.ndarray]) -> None:
        for point, (start, count) in zip(points, spans):
            consume(point, values[start : start + count])

    infer_in_order(probes, items, handle)


def collect_statistics(
    model: ov.Model, points: list[ActivationPoint], items: list[Any], reducer: Reducer
) -> dict[ActivationPoint, list[Any]]:
    """Returns, for each point, ``reducer(activation)`` for every calibration item, in item order."""
    reduced: dict[ActivationPoint, list[Any]] = {point: [] for point in points}
    run_points(model, points, items, lambda point, values: reduced[point].append(reducer(values[0])))
    return reduced


def input_statistics(
    model: ov.Model, graph: ModelGraph, targets: list[WeightTarget], items: list[Any]
) -> dict[str, InputStatistics]:
    """Per-item means of the activation input of each MatMul target (by op name), in one pass over ``items``.

    The mean over all axes but the hidden one is computed inside the model (a ReduceMean, as nncf inserts), so the
    values are those nncf gets; the activation's shape gives the token count. The input ``[experts, tokens, in]``
    of 3-D weights (fused MoE experts) keeps its experts axis: its means are ``[experts, in]``, as nncf's.
    """
    axes = {activation_point(graph, t): activation_channel_axis(graph, t) for t in targets}
    experts = {activation_point(graph, t) for t in targets if len(t.shape) == 3}

    def reduced_axes(point: ActivationPoint, rank: int) -> list[int]:
        kept = {axes[point] % rank} | ({0} if point in experts and rank == 3 else set())
        return [i for i in range(rank) if i not in kept]

    def probe(activation: ov.Output) -> list[ov.Output]:
        point = ActivationPoint(activation.get_node().get_friendly_name(), activation.get_index())
        reduced = reduced_axes(point, len(activation.get_partial_shape()))
        return [opset.reduce_mean(activation, reduced, keep_dims=False).output(0), opset.shape_of(activation).output(0)]

    reduced: dict[ActivationPoint, list[tuple[np.ndarray, int]]] = {point: [] for point in axes}

    def consume(point: ActivationPoint, values: list[np.ndarray]) -> None:
        mean, shape = values
        tokens = int(np.prod(shape)) // int(shape[axes[point]])
        mean = mean if point in experts and len(shape) == 3 else mean.reshape(-1)
        reduced[point].append((mean.astype(np.float32), tokens))

    run_points(model, list(axes), items, consume, probe)
    result = {}
    for target in targets:
        means, tokens = zip(*reduced[activation_point(graph, target)])
        result[target.op_name] = InputStatistics(np.stack(means), tuple(tokens))
    return result
