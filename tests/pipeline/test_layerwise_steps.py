"""GPTQ and SpQR layer by layer (``pipeline/layerwise_steps.py``): our own options (act order, one pass), the
activations kept in scratch files, the items nncf takes, fused MoE experts, against nncf 3.4.0 where it has them."""

from __future__ import annotations

import nncf
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from helpers import calibration_items
import openvino as ov
import optimum_wc
from optimum_wc.openvino import scratch
from optimum_wc.pipeline import data_aware
from parity import compare_ir, compress_and_save, differing_share

pytestmark = pytest.mark.slow  # data-aware compression, beside nncf's where it has the option


def test_act_order_is_our_option_recorded_only_when_set(tiny_ir, tmp_path):
    """``gptq_params.act_order`` changes the weights and is written to rt_info; left off, the IR stays nncf's."""
    from optimum_wc.config.advanced import AdvancedCompressionParameters, AdvancedGPTQParameters

    xml = tiny_ir("llama")
    common = dict(mode="int4_sym", group_size=32, gptq=True, dataset=calibration_items())
    plain = compress_and_save(xml, tmp_path / "plain", "optimum_wc", **common)
    advanced = AdvancedCompressionParameters(gptq_params=AdvancedGPTQParameters(act_order=True))
    ordered = compress_and_save(xml, tmp_path / "ordered", "optimum_wc", advanced_parameters=advanced, **common)
    assert any(differing_share(plain, ordered).values())

    def recorded(path):
        return ov.Core().read_model(path).get_rt_info(["nncf", "weight_compression", "advanced_parameters"]).value

    assert "'act_order': True" in recorded(ordered)
    assert "act_order" not in recorded(plain)


@pytest.mark.parametrize("static_groups", [False, True])
def test_act_order_model_computes_with_the_weights_gptq_chose(static_groups, tiny_ir):
    """With act order the weights are stored with permuted columns and the activation gathered in the same order
    (one Gather per input, shared by q, k and v); the compiled model computes ``x W_gptq^T`` with GPTQ's weights in
    their original order. Static groups keep the original layout (no Gather)."""
    from optimum_wc.compress import compress_model
    from optimum_wc.config.advanced import AdvancedCompressionParameters, AdvancedGPTQParameters
    from optimum_wc.config.settings import CompressionSettings
    from optimum_wc.openvino.graph import set_constant

    xml = tiny_ir("llama")
    gptq_params = AdvancedGPTQParameters(act_order=True, static_groups=static_groups)
    settings = CompressionSettings.from_arguments(
        mode="int4_sym",
        group_size=32,
        gptq=True,
        dataset=calibration_items(),
        backup_mode="none",
        advanced_parameters=AdvancedCompressionParameters(gptq_params=gptq_params),
    )
    model = ov.Core().read_model(xml)
    result = compress_model(model, settings, progress=False)
    gptq = [w for w in result.plan.weights if w.precision is not None]
    assert len(gptq) == 14 and sum(w.permutation is not None for w in gptq) == (0 if static_groups else 14)
    gathers = {op.get_friendly_name() for op in model.get_ops() if op.get_friendly_name().endswith("/permutation")}
    assert len(gathers) == (0 if static_groups else 2 * 4)  # per layer: q/k/v, o, gate/up, down

    reference = ov.Core().read_model(xml)  # float, with GPTQ's weights (original column order)
    by_name = {op.get_friendly_name(): op for op in reference.get_ops()}
    for weight in gptq:
        set_constant(by_name[weight.target.constant_name], weight.target.constant.get_data())
    config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
    outputs = []
    for candidate in (model, reference):
        request = ov.Core().compile_model(candidate, "CPU", config).create_infer_request()
        request.infer(calibration_items(1, seed=5)[0])
        outputs.append(request.get_output_tensor(0).data.astype(np.float64))
    # they differ only by the float16 rounding of the scales
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=0, atol=2e-3 * np.abs(outputs[1]).max())


def test_gptq_with_cached_activations_in_files_writes_the_same_ir(tiny_ir, tmp_path, monkeypatch):
    """With ``scratch_dir`` the layer-by-layer pass keeps its cached activations in files there (removed after)."""
    saved, save = [], np.save
    monkeypatch.setattr(np, "save", lambda path, value: saved.append(path) or save(path, value))
    xml = tiny_ir("llama")
    common = dict(mode="int4_sym", group_size=32, gptq=True, dataset=calibration_items())
    in_memory = compress_and_save(xml, tmp_path / "memory", "optimum_wc", **common)
    assert saved == []
    (tmp_path / "scratch").mkdir()
    in_files = compress_and_save(xml, tmp_path / "files", "optimum_wc", scratch_dir=tmp_path / "scratch", **common)
    assert saved and all(str(path).startswith(str(tmp_path / "scratch")) for path in saved)
    assert in_memory.with_suffix(".bin").read_bytes() == in_files.with_suffix(".bin").read_bytes()
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.parametrize("chunk_bytes", [1, 2**30])  # every weight mapped at once; all at the end
@pytest.mark.parametrize("options", [{"gptq": True}, {"awq": True, "gptq": True, "scale_estimation": True}])
def test_rewritten_weights_mapped_from_scratch_files_give_the_same_ir(
    options, chunk_bytes, tiny_ir, tmp_path, monkeypatch
):
    """With ``scratch_dir`` the weights AWQ and GPTQ rewrite go to files there, memory-mapped back; a weight rewritten
    twice (AWQ, then GPTQ) is mapped once, with its last values."""
    xml = tiny_ir("llama")
    common = dict(mode="int4_sym", group_size=32, dataset=calibration_items(), **options)
    in_memory = compress_and_save(xml, tmp_path / "memory", "optimum_wc", **common)
    mapped, hold = [], scratch.ScratchIR.hold
    monkeypatch.setattr(scratch, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(
        scratch.ScratchIR, "hold", lambda self, c, shared=None: mapped.append(c) or hold(self, c, shared)
    )
    last_in_memory, point_to = {}, data_aware.DataAwareCompression._point_to

    def record(self, constant, in_memory=False):
        last_in_memory[constant.get_friendly_name()] = in_memory
        point_to(self, constant, in_memory)

    monkeypatch.setattr(data_aware.DataAwareCompression, "_point_to", record)
    (tmp_path / "scratch").mkdir()
    in_files = compress_and_save(xml, tmp_path / "files", "optimum_wc", scratch_dir=tmp_path / "scratch", **common)
    assert last_in_memory and not any(last_in_memory.values())  # the plan reads them from the files: released after use
    rewritten = {c.get_friendly_name() for c in mapped if c.get_output_element_type(0).is_real()}  # not the codes
    projections = {
        op.get_friendly_name()
        for op in ov.Core().read_model(xml).get_ops()
        if op.get_type_name() == "Constant" and op.get_friendly_name().endswith("_proj.weight")
    }
    assert projections and projections <= rewritten, (projections, rewritten)
    assert in_memory.with_suffix(".bin").read_bytes() == in_files.with_suffix(".bin").read_bytes()
    assert list((tmp_path / "scratch").iterdir()) == []


def test_spqr_with_scratch_files_writes_the_same_ir(tiny_ir, tmp_path):
    xml = tiny_ir("llama")
    common = dict(mode="spqr", dataset=calibration_items(8))
    in_memory = compress_and_save(xml, tmp_path / "memory", "optimum_wc", **common)
    (tmp_path / "scratch").mkdir()
    in_files = compress_and_save(xml, tmp_path / "files", "optimum_wc", scratch_dir=tmp_path / "scratch", **common)
    assert in_memory.with_suffix(".bin").read_bytes() == in_files.with_suffix(".bin").read_bytes()
    assert list((tmp_path / "scratch").iterdir()) == []


def test_one_pass_gptq_is_as_close_to_fp32_and_does_not_depend_on_the_threads(tiny_ir, monkeypatch):
    """``one_pass`` (ours): every layer's Hessian from one pass of the unquantized model, layers quantized on worker
    threads with BLAS on one thread; not identical to nncf's layer-by-layer GPTQ, about as accurate, the same bytes
    for 1 and 2 workers and whatever the process's BLAS thread count."""
    from helpers import logits_error, model_logits
    from optimum_wc.config.advanced import AdvancedCompressionParameters, AdvancedGPTQParameters

    xml = tiny_ir("llama")
    evaluation = calibration_items(4, seed=9)
    reference = model_logits(ov.Core().read_model(xml), evaluation)
    monkeypatch.setattr(nncf, "compress_weights", lambda *a, **k: pytest.fail("nncf was called"))

    def compress(one_pass: bool, workers: int, blas_threads: int = 2) -> ov.Model:
        model = ov.Core().read_model(xml)
        params = AdvancedCompressionParameters(gptq_params=AdvancedGPTQParameters(one_pass=one_pass))
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            optimum_wc.compress_weights(
                model,
                mode="int4_sym",
                group_size=32,
                gptq=True,
                dataset=calibration_items(16),
                advanced_parameters=params,
                progress=False,
                num_workers=workers,
            )
        return model

    def weights(model: ov.Model) -> dict[str, bytes]:
        return {
            op.get_friendly_name(): np.asarray(op.get_tensor_view().data).tobytes()
            for op in model.get_ops()
            if op.get_type_name() == "Constant" and op.get_output_element_type(0) == ov.Type.i4
        }

    layer_by_layer, one_pass, one_worker = compress(False, 2), compress(True, 2), compress(True, 1)
    blas_one_thread = compress(True, 1, blas_threads=1)
    assert weights(one_pass) and weights(one_pass) == weights(one_worker) == weights(blas_one_thread)
    assert weights(one_pass) != weights(layer_by_layer)
    errors = {
        name: logits_error(reference, model_logits(model, evaluation))
        for name, model in (("layer_by_layer", layer_by_layer), ("one_pass", one_pass))
    }
    assert errors["one_pass"] <= 1.25 * errors["layer_by_layer"], errors


def _two_matmuls(scalar_input: bool) -> ov.Model:
    """x [?, ?, 64] (times a 0-d input s) -> MatMul -> ReLU -> MatMul: the shapes of the inputs GPTQ must feed."""
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([-1, -1, 64], ov.Type.f32, name="x")
    parameters, hidden = [x], x.output(0)
    if scalar_input:
        s = ops.parameter([], ov.Type.f32, name="s")
        parameters.append(s)
        hidden = ops.multiply(hidden, s).output(0)
    for index in range(2):
        weight = ops.constant(rng.normal(size=(64, 64)).astype(np.float32), name=f"w{index}")
        hidden = ops.matmul(hidden, weight, False, True)
        hidden.set_friendly_name(f"matmul{index}")
        hidden = ops.relu(hidden) if index == 0 else hidden
    return ov.Model([ops.result(hidden)], parameters, "two_matmuls")


@pytest.mark.parametrize("items", ["arrays", "scalar-input"])
def test_gptq_takes_the_items_nncf_takes(items, tmp_path):
    """Bare arrays for a single-input model, and 0-d inputs, as OpenVINO's infer takes them (both failed before)."""
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(1, int(n), 64)).astype(np.float32) for n in rng.integers(3, 9, size=6)]
    dataset = xs if items == "arrays" else [[x, np.array(0.5 + i, dtype=np.float32)] for i, x in enumerate(xs)]
    options = dict(group_size=32, gptq=True, all_layers=True)
    paths = {}
    for library in ("nncf", "optimum_wc"):
        model = _two_matmuls(items == "scalar-input")
        if library == "nncf":
            nncf.compress_weights(
                model, mode=nncf.CompressWeightsMode.INT4_SYM, dataset=nncf.Dataset(dataset), **options
            )
        else:
            optimum_wc.compress_weights(model, mode="int4_sym", dataset=dataset, progress=False, **options)
        paths[library] = tmp_path / library / "openvino_model.xml"
        ov.save_model(model, paths[library], compress_to_fp16=False)
    report = compare_ir(paths["nncf"], paths["optimum_wc"])
    assert report.identical, report.describe()


@pytest.mark.parametrize(
    "options",
    [{"gptq": True}, {"gptq": True, "scale_estimation": True}, {"scale_estimation": True}],
    ids=["gptq", "gptq+se", "se"],
)
def test_gptq_and_scale_estimation_on_fused_moe_experts_are_nncfs(options, export_root, tmp_path):
    """Mixtral's experts are 3-D weights ``[experts, out, in]`` on inputs ``[experts, tokens, in]``: GPTQ runs on each
    expert with its own Hessian, scale estimation on each with its own input means, as nncf does (they were left
    to data-free compression before)."""
    from model_types import export_type, inputs_for

    xml = export_type("mixtral", export_root / "types" / "mixtral")
    model = ov.Core().read_model(xml)
    assert any(
        len(op.get_output_shape(0)) == 3
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and "experts" in op.get_friendly_name()
    )
    rng = np.random.default_rng(0)
    items = [inputs_for(model, int(n), rng) for n in rng.integers(4, 12, size=8)]
    reference = compress_and_save(
        xml,
        tmp_path / "nncf",
        "nncf",
        mode=nncf.CompressWeightsMode.INT4_SYM,
        group_size=32,
        dataset=nncf.Dataset(items),
        **options,
    )
    ours = compress_and_save(
        xml, tmp_path / "ours", "optimum_wc", mode="int4_sym", group_size=32, dataset=items, **options
    )
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()
