"""The decompression subgraph: its nodes and names, and that OpenVINO computes exactly the kernel's weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
import optimum_wc
from optimum_wc.kernels import compress, decompress


def _linear(weight: np.ndarray, as_f16: bool = False) -> ov.Model:
    x = opset.parameter([3, weight.shape[1]], ov.Type.f32, name="x")
    if as_f16:
        w = opset.convert(opset.constant(weight.astype(np.float16), name="w"), ov.Type.f32)
    else:
        w = opset.constant(weight, name="w")
    return ov.Model([opset.matmul(x, w, False, True, name="mm")], [x])


CASES = [("int8_asym", -1), ("int8_sym", -1)] + [(m, g) for m in ("int4_asym", "int4_sym", "nf4") for g in (-1, 32)]


@pytest.mark.parametrize("mode, group_size", CASES)
def test_compiled_model_uses_the_kernel_weights(mode, group_size):
    rng = np.random.default_rng(8)
    weight = rng.normal(size=(16, 64)).astype(np.float32)
    model = _linear(weight)
    kwargs = {} if mode.startswith("int8") else {"group_size": group_size, "all_layers": True}
    optimum_wc.compress_weights(model, mode=mode, progress=False, **kwargs)
    x = rng.normal(size=(3, 64)).astype(np.float32)
    config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}  # no int8 activations
    out = ov.Core().compile_model(model, "CPU", config)(x)[0]
    compressed = compress(weight, (1,), mode, group_size)
    stored = dataclasses.replace(compressed, scale=compressed.scale.astype(np.float16).astype(np.float32))  # f16 in IR
    restored = decompress(stored).astype(np.float64)
    np.testing.assert_allclose(out, x.astype(np.float64) @ restored.T, rtol=1e-5, atol=1e-5)


def _ops(model):
    return {op.get_friendly_name(): op for op in model.get_ops()}


def test_subgraph_nodes_types_and_names():
    model = _linear(np.random.default_rng(9).normal(size=(8, 64)).astype(np.float32))
    optimum_wc.compress_weights(model, mode="int4_asym", group_size=32, all_layers=True, progress=False)
    ops = _ops(model)
    assert ops["w"].get_output_element_type(0) == ov.Type.u4 and list(ops["w"].get_output_shape(0)) == [8, 2, 32]
    assert ops["w/zero_point"].get_output_element_type(0) == ov.Type.u4
    assert ops["w/scale"].get_output_element_type(0) == ov.Type.f16
    assert ops["w/zero_point/subtract"].get_type_name() == "Subtract"
    assert ops["w/fq_weights_1"].get_type_name() == "Multiply"
    convert = ops["w/fq_weights_1/convert"]
    assert convert.get_type_name() == "Convert" and convert.get_output_element_type(0) == ov.Type.f32
    assert convert.input_value(0).get_node().get_type_name() == "Reshape"
    assert ops["mm"].input_value(1).get_node().get_friendly_name() == "w/fq_weights_1/convert"


def test_f16_weight_reuses_the_existing_convert():
    model = _linear(np.random.default_rng(10).normal(size=(8, 64)).astype(np.float32), as_f16=True)
    optimum_wc.compress_weights(model, mode="int8_sym", progress=False)
    ops = _ops(model)
    assert "w/fq_weights_1/convert" not in ops
    feeding = ops["mm"].input_value(1).get_node()
    assert (
        feeding.get_type_name() == "Convert"
        and feeding.input_value(0).get_node().get_friendly_name() == "w/fq_weights_1"
    )
    assert ops["w"].get_output_element_type(0) == ov.Type.i8
