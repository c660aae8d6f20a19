"""Weight discovery: which constants, which ops, which reduction axes; the RoPE MatMul is left alone."""

from __future__ import annotations

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.ignored import positional_embedding_matmuls
from optimum_wc.openvino.weights import find_weight_targets


def test_targets_match_nncf_layer_attributes(arch, tiny_ir):
    from nncf.openvino.graph.nncf_graph_builder import GraphConverter
    from nncf.quantization.algorithms.weight_compression.openvino_backend import OVWeightCompressionAlgoBackend

    model = ov.Core().read_model(tiny_ir(arch))
    graph = GraphConverter.create_nncf_graph(model)
    weighted = {"MatMulOp", "EmbeddingOp"}
    expected = []
    for node in graph.topological_sort():
        if node.metatype.name in weighted and node.layer_attributes and node.layer_attributes.constant_attributes:
            for port, attrs in node.layer_attributes.constant_attributes.items():
                axes = OVWeightCompressionAlgoBackend.get_reduction_axes(node, port, graph)
                expected.append((node.node_name, port, attrs["name"], tuple(attrs["shape"]), tuple(axes)))
    ours = [
        (t.op_name, t.port, t.constant_name, t.shape, t.reduction_axes) for t in find_weight_targets(ModelGraph(model))
    ]
    assert ours == expected


def test_rope_matmul_is_recognised(tiny_ir):
    graph = ModelGraph(ov.Core().read_model(tiny_ir("llama")))
    assert positional_embedding_matmuls(graph) == {"__module.model.rotary_emb/aten::matmul/MatMul"}


def _model_with(op_builder, weight: np.ndarray) -> ov.Model:
    x = opset.parameter([1, 4, 8, 8], ov.Type.f32, name="x")
    out = op_builder(x, opset.constant(weight, name="w"))
    return ov.Model([out], [x])


def test_convolution_kernels_reduce_over_input_channels_and_space():
    conv = _model_with(
        lambda x, w: opset.convolution(x, w, [1, 1], [0, 0], [0, 0], [1, 1]), np.ones((6, 4, 3, 3), np.float32)
    )
    (target,) = find_weight_targets(ModelGraph(conv))
    assert (target.kind, target.reduction_axes) == ("convolution", (1, 2, 3))
    group = _model_with(
        lambda x, w: opset.group_convolution(x, w, [1, 1], [0, 0], [0, 0], [1, 1]), np.ones((2, 3, 2, 3, 3), np.float32)
    )
    (target,) = find_weight_targets(ModelGraph(group))
    assert target.reduction_axes == (2, 3, 4)


def test_matmul_without_transpose_reduces_axis_minus_two_and_integer_constants_are_not_weights():
    x = opset.parameter([2, 16], ov.Type.f32, name="x")
    mm = opset.matmul(x, opset.constant(np.ones((16, 8), np.float32), name="w"), False, False)
    already = opset.matmul(
        mm, opset.convert(opset.constant(np.ones((8, 4), np.int8), name="q"), ov.Type.f32), False, False
    )
    (target,) = find_weight_targets(ModelGraph(ov.Model([already], [x])))
    assert (target.constant_name, target.reduction_axes) == ("w", (0,))


def test_only_weights_not_built_in_memory_are_offered_for_release(tiny_ir, monkeypatch):
    """A constant this process built (a rewritten weight) is not looked up in the process's file mappings."""
    from dataclasses import replace

    from optimum_wc.openvino import weights

    offered = []
    monkeypatch.setattr(weights, "release", lambda array: offered.append(array) or 0)
    target = find_weight_targets(ModelGraph(ov.Core().read_model(tiny_ir("llama"))))[0]
    target.release_pages()
    assert len(offered) == 1
    replace(target, in_memory=True).release_pages()
    assert len(offered) == 1


def test_read_dtype_is_the_dtype_read_for_every_float_type():
    x = opset.parameter([1, 16], ov.Type.f32, name="x")
    for element_type in ("f16", "bf16", "f32", "f64", "f8e4m3", "f8e5m2"):
        weight = opset.constant(np.ones((16, 16), np.float32), name="w")
        weight = opset.constant(weight.get_data(), getattr(ov.Type, element_type)) if element_type != "f32" else weight
        matmul = opset.matmul(x, opset.convert(weight, ov.Type.f32), False, True)
        (target,) = find_weight_targets(ModelGraph(ov.Model([matmul], [x])))
        assert target.element_type == element_type
        assert target.read().dtype == target.read_dtype, element_type
