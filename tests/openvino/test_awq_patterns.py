"""Where AWQ applies: nncf's three patterns, first match wins."""

import pytest

import openvino as ov
from optimum_wc.openvino.awq import find_awq_matches
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.weights import find_weight_targets


def _matches(xml):
    graph = ModelGraph(ov.Core().read_model(xml))
    targets = [t.op_name for t in find_weight_targets(graph) if t.kind == "matmul"]
    return graph, find_awq_matches(graph, targets)


@pytest.mark.parametrize(
    "arch, target, merge_type",
    [("llama", "down_proj", "MatMul"), ("qwen2", "down_proj", "MatMul"), ("opt", "fc2", "Relu")],
)
def test_patterns(arch, target, merge_type, tiny_ir):
    graph, matches = _matches(tiny_ir(arch))
    assert len(matches) == 2  # one per decoder layer
    for match in matches:
        assert target in match.target
        assert graph.type_of(match.merge) == merge_type
        if merge_type == "MatMul":
            assert "up_proj" in match.merge


def test_gelu_is_not_an_awq_activation(tiny_ir):
    _, matches = _matches(tiny_ir("gpt2"))
    assert matches == []
