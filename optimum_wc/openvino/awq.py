"""The graph side of AWQ: which MatMuls it applies to, and folding its scales into the model.

nncf's three patterns, tried in this order for every MatMul target (the first that matches wins):

1. ``MatMul -> Multiply -> target``: ``1/c`` goes into the first MatMul's weight rows when it has a weight
   constant of the target's rank (e.g. Llama's ``up_proj -> * -> down_proj``), else into a Multiply after it;
2. ``activation -> Multiply -> target``;
3. ``activation -> target``  (e.g. OPT's ``ReLU -> fc2``);

with ``activation`` one of Relu, Clamp, Elu, PRelu, Sigmoid, HSigmoid, HardSigmoid, Swish, HSwish, Selu (GELU is
not among them, as in nncf). A Multiply named ``<merge>/awq_mul`` with the constant ``<merge>/awq_mul/scale``
(``1/c``, in the activation type) is inserted on the merge op's output when the scale cannot be folded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openvino.opset13 as opset

import openvino as ov
from optimum_wc.openvino.graph import ModelGraph, new_constant, source_constant

ACTIVATIONS = frozenset(
    {"Relu", "Clamp", "Elu", "PRelu", "Sigmoid", "HSigmoid", "HardSigmoid", "Swish", "HSwish", "Selu"}
)


@dataclass(frozen=True)
class AWQMatch:
    """A MatMul target and the op ``merge`` that absorbs ``1/c`` on its output."""

    target: str
    merge: str


def _producer(graph: ModelGraph, name: str, port: int) -> str:
    return graph.by_name[name].input_value(port).get_node().get_friendly_name()


def _activation_producer(graph: ModelGraph, target: str) -> str | None:
    """The producer of the MatMul's non-constant input (None when both or neither input is a constant)."""
    op = graph.by_name[target]
    ports = [p for p in range(2) if source_constant(op, p) is None]
    return _producer(graph, target, ports[0]) if len(ports) == 1 else None


def _match(graph: ModelGraph, target: str) -> str | None:
    """Returns the merge op of the first pattern that matches ``target``, or None."""
    source = _activation_producer(graph, target)
    if source is None:
        return None
    multiply_inputs = []
    if graph.type_of(source) == "Multiply":
        multiply_inputs = [_producer(graph, source, port) for port in range(2)]
    for wanted in ({"MatMul"}, ACTIVATIONS):
        for name in multiply_inputs:
            if graph.type_of(name) in wanted:
                return name
    return source if graph.type_of(source) in ACTIVATIONS else None


def find_awq_matches(graph: ModelGraph, targets: list[str]) -> list[AWQMatch]:
    """The AWQ matches of the MatMul ``targets`` (names), in their order."""
    found = []
    for target in targets:
        merge = _match(graph, target)
        if merge is not None:
            found.append(AWQMatch(target, merge))
    return found


def weight_constants(graph: ModelGraph, name: str) -> list[ov.Node]:
    """The float constants feeding ``name`` (through Convert/Reshape), one per input port that has one."""
    op = graph.by_name[name]
    found = []
    for port in range(len(op.inputs())):
        const = source_constant(op, port)
        if const is not None and const.get_output_element_type(0).is_real():
            found.append(const)
    return found


def insert_scale(graph: ModelGraph, merge: str, inverse_scale: np.ndarray) -> ov.Node:
    """Inserts ``<merge>/awq_mul`` = output 0 of ``merge`` times ``inverse_scale``, before all its consumers."""
    output = graph.by_name[merge].output(0)
    element_type = output.get_element_type()
    values = inverse_scale
    if element_type != ov.Type.bf16 and values.dtype != element_type.to_dtype():
        info = np.finfo(element_type.to_dtype())
        values = np.clip(values, info.min, info.max).astype(element_type.to_dtype())
    name = f"{merge}/awq_mul"
    consumers = list(output.get_target_inputs())
    constant = new_constant(values, f"{name}/scale", element_type)
    multiply = opset.multiply(output, constant, name=name)
    for target in consumers:
        target.replace_source_output(multiply.output(0))
    return multiply
