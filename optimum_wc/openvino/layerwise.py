"""Layer-wise inputs for GPTQ: each MatMul sees inputs computed through the MatMuls before it, already quantized.

The targets are split into stages by depth (the number of targets on the longest path from the model inputs);
targets of one stage do not feed each other. Stage by stage, only the part of the model between the tensors
cached so far and the stage's inputs is extracted and run (as nncf's layer-wise engine does), with the weights as
updated so far, so the whole pass costs about one forward of the model per calibration item. Cached tensors are
dropped as soon as no later stage needs them. Given a folder, the runner keeps them in ``.npy`` files there, memory-
mapped back (page cache the system can drop, not anonymous memory), so the cached activations of a long
calibration set do not have to fit in memory.

A stateful model runs with its state reset (each ``ReadValue`` yields its initial value), as in every other
calibration pass.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any, Callable, Iterator

import numpy as np
import openvino.opset13 as opset

import openvino as ov
from optimum_wc.errors import UnsupportedModelError
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.inference import infer_in_order
from optimum_wc.openvino.statistics import ActivationPoint, activation_point
from optimum_wc.openvino.weights import WeightTarget

Tensor = tuple[str, int]  # (op friendly name, output port)


def stages(graph: ModelGraph, targets: list[WeightTarget]) -> list[list[WeightTarget]]:
    """Groups ``targets`` by depth, shallowest first, keeping their order within a stage."""
    names = {t.op_name for t in targets}
    depth: dict[str, int] = {}
    for name in graph.order:
        level = 0
        for value in graph.by_name[name].input_values():
            previous = value.get_node().get_friendly_name()
            level = max(level, depth.get(previous, 0) + (previous in names))
        depth[name] = level
    grouped: dict[int, list[WeightTarget]] = {}
    for target in targets:
        grouped.setdefault(depth[target.op_name], []).append(target)
    return [grouped[level] for level in sorted(grouped)]


def _without_state(model: ov.Model) -> dict[str, ov.Node]:
    """Ops of ``model`` by name, with every ReadValue bypassed by its initial value: the state as after a reset."""
    ops = {op.get_friendly_name(): op for op in model.get_ops()}
    for op in ops.values():
        if op.get_type_name() == "ReadValue":
            if len(op.inputs()) != 1:
                msg = f"GPTQ cannot run {op.get_friendly_name()!r}: a ReadValue without an initial value."
                raise UnsupportedModelError(msg)
            for target in list(op.output(0).get_target_inputs()):
                target.replace_source_output(op.input_value(0))
    return ops


def _ancestors(
    ops: dict[str, ov.Node],
    starts: list[Tensor],
    available: set[Tensor],
    strict: bool = True,
    known: frozenset[str] | set[str] = frozenset(),
) -> tuple[set[str], set[Tensor]]:
    """Ops needed to compute ``starts`` from the ``available`` tensors, and which available tensors they read; ops
    in ``known`` (a set closed under ancestors) are neither walked through nor returned.

    With ``strict``, reaching a model input that is not available is an error.
    """
    needed: set[str] = set()
    boundary: set[Tensor] = set()
    stack = list(starts)
    while stack:
        tensor = stack.pop()
        if tensor in available:
            boundary.add(tensor)
            continue
        name = tensor[0]
        if name in needed or name in known or ops[name].get_type_name() == "Constant":
            continue
        if ops[name].get_type_name() == "Parameter":
            if not strict:
                continue
            raise UnsupportedModelError(f"GPTQ needs the model input {name!r}, which the calibration items lack.")
        needed.add(name)
        stack.extend((v.get_node().get_friendly_name(), v.get_index()) for v in ops[name].input_values())
    return needed, boundary


def _model_inputs(model: ov.Model, items: list[Any]) -> dict[Tensor, list[np.ndarray]]:
    cache: dict[Tensor, list[np.ndarray]] = {}
    for index, parameter in enumerate(model.get_parameters()):
        names = parameter.output(0).get_names()
        values = []
        for item in items:
            if isinstance(item, dict):
                key = next((n for n in names if n in item), parameter.get_friendly_name())
                values.append(np.asarray(item[key]) if key in item else None)
            elif isinstance(item, (list, tuple)):
                values.append(np.asarray(item[index]))
            else:  # one array: the value of a single-input model, as InferRequest.infer takes it
                values.append(np.asarray(item) if index == 0 else None)
        if all(v is not None for v in values):
            cache[(parameter.get_friendly_name(), 0)] = values
    return cache


class TensorStore:
    """Where the runner keeps computed tensors: in memory, or in ``.npy`` files in a temporary folder under
    ``folder``, memory-mapped back (removed when dropped, and the folder when the store closes)."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self._folder = (
            None if folder is None else tempfile.TemporaryDirectory(prefix="optimum-wc-layerwise-", dir=folder)
        )
        self._written = 0

    @property
    def written(self) -> int:
        """Files written so far."""
        return self._written

    def keep(self, value: np.ndarray) -> np.ndarray:
        if self._folder is None or value.size == 0:
            return value.copy()
        path = pathlib.Path(self._folder.name) / f"{self._written}.npy"
        np.save(path, value)
        self._written += 1
        return np.load(path, mmap_mode="r")

    def drop(self, values: list[np.ndarray]) -> None:
        for value in values:
            if isinstance(value, np.memmap):
                pathlib.Path(value.filename).unlink(missing_ok=True)  # the mapping stays valid until released

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()


class LayerwiseRunner:
    """Runs a model stage by stage over calibration items, keeping the tensors later stages need."""

    def __init__(self, model: ov.Model, items: list[Any], future_points: list[list[Tensor]], store: TensorStore):
        self.model = model
        self.items = items
        self.store = store
        self.cache = _model_inputs(model, items)
        self.computed: set[str] = set()
        self.future = future_points  # the activation points of every stage, in order
        self._after = self._needed_after(_without_state(model.clone()))

    def _needed_after(self, ops: dict[str, ov.Node]) -> list[set[str]]:
        """For each stage, the ops on the way from the model inputs to the later stages' points (one walk over the
        graph, from the last stage back)."""
        after: list[set[str]] = []
        needed: set[str] = set()
        for points in reversed(self.future):
            after.append(set(needed))
            needed |= _ancestors(ops, points, set(), strict=False, known=needed)[0]
        return after[::-1]

    def run(self, stage: int, consume: Callable[[Tensor, np.ndarray], None]) -> None:
        clone = self.model.clone()
        ops = _without_state(clone)
        points = self.future[stage]
        needed, boundary = _ancestors(ops, points, set(self.cache))
        computed = self.computed | needed
        later = self._after[stage] - computed  # each consumer of a cached tensor outside it can drop the tensor

        def used_later(tensor: Tensor) -> bool:
            output = ops[tensor[0]].output(tensor[1])
            return any(t.get_node().get_friendly_name() in later for t in output.get_target_inputs())

        outputs = [p for p in dict.fromkeys(points) if p not in self.cache]
        for name in sorted(needed):
            for output in ops[name].outputs():
                tensor = (name, output.get_index())
                if tensor not in outputs and used_later(tensor):
                    outputs.append(tensor)

        results = {}
        if outputs:
            parameters, order = [], sorted(boundary)
            for tensor in order:
                output = ops[tensor[0]].output(tensor[1])
                parameter = opset.parameter(
                    output.get_partial_shape(), output.get_element_type(), name=f"cache/{tensor[0]}/{tensor[1]}"
                )
                for target in list(output.get_target_inputs()):
                    if target.get_node().get_friendly_name() in needed:
                        target.replace_source_output(parameter.output(0))
                parameters.append(parameter)
            sub = ov.Model([opset.result(ops[n].output(p)) for n, p in outputs], parameters, f"stage_{stage}")
            results = {tensor: [] for tensor in outputs}

            def handle(index: int, values: list[np.ndarray]) -> None:
                for tensor, value in zip(outputs, values):
                    results[tensor].append(self.store.keep(value))

            inputs = [[self.cache[tensor][index] for tensor in order] for index in range(len(self.items))]
            infer_in_order(sub, inputs, handle)
        for index in range(len(self.items)):
            for point in dict.fromkeys(points):
                consume(point, (results.get(point) or self.cache[point])[index])
        self.computed = computed
        held = {**self.cache, **results}  # disjoint: a stage computes only what is not cached
        for values in (v for t, v in held.items() if not used_later(t)):
            self.store.drop(values)
        self.cache = {t: v for t, v in held.items() if used_later(t)}


def layerwise_inputs(
    model: ov.Model,
    graph: ModelGraph,
    targets: list[WeightTarget],
    items: list[Any],
    make_consumer: Callable[[list[WeightTarget]], Callable[[np.ndarray], None]],
    store: TensorStore | None = None,
) -> Iterator[list[WeightTarget]]:
    """Yields the stages in order, after feeding each input, item by item, to ``make_consumer(targets)`` (one
    consumer per group of targets that share that input). ``store`` keeps the cached tensors (default: memory); it
    is closed at the end.

    The caller updates the model's weights of a stage before asking for the next one.
    """
    plan = stages(graph, targets)
    points: list[list[ActivationPoint]] = [[activation_point(graph, t) for t in stage] for stage in plan]
    store = store or TensorStore()
    runner = LayerwiseRunner(model, items, [[(p.node, p.port) for p in stage] for stage in points], store)
    try:
        for index, stage in enumerate(plan):
            sharing: dict[Tensor, list[WeightTarget]] = {}
            for target, point in zip(stage, points[index]):
                sharing.setdefault((point.node, point.port), []).append(target)
            consumers = {tensor: make_consumer(group) for tensor, group in sharing.items()}

            def consume(tensor: Tensor, activation: np.ndarray) -> None:
                consumers[tensor](activation)

            runner.run(index, consume)
            yield stage
    finally:
        runner.cache.clear()
        store.close()
