"""Our node ids and topological order are nncf's, so layer-wise decisions come out the same."""

from __future__ import annotations

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.openvino.graph import ModelGraph, dedupe_friendly_names


def test_node_ids_and_order_match_nncf(arch, tiny_ir):
    from nncf.openvino.graph.nncf_graph_builder import GraphConverter

    model = ov.Core().read_model(tiny_ir(arch))
    reference = GraphConverter.create_nncf_graph(model)
    ours = ModelGraph(model)
    assert {n.node_name: n.node_id for n in reference.get_all_nodes()} == ours.node_id
    assert [n.node_name for n in reference.topological_sort()] == ours.order


def test_duplicate_friendly_names_get_a_zero_appended():
    x = opset.parameter([2], ov.Type.f32, name="x")
    a = opset.relu(x, name="same")
    b = opset.relu(a, name="same")
    model = ov.Model([b], [x])
    dedupe_friendly_names(model)
    assert sorted(op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "Relu") == ["same", "same0"]
    assert not model.has_rt_info(["nncf", "friendly_names_were_updated"])  # written only once compression succeeds
