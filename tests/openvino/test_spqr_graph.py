"""The SpQR subgraph in OpenVINO: u3 packing as OpenVINO packs it, outputs equal to ``x W^T`` with the engine's
reconstruction, and a compiled model that keeps the codes packed (no dense float copy of the weight)."""

from dataclasses import replace

import numpy as np
from openvino.passes import ConstantFolding, Manager
import pytest

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.algorithms.gptq import Hessian, invert_hessian
from optimum_wc.algorithms.spqr import spqr_quantize
from optimum_wc.algorithms.spqr_storage import to_spqr_storage
from optimum_wc.config.spqr import SpQRConfig
from optimum_wc.kernels.packing import pack
from optimum_wc.openvino import activation_side
from optimum_wc.openvino.activation_side import OutlierTerm, insert_outliers, insert_permutation
from optimum_wc.openvino.decompression import dequantize, spqr_parts
from optimum_wc.openvino.fusion import Projection, fuse_and_add_outliers

F32 = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


def test_u3_packing_equals_openvinos_own_conversion():
    values = np.random.default_rng(0).integers(0, 8, size=(6, 20)).astype(np.uint8)  # 120 values, padded to 8s
    nibbles = values.reshape(-1)
    u4 = ov.op.Constant(
        ov.Tensor(nibbles[0::2] | (nibbles[1::2] << 4), list(values.shape), ov.Type.u4), shared_memory=False
    )
    model = ov.Model([opset.result(opset.convert(u4, ov.Type.u3))], [])
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)
    (folded,) = [op for op in model.get_ops() if op.get_type_name() == "Constant"]
    assert folded.get_element_type() == ov.Type.u3
    expected = np.asarray(folded.get_tensor_view().data).view(np.uint8).reshape(-1)
    assert np.array_equal(pack(values, "u3").data, expected)


def _spqr_model(bits, threshold, rows=64, columns=128, seed=0, round_zero=False, group_sizes=(16, 16, 32)):
    """MatMuls on one input, one weight per group size, built as ``compress_weights`` builds them: the weights
    with the same layout fused into one MatMul, the outliers of all in one sparse product."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(rows, columns)).astype(np.float32) * 0.05 for _ in group_sizes]
    for weight in weights:
        weight[rng.random(weight.shape) < 0.01] *= 12
    x_calibration = (rng.normal(size=(256, columns)) * (1 + 3 * rng.random(columns))).astype(np.float32)
    hessian = Hessian(columns)
    hessian.add(x_calibration[None])
    inverse = invert_hessian(hessian.matrix, 1.0, act_order=True)
    results = [
        spqr_quantize(
            w, inverse, SpQRConfig(bits=bits, outlier_threshold=threshold, round_zero=round_zero, group_size=group_size)
        )
        for w, group_size in zip(weights, group_sizes)
    ]

    x = opset.parameter([-1, -1, columns], ov.Type.f32, name="x")
    outputs, terms, projections, shared = [], [], [], {}
    for index, result in enumerate(results):
        stored = to_spqr_storage(result)
        name = f"w{index}"
        parts = spqr_parts(stored, name)
        matmul = opset.matmul(
            x, dequantize(parts, [rows, columns], name, 1, ov.Type.f32), False, True, name=f"mm{index}"
        )
        outputs.append(opset.result(opset.relu(matmul)))
        terms.append(OutlierTerm.of(matmul, 1, stored.outliers, name))
        insert_permutation(matmul, 1, stored.permutation, name, shared=shared)  # one Gather for all
        projections.append(Projection.of(matmul, 1, parts, name, ov.Type.f32))
    fuse_and_add_outliers(projections, [terms])
    return ov.Model(outputs, [x]), results


@pytest.mark.parametrize("bits, round_zero", [(3, False), (4, False), (4, True)])
@pytest.mark.parametrize("form", ["ell", "bags"])
def test_outputs_equal_the_engines_reconstruction(bits, round_zero, form, monkeypatch):
    monkeypatch.setattr(activation_side, "ELL_MAX_SLOTS", 1000 if form == "ell" else 0)
    model, results = _spqr_model(bits, threshold=0.2, round_zero=round_zero)
    assert all(len(r.outliers) > 0 for r in results)
    types = {"ell": "Gather", "bags": "EmbeddingBagOffsets"}
    x = model.get_parameters()[0]
    reading_x = sorted(
        op.get_friendly_name() for op in model.get_ops() if op.get_type_name() in types.values() and _reads(op, x)
    )
    # one permutation and one sparse product, each shared by the three weights; the two with the same layout in
    # one MatMul
    assert reading_x == sorted(["w0/permutation", f"w0/outliers/{'gather' if form == 'ell' else 'bags'}"]), reading_x
    matmuls = sorted(op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul")
    assert matmuls == ["mm2", "w0/fused/MatMul"], matmuls
    compiled = ov.Core().compile_model(model, "CPU", F32)
    for shape in ((1, 1, 128), (2, 5, 128)):
        _check_outputs(compiled, results, np.random.default_rng(1).normal(size=shape).astype(np.float32))


def _reads(op, x) -> bool:
    """Whether ``op`` reads ``x``, maybe reshaped or transposed first."""
    sources = [port.get_source_output().get_node() for port in op.inputs()]
    return any(node == x or (node.get_type_name() in ("Reshape", "Transpose") and _reads(node, x)) for node in sources)


def _check_outputs(compiled, results, x):
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
    model, _ = _spqr_model(bits, threshold=0.2, rows=256, columns=512, round_zero=round_zero, group_sizes=(32, 32))
    runtime = ov.Core().compile_model(model, "CPU", F32).get_runtime_model()
    constants = [op for op in runtime.get_ops() if op.get_rt_info()["layerType"].astype(str) == "Const"]
    u4 = [op for op in constants if op.get_rt_info()["outputPrecisions"].astype(str) == "u4"]
    shapes = sorted(tuple(op.get_output_partial_shape(0).to_shape()) for op in u4)
    # the codes of both weights, fused into one MatMul, and with integer zero points their zero points too (fast
    # kernels)
    assert shapes.count((512, 512)) == 1, shapes
    assert shapes.count((512, 16)) == (1 if round_zero else 0), shapes
    assert [op.get_rt_info()["layerType"].astype(str) for op in runtime.get_ops()].count("FullyConnected") == 1
    for op in constants:
        shape = op.get_output_partial_shape(0)
        elements = int(np.prod([d.get_length() for d in shape])) if shape.is_static else 0
        precision = op.get_rt_info()["outputPrecisions"].astype(str)
        assert not (precision in ("f32", "f16", "bf16") and elements >= 256 * 512 // 4), (
            op.get_friendly_name(),
            precision,
            elements,
        )


def _csr(dense: np.ndarray):
    from optimum_wc.algorithms.spqr_storage import StoredOutliers, index_storage

    rows, columns = np.nonzero(dense)
    offsets = np.searchsorted(rows, np.arange(dense.shape[0]))
    return StoredOutliers(
        pack(offsets, index_storage(len(rows) + 1)),
        pack(columns, index_storage(dense.shape[1])),
        dense[rows, columns].astype(np.float16),
        len(rows),
    )


@pytest.mark.parametrize("form", ["ell", "bags"])
def test_outliers_of_matmuls_sharing_an_input_are_one_sparse_product_with_folded_arrays(form, monkeypatch):
    monkeypatch.setattr(activation_side, "ELL_MAX_SLOTS", 3 if form == "ell" else 2)  # the rows hold up to 3
    columns = 12
    first = np.zeros((5, columns), np.float16)  # empty first and last rows; one row with three outliers
    first[1, [0, 7, 11]] = [1.5, -2.0, 0.25]
    first[3, 4] = 3.0
    second = np.zeros((3, columns), np.float16)
    second[0, 2], second[2, 2] = -1.0, 0.5
    x = opset.parameter([-1, -1, columns], ov.Type.f32, name="x")
    terms, outputs = [], []
    for index, dense in enumerate((first, second)):
        base = np.random.default_rng(index).normal(size=dense.shape).astype(np.float32)
        matmul = opset.matmul(x, ov.op.Constant(base), False, True, name=f"mm{index}")
        outputs.append(opset.result(matmul))
        terms.append((OutlierTerm.of(matmul, 1, _csr(dense), f"w{index}"), base, dense))
    insert_outliers([term for term, _, _ in terms])
    compiled = ov.Core().compile_model(ov.Model(outputs, [x]), "CPU", F32)
    for batch, tokens in ((1, 1), (2, 1), (1, 4)):
        value = np.random.default_rng(tokens).normal(size=(batch, tokens, columns)).astype(np.float32)
        results = compiled(value)
        for index, (_, base, dense) in enumerate(terms):
            expected = value.astype(np.float64) @ (base.astype(np.float64) + dense.astype(np.float64)).T
            np.testing.assert_allclose(results[index], expected, rtol=1e-5, atol=1e-5)
    runtime = [op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops()]
    # the CSR -> ELL (or bag) arrays are constant-folded; one sparse product for both MatMuls, split by MatMul: the
    # ELL form over the rows with outliers and one Gather of all rows' sums; the bags already one per row
    assert not {"Select", "Range", "NonZero", "CumSum"} & set(runtime), runtime
    assert runtime.count("Split") == 1, runtime
    bags = [kind for kind in runtime if kind.startswith("EmbeddingBag")]
    if form == "ell":
        assert runtime.count("Gather") == 2 and runtime.count("Reduce") == 1 and not bags, runtime
        assert "Concatenation" not in runtime, runtime
    else:
        assert len(bags) == 1 and "Reduce" not in runtime and "Gather" not in runtime, runtime


@pytest.mark.parametrize("one_slot", [False, True])
@pytest.mark.parametrize("form", ["ell", "bags"])
def test_outliers_land_on_their_rows_of_a_fused_output(form, one_slot, monkeypatch):
    # a MatMul of 11 rows that holds three weights' rows (a fused one): rows 2-4 and 6-9 have outliers, the weight
    # of rows 0-1 and row 5 has none, nor has row 10 (the last: its bag is empty)
    monkeypatch.setattr(activation_side, "ELL_MAX_SLOTS", 1000 if form == "ell" else 0)
    columns = 8
    rng = np.random.default_rng(3)
    base = rng.normal(size=(11, columns)).astype(np.float32)
    first, second = np.zeros((3, columns), np.float16), np.zeros((4, columns), np.float16)
    first[0, [1, 6]], first[2, 3] = [2.0, -0.5], 1.25
    second[1, 0], second[3, [2, 5, 7]] = -3.0, [0.75, 1.5, -1.0]
    if one_slot:  # at most one outlier a row: the ELL form has no slots to sum
        first[0, 6], second[3, [5, 7]] = 0, 0
    x = opset.parameter([-1, -1, columns], ov.Type.f32, name="x")
    matmul = opset.matmul(x, ov.op.Constant(base), False, True, name="fused")
    output = opset.result(matmul)
    insert_outliers(
        [
            replace(OutlierTerm.of(matmul, 1, _csr(first), "a"), first_row=2),
            replace(OutlierTerm.of(matmul, 1, _csr(second), "b"), first_row=6),
        ]
    )
    compiled = ov.Core().compile_model(ov.Model([output], [x]), "CPU", F32)
    runtime = [op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops()]
    assert runtime.count("Reduce") == (1 if form == "ell" and not one_slot else 0), runtime
    dense = np.zeros((11, columns))
    dense[2:5], dense[6:10] = first, second
    for shape in ((1, 1, columns), (2, 3, columns)):
        value = rng.normal(size=shape).astype(np.float32)
        expected = value.astype(np.float64) @ (base.astype(np.float64) + dense).T
        np.testing.assert_allclose(compiled(value)[0], expected, rtol=1e-5, atol=1e-5)
