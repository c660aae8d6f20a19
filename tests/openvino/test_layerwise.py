"""GPTQ's stages: targets that do not feed each other, shallowest first."""

import numpy as np

import openvino as ov
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.layerwise import stages
from optimum_wc.openvino.weights import find_weight_targets


def test_llama_stages_follow_the_decoder_layers(tiny_ir):
    graph = ModelGraph(ov.Core().read_model(tiny_ir("llama")))
    targets = [t for t in find_weight_targets(graph) if t.kind == "matmul" and "rotary" not in t.op_name]
    names = [[t.op_name.split("/")[0].split(".")[-1] for t in stage] for stage in stages(graph, targets)]
    per_layer = [sorted(n) for n in names[:4]]
    assert per_layer == [["k_proj", "q_proj", "v_proj"], ["o_proj"], ["gate_proj", "up_proj"], ["down_proj"]]
    assert len(names) == 2 * 4 + 1 and names[-1] == ["lm_head"]
    assert sum(len(s) for s in names) == len(targets)


def _inputs_seen(xml, store):
    from helpers import calibration_items
    from optimum_wc.openvino.layerwise import layerwise_inputs

    model = ov.Core().read_model(xml)
    graph = ModelGraph(model)
    targets = [t for t in find_weight_targets(graph) if t.kind == "matmul" and "rotary" not in t.op_name]
    seen = {}

    def consumer(group):
        return lambda activation: seen.setdefault(group[0].op_name, []).append(np.array(activation))

    for _ in layerwise_inputs(model, graph, targets, calibration_items(6), consumer, store):
        pass
    return seen


def test_cached_activations_kept_in_files_give_the_same_inputs_and_are_removed(tiny_ir, tmp_path):
    from optimum_wc.openvino.layerwise import TensorStore

    xml = tiny_ir("llama")
    in_memory = _inputs_seen(xml, None)
    store = TensorStore(tmp_path)
    in_files = _inputs_seen(xml, store)
    assert store.written > 0  # the stages' outputs went through files
    assert list(tmp_path.iterdir()) == []  # and the folder is gone
    assert in_files.keys() == in_memory.keys() and len(in_memory) == 2 * 4 + 1
    for name, values in in_memory.items():
        assert len(values) == 6 and all(np.array_equal(a, b) for a, b in zip(values, in_files[name])), name


def test_the_ops_later_stages_need_are_those_of_a_walk_from_their_points(tiny_ir):
    """One backward walk over the graph gives, for every stage, what a fresh walk from all later stages' points
    gives (what decides which cached tensors a stage may drop)."""
    from optimum_wc.openvino.layerwise import LayerwiseRunner, TensorStore, _ancestors, _without_state
    from optimum_wc.openvino.statistics import activation_point

    model = ov.Core().read_model(tiny_ir("llama"))
    graph = ModelGraph(model)
    targets = [t for t in find_weight_targets(graph) if t.kind == "matmul" and "rotary" not in t.op_name]
    points = [
        [(p.node, p.port) for p in (activation_point(graph, t) for t in stage)] for stage in stages(graph, targets)
    ]
    runner = LayerwiseRunner(model, [], points, TensorStore())
    ops = _without_state(model.clone())
    for stage in range(len(points)):
        later = [t for stage_points in points[stage + 1 :] for t in stage_points]
        assert runner._after[stage] == _ancestors(ops, later, set(), strict=False)[0], stage
    assert runner._after[-1] == set() and runner._after[0]
