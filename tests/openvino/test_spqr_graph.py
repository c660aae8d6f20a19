"""The SpQR subgraph in OpenVINO: u3 packing as OpenVINO packs it, outputs equal to ``x W^T`` with the engine's
reconstruction, and a compiled model that keeps the codes packed (no dense float copy of the weight)."""

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as opset
from openvino.passes import ConstantFolding, Manager

from optimum_wc.algorithms.gptq import Hessian, invert_hessian
from optimum_wc.algorithms.spqr import SpQRSettings, spqr_quantize
from optimum_wc.kernels.packing import pack
from optimum_wc.kernels.spqr_storage import to_spqr_storage
from optimum_wc.openvino.activation_side import insert_outliers, insert_permutation
from optimum_wc.openvino.decompression import build_spqr_decompression

F32 = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


def test_u3_packing_equals_openvinos_own_conversion():
    values = np.random.default_rng(0).integers(0, 8, size=(6, 20)).astype(np.uint8)  # 120 values, padded to 8s
    nibbles = values.reshape(-1)
    u4 = ov.op.Constant(ov.Tensor(nibbles[0::2] | (nibbles[1::2] << 4), list(values.shape), ov.Type.u4), shared_memory=False)
    model = ov.Model([opset.result(opset.convert(u4, ov.Type.u3))], [])
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)
    (folded,) = [op for op in model.get_ops() if op.get_type_name() == "Constant"]
    assert folded.get_element_type() == ov.Type.u3
    expected = np.asarray(folded.get_tensor_view().data).view(np.uint8).reshape(-1)
    assert np.array_equal(pack(values, "u3").data, expected)


def _spqr_model(bits, threshold, rows=64, columns=128, seed=0, round_zero=False, group_size=16):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(rows, columns)).astype(np.float32) * 0.05 for _ in range(2)]
    for weight in weights:
        weight[rng.random(weight.shape) < 0.01] *= 12
    x_calibration = (rng.normal(size=(256, columns)) * (1 + 3 * rng.random(columns))).astype(np.float32)
    hessian = Hessian(columns)
    hessian.add(x_calibration[None])
    inverse = invert_hessian(hessian.matrix, 1.0, act_order=True)
    settings = SpQRSettings(bits=bits, outlier_threshold=threshold, round_zero=round_zero, group_size=group_size)
    results = [spqr_quantize(w, inverse, settings) for w in weights]

    x = opset.parameter([-1, -1, columns], ov.Type.f32, name="x")
    outputs, shared = [], {}
    for index, result in enumerate(results):  # two MatMuls on the same input: one shared permutation Gather
        stored = to_spqr_storage(result)
        name = f"w{index}"
        matmul = opset.matmul(x, build_spqr_decompression(stored, name, 1, ov.Type.f32), False, True, name=f"mm{index}")
        relu = opset.relu(matmul)
        insert_outliers(matmul, 1, stored.outliers.offsets, stored.outliers.columns, stored.outliers.values, name)
        insert_permutation(matmul, 1, stored.permutation, name, shared=shared)
        outputs.append(opset.result(relu))
    return ov.Model(outputs, [x]), results


@pytest.mark.parametrize("bits, round_zero", [(3, False), (4, False), (4, True)])
def test_outputs_equal_the_engines_reconstruction(bits, round_zero):
    model, results = _spqr_model(bits, threshold=0.2, round_zero=round_zero)
    assert all(len(r.outliers) > 0 for r in results)
    gathers = [op for op in model.get_ops() if op.get_type_name() == "Gather" and "permutation" in op.get_friendly_name()]
    assert len(gathers) == 1  # shared by the two MatMuls
    compiled = ov.Core().compile_model(model, "CPU", F32)
    x = np.random.default_rng(1).normal(size=(2, 5, 128)).astype(np.float32)
    outputs = compiled(x)
    for index, result in enumerate(results):
        # what is stored, in float64: the dense part, plus the float16 corrections, in the original column order
        stored = result.dense().astype(np.float64)
        inverse_order = np.argsort(result.permutation)
        stored[result.outliers.rows, inverse_order[result.outliers.columns]] += result.outliers.values
        weight = np.empty_like(stored)
        weight[:, result.permutation] = stored
        expected = np.maximum(x.astype(np.float64) @ weight.T, 0)
        # the subgraph is float16 arithmetic: each dense weight may be off by a rounding of its statistic and one
        # of the product (each relative 2^-11), depending on how OpenVINO folds it
        bound = 2**-10 * (np.abs(x) @ np.abs(weight).T) + 1e-6
        excess = np.abs(outputs[index] - expected) / bound
        assert excess.max() <= 1, excess.max()
        assert np.abs(outputs[index] - expected).max() < 0.01 * np.abs(expected).max()


@pytest.mark.parametrize("bits, round_zero", [(3, False), (4, False), (3, True), (4, True)])
def test_the_compiled_model_keeps_the_codes_packed(bits, round_zero):
    model, _ = _spqr_model(bits, threshold=0.2, rows=256, columns=512, round_zero=round_zero, group_size=32)
    runtime = ov.Core().compile_model(model, "CPU", F32).get_runtime_model()
    constants = [op for op in runtime.get_ops() if op.get_rt_info()["layerType"].astype(str) == "Const"]
    u4 = [op for op in constants if op.get_rt_info()["outputPrecisions"].astype(str) == "u4"]
    shapes = sorted(tuple(op.get_output_partial_shape(0).to_shape()) for op in u4)
    # the codes of both weights, and with integer zero points their zero points too (fast kernels)
    assert shapes.count((256, 512)) == 2
    assert shapes.count((256, 16)) == (2 if round_zero else 0)
    for op in constants:
        shape = op.get_output_partial_shape(0)
        elements = int(np.prod([d.get_length() for d in shape])) if shape.is_static else 0
        precision = op.get_rt_info()["outputPrecisions"].astype(str)
        assert not (precision in ("f32", "f16", "bf16") and elements >= 256 * 512 // 4), (op.get_friendly_name(), precision, elements)
