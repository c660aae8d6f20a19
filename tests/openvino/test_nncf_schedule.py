"""The extra GPTQ runs of nncf's layer-wise scheduler, against nncf's own scheduler on hand-built graphs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.nncf_schedule import repeats

RNG = np.random.default_rng(2)


def _mm(x, name: str, width: int = 16):
    return opset.matmul(x, opset.constant(RNG.normal(size=(width, width)).astype(np.float32)), False, True, name=name)


def _branch_meets_later_targets() -> ov.Model:
    """``a``'s output meets a branch of two later MatMuls (the shape of GraniteMoeHybrid's shared MLP beside its
    experts): nncf hands ``a`` to GPTQ twice."""
    x = opset.parameter([1, -1, 16], ov.Type.f32, name="x")
    a = _mm(x, "a")
    c = _mm(opset.relu(_mm(x, "b")), "c")
    return ov.Model([_mm(opset.add(a, c), "d")], [x])


def _chain() -> ov.Model:
    x = opset.parameter([1, -1, 16], ov.Type.f32, name="x")
    h = _mm(opset.relu(_mm(x, "a")), "b")
    return ov.Model([_mm(opset.add(h, x), "c")], [x])


def _two_inputs_deep_branch() -> ov.Model:
    x = opset.parameter([1, -1, 16], ov.Type.f32, name="x")
    y = opset.parameter([1, -1, 16], ov.Type.f32, name="y")
    a, e = _mm(x, "a"), _mm(y, "e")
    deep = _mm(opset.relu(_mm(opset.relu(_mm(y, "f")), "g")), "h")
    return ov.Model([_mm(opset.add(opset.add(a, e), deep), "out")], [x, y])


def _nncf_repeats(model: ov.Model, names: list[str]) -> Counter:
    from nncf.openvino.graph.nncf_graph_builder import GraphConverter
    from nncf.quantization.algorithms.layerwise.scheduler import LayerwiseScheduler

    graph = GraphConverter.create_nncf_graph(model)
    targets = [graph.get_node_by_name(name) for name in names]
    handed = Counter(
        node.node_name for step in LayerwiseScheduler().schedule(graph, targets) for node in step.target_node_map
    )
    return Counter({name: count - 1 for name, count in handed.items() if count > 1})


@pytest.mark.parametrize("build", [_branch_meets_later_targets, _chain, _two_inputs_deep_branch])
def test_the_extra_runs_are_nncfs(build):
    model = build()
    names = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    expected = _nncf_repeats(model, names)
    assert repeats(ModelGraph(model), names) == expected
    if build is _branch_meets_later_targets:
        assert expected == Counter({"a": 1})  # the case is there to be matched
