"""GPTQ's stages: targets that do not feed each other, shallowest first."""

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
