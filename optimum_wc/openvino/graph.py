"""A light view of an ``openvino.Model``: node order, edges and the constants that feed each op.

The order is the one nncf uses, so that layer-wise decisions (the last MatMul, which node owns a shared weight,
ties in mixed precision) come out the same: node ids are given breadth-first from the Parameters and ReadValues
(consumers taken in order of friendly name), then to the remaining (constant) ops in ``get_ops()`` order, and
nodes are sorted topologically, always taking the ready node with the smallest id.
"""

from __future__ import annotations

from collections import defaultdict, deque
import heapq

import numpy as np
import openvino.opset13 as opset

import openvino as ov

CONST_PASS_THROUGH = ("Convert", "FakeQuantize", "FakeConvert", "Reshape")


FRIENDLY_NAMES_FLAG = ["nncf", "friendly_names_were_updated"]


def dedupe_friendly_names(model: ov.Model) -> None:
    """Makes friendly names unique by appending "0" to repeats, as nncf does once per model.

    The rt_info flag that records it is written with the other rt_info entries, once compression succeeds.
    """
    if model.has_rt_info(FRIENDLY_NAMES_FLAG) and model.get_rt_info(FRIENDLY_NAMES_FLAG).value == "True":
        return
    seen: set[str] = set()
    for op in model.get_ops():
        name = op.get_friendly_name()
        if name in seen:
            name += "0"
            op.set_friendly_name(name)
        seen.add(name)


def source_constant(op: ov.Node, port: int) -> ov.Node | None:
    """Returns the Constant reached from input ``port`` of ``op`` through Convert, FakeQuantize and Reshape ops."""
    node = op.input_value(port).get_node()
    while True:
        kind = node.get_type_name()
        if kind == "Constant":
            return node
        if kind not in CONST_PASS_THROUGH or len(node.inputs()) == 0:
            return None
        node = node.input_value(0).get_node()


def new_constant(values: np.ndarray, name: str, element_type: ov.Type | None = None) -> ov.Node:
    """A Constant of ``values`` named ``name``, in ``element_type`` (default: the array's). The values are made
    C-contiguous first: from a non-contiguous float16 array OpenVINO's Python API builds an ``i16`` Constant of the
    float16 bits (an array of scales read transposed, for example)."""
    values = np.ascontiguousarray(values)
    if element_type is None:
        constant = ov.op.Constant(values)
        constant.set_friendly_name(name)
        return constant
    return opset.constant(values, dtype=element_type, name=name)


def set_constant(constant: ov.Node, values: np.ndarray) -> ov.Node:
    """Replaces ``constant`` by a new one holding ``values`` in its element type, under the same friendly name."""
    element_type = constant.get_output_element_type(0)
    replacement = new_constant(values, constant.get_friendly_name(), element_type)
    for target in list(constant.output(0).get_target_inputs()):
        target.replace_source_output(replacement.output(0))
    return replacement


class ModelGraph:
    """Ops of a model by friendly name, with their consumers, nncf's node ids and its topological order."""

    def __init__(self, model: ov.Model) -> None:
        self.ops: list[ov.Node] = list(model.get_ops())
        self.by_name: dict[str, ov.Node] = {op.get_friendly_name(): op for op in self.ops}
        self.consumers: dict[str, list[tuple[str, int]]] = defaultdict(list)  # name -> [(consumer, input port)]
        for op in self.ops:
            name = op.get_friendly_name()
            for output in op.outputs():
                for target in output.get_target_inputs():
                    self.consumers[name].append((target.get_node().get_friendly_name(), target.get_index()))
        self.reachable: set[str] = set()
        self.node_id: dict[str, int] = {}
        self._assign_ids(model)
        self.order: list[str] = self._topological_order()

    def _assign_ids(self, model: ov.Model) -> None:
        starts = list(model.get_parameters()) + [op for op in self.ops if op.get_type_name() == "ReadValue"]
        queue = deque(op.get_friendly_name() for op in starts)
        while queue:
            name = queue.popleft()
            if name in self.reachable:
                continue
            self.node_id[name] = len(self.node_id)
            self.reachable.add(name)
            for output in self.by_name[name].outputs():
                targets = sorted(t.get_node().get_friendly_name() for t in output.get_target_inputs())
                queue.extend(targets)
        for op in self.ops:
            name = op.get_friendly_name()
            if name not in self.node_id:
                self.node_id[name] = len(self.node_id)

    def _topological_order(self) -> list[str]:
        indegree = dict.fromkeys(self.node_id, 0)
        for edges in self.consumers.values():
            for target, _ in edges:
                indegree[target] += 1
        ready = [(self.node_id[n], n) for n, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for target, _ in self.consumers.get(name, ()):
                indegree[target] -= 1
                if indegree[target] == 0:
                    heapq.heappush(ready, (self.node_id[target], target))
        return order

    def type_of(self, name: str) -> str:
        return self.by_name[name].get_type_name()

    def successors(self, name: str) -> list[str]:
        return [target for target, _ in self.consumers.get(name, ())]

    def descendants(self, name: str) -> set[str]:
        seen, stack = {name}, [name]
        while stack:
            for nxt in self.successors(stack.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    def ancestors(self, name: str) -> set[str]:
        seen, stack = {name}, [name]
        while stack:
            op = self.by_name[stack.pop()]
            for value in op.input_values():
                prev = value.get_node().get_friendly_name()
                if prev not in seen:
                    seen.add(prev)
                    stack.append(prev)
        return seen
