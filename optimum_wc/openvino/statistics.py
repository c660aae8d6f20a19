"""Activation statistics: run the model on calibration items and reduce the inputs of the target MatMuls.

The model is cloned, the producers of the MatMul inputs become extra outputs, and each item is inferred in float32
(the state of a stateful model is reset before every item, as nncf does). Only reduced values are kept, so memory is
bounded by the number of items, not by their size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import openvino as ov

from optimum_wc.errors import UnsupportedModelError
from optimum_wc.openvino.graph import ModelGraph
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


def collect_statistics(
    model: ov.Model, points: list[ActivationPoint], items: list[Any], reducer: Reducer
) -> dict[ActivationPoint, list[Any]]:
    """Returns, for each point, ``reducer(activation)`` for every calibration item, in item order.

    Raises:
        UnsupportedModelError: An activation has fewer than two dimensions.
    """
    clone = model.clone()
    ops = {op.get_friendly_name(): op for op in clone.get_ops()}
    first = len(clone.outputs)
    clone.add_outputs([ops[p.node].output(p.port) for p in points])
    for i, point in enumerate(points):
        if len(clone.output(first + i).get_partial_shape()) < 2:
            msg = f"Data-aware mixed precision needs activations of 2 or more dimensions; {point.node!r} has fewer."
            raise UnsupportedModelError(msg)
    compiled = ov.Core().compile_model(clone, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    stateful = len(clone.get_sinks()) > 0
    reduced: dict[ActivationPoint, list[Any]] = {point: [] for point in points}
    for item in items:
        if stateful:
            request.reset_state()
        request.infer(item)
        for i, point in enumerate(points):
            reduced[point].append(reducer(request.get_output_tensor(first + i).data))
    return reduced
