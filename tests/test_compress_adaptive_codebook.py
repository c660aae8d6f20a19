"""mode=ADAPTIVE_CODEBOOK: the same IR as nncf 3.4.0 with each of its parameters and the data-aware options nncf
takes with it, and its failures refused before any work."""

from __future__ import annotations

import nncf
from nncf.quantization.advanced_parameters import AdvancedAdaptiveCodebookParameters as NNCFAdaptiveParameters
from nncf.tensor import TensorDataType
import numpy as np
import pytest

import openvino as ov
import optimum_wc
from pairwise import all_pairs, missing_pairs
from parity import compare_ir, compress_and_save
from tiny_models import ARCHITECTURES

# pairwise over the options nncf takes with ADAPTIVE_CODEBOOK; the last three are adaptive_codebook_params
FACTORS = {
    "arch": sorted(ARCHITECTURES),
    "group_size": [-1, 32],
    "ratio": [1.0, 0.6],
    "backup_mode": ["int8_asym", "none", "fp8_e4m3"],
    "awq": [False, True],
    "scale_estimation": [False, True],
    "gptq": [False, True],
    "value_type": ["f8e4m3", "float16", "float32"],
    "num_elements": [16, 8],
    "across_blocks": [False, True],
}
PARAMS = ("value_type", "num_elements", "across_blocks")


def _allowed(row: dict) -> bool:
    """nncf's own limits (across blocks: per channel, weights stored [out, in]), and, to keep the run short, no
    FP8 codebooks with GPTQ or across blocks (nncf converts every candidate through OpenVINO: minutes), and across
    blocks with the default backup mode only."""
    across, value_type = row.get("across_blocks"), row.get("value_type")
    if across and (row.get("group_size", -1) != -1 or row.get("arch") in ("gpt2", "opt")):
        return False  # opt: fc1 and fc2 make one family of different input sizes (refused, below)
    if across and row.get("backup_mode", "int8_asym") != "int8_asym":
        return False  # to keep the run short: the backup layers do not take part in the codebooks
    return not (value_type == "f8e4m3" and (row.get("gptq") or across))


ROWS = all_pairs(FACTORS, _allowed)


def test_rows_cover_every_allowed_pair():
    def possible(pair) -> bool:
        return any(_allowed({**dict(pair), **{k: v for k, v in row.items() if k not in dict(pair)}}) for row in ROWS)

    assert [pair for pair in missing_pairs(FACTORS, ROWS) if possible(pair)] == []
    assert all(_allowed(row) for row in ROWS)


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=lambda row: "-".join(str(v) for v in row.values()))
def test_identical_to_nncf_pairwise(row, tiny_ir, tmp_path):
    from helpers import calibration_items

    row = dict(row)
    xml = tiny_ir(row.pop("arch"))
    params = {k: row.pop(k) for k in PARAMS}
    options = {k: v for k, v in row.items() if v is not False}
    theirs, ours = _arguments(nncf, options, params), _arguments(optimum_wc, options, params)
    reference = compress_and_save(xml, tmp_path / "nncf", "nncf", dataset=nncf.Dataset(calibration_items()), **theirs)
    candidate = compress_and_save(xml, tmp_path / "ours", "optimum_wc", dataset=calibration_items(), **ours)
    report = compare_ir(reference, candidate)
    assert report.identical, report.describe()


# beyond the pairwise rows: f16 weights, a codebook given, more than 16 values (u8 indices)
CASES = [
    ({"arch": "llama-fp16", "awq": True, "scale_estimation": True}, {"value_type": "float16"}),
    ({"arch": "opt", "ratio": 0.5, "backup_mode": "fp8_e4m3", "codebook": 5}, {"num_elements": 5}),
    ({"arch": "qwen2", "ratio": 0.7, "group_size": 64}, {"num_elements": 20}),
]


def _arguments(lib, case: dict, params: dict) -> dict:
    case = dict(case)
    size = case.pop("codebook", None)
    codebook = None if size is None else np.linspace(-1, 1, size, dtype=np.float32)
    if lib is nncf:
        params = {k: TensorDataType(v) if k == "value_type" else v for k, v in params.items()}
        adaptive = NNCFAdaptiveParameters(**params)
    else:
        adaptive = optimum_wc.AdvancedAdaptiveCodebookParameters(**params)
    if "backup_mode" in case:
        case["backup_mode"] = lib.BackupMode(case["backup_mode"])
    advanced = lib.AdvancedCompressionParameters(codebook=codebook, adaptive_codebook_params=adaptive)
    return {**case, "mode": lib.CompressWeightsMode.ADAPTIVE_CODEBOOK, "advanced_parameters": advanced}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_identical_to_nncf(case, tiny_ir, tmp_path):
    from helpers import calibration_items

    options, params = case
    options = dict(options)
    xml = tiny_ir(options.pop("arch", "llama"))
    theirs, ours = _arguments(nncf, options, params), _arguments(optimum_wc, options, params)
    reference = compress_and_save(xml, tmp_path / "nncf", "nncf", dataset=nncf.Dataset(calibration_items()), **theirs)
    candidate = compress_and_save(xml, tmp_path / "ours", "optimum_wc", dataset=calibration_items(), **ours)
    report = compare_ir(reference, candidate)
    assert report.identical, report.describe()


def test_the_codebooks_are_fitted_per_layer_in_fp8(tiny_ir):
    """(Accuracy against CB4 on the trained model: benchmarks/results/accuracy.md.)"""
    from helpers import calibration_items

    model = optimum_wc.compress_weights(
        ov.Core().read_model(tiny_ir("llama")), mode="adaptive_codebook", dataset=calibration_items(), progress=False
    )
    gathers = [op for op in model.get_ops() if op.get_friendly_name().endswith("_nncf_codebook")]
    codebooks = [g.input_value(0).get_node().input_value(0).get_node() for g in gathers]
    values = {tuple(c.get_data().tobytes()) for c in codebooks}
    assert len(codebooks) > 1 and len(values) > len(codebooks) // 2  # a codebook per layer (some may coincide)
    assert all(c.get_output_element_type(0) == ov.Type.f8e4m3 for c in codebooks)


@pytest.mark.parametrize(
    "kwargs, theirs, ours",
    [
        ({"all_layers": True}, KeyError, optimum_wc.ParameterNotSupportedError),  # a 4-bit embedding
        ({"lora_correction": True, "mlp_only": True}, nncf.InternalError, optimum_wc.InternalError),
        ({"group_size": 32, "across": True}, ValueError, optimum_wc.InvalidArgumentError),
        ({"codebook": True, "num_elements": 4}, nncf.ValidationError, optimum_wc.ValidationError),
        ({"no_dataset": True}, TypeError, optimum_wc.UnsupportedArgumentError),
        ({"arch": "opt", "across": True, "mlp_only": True}, ValueError, optimum_wc.UnsupportedModelError),  # fc1, fc2
    ],
    ids=["4-bit-embedding", "lora", "across-blocks-in-groups", "num-elements", "no-dataset", "across-fc1-fc2"],
)
def test_refused_before_any_work(kwargs, theirs, ours, tiny_ir, monkeypatch):
    from helpers import calibration_items

    kwargs = dict(kwargs)
    arch = kwargs.pop("arch", "llama")
    params = {"across_blocks": kwargs.pop("across", False), "num_elements": kwargs.pop("num_elements", 16)}
    codebook = np.linspace(-1, 1, 5, dtype=np.float32) if kwargs.pop("codebook", False) else None
    dataset = None if kwargs.pop("no_dataset", False) else calibration_items()
    # nncf fits the codebooks of the layers it takes before it fails on these: the MLPs alone keep its run short
    mlp_only = [".*self_attn.*", ".*lm_head.*"] if kwargs.pop("mlp_only", False) else None
    xml = tiny_ir(arch)
    advanced = nncf.AdvancedCompressionParameters(
        codebook=codebook, adaptive_codebook_params=NNCFAdaptiveParameters(**params)
    )
    with pytest.raises(theirs):
        nncf.compress_weights(
            ov.Core().read_model(xml),
            mode=nncf.CompressWeightsMode.ADAPTIVE_CODEBOOK,
            advanced_parameters=advanced,
            dataset=None if dataset is None else nncf.Dataset(dataset),
            ignored_scope=None if mlp_only is None else nncf.IgnoredScope(patterns=mlp_only),
            **kwargs,
        )

    def boom(*args, **kwargs):
        raise AssertionError("statistics were collected before the refusal")

    monkeypatch.setattr("optimum_wc.pipeline.data_aware.input_statistics", boom)
    ours_advanced = optimum_wc.AdvancedCompressionParameters(
        codebook=codebook, adaptive_codebook_params=optimum_wc.AdvancedAdaptiveCodebookParameters(**params)
    )
    with pytest.raises(ours):
        optimum_wc.compress_weights(
            ov.Core().read_model(xml),
            mode="adaptive_codebook",
            advanced_parameters=ours_advanced,
            dataset=dataset,
            ignored_scope=None if mlp_only is None else optimum_wc.IgnoredScope(patterns=mlp_only),
            progress=False,
            **kwargs,
        )


@pytest.mark.parametrize("value", ["bf8", "int4", 3])
def test_unknown_value_types_are_named(value):
    with pytest.raises(optimum_wc.InvalidArgumentError, match="value_type"):
        optimum_wc.AdvancedAdaptiveCodebookParameters(value_type=value)


def test_a_weight_of_one_value_is_named(tiny_ir):
    """nncf's histogram has no bin for a weight whose normalized values are all equal (an all-zero weight) and
    fails with an IndexError; here the error names the weight."""
    from helpers import calibration_items

    def zeroed() -> tuple[ov.Model, str]:
        model = ov.Core().read_model(tiny_ir("llama"))
        matmul = next(op for op in model.get_ordered_ops() if op.get_type_name() == "MatMul")
        constant = matmul.input_value(1).get_node()
        while constant.get_type_name() != "Constant":
            constant = constant.input_value(0).get_node()
        zero = ov.op.Constant(np.zeros(constant.get_output_shape(0), dtype=constant.get_data().dtype))
        zero.set_friendly_name(constant.get_friendly_name())
        for target in constant.output(0).get_target_inputs():
            target.replace_source_output(zero.output(0))
        return model, constant.get_friendly_name()

    model, name = zeroed()
    with pytest.raises(IndexError):
        nncf.compress_weights(
            model, mode=nncf.CompressWeightsMode.ADAPTIVE_CODEBOOK, dataset=nncf.Dataset(calibration_items())
        )
    model, name = zeroed()
    with pytest.raises(optimum_wc.UnsupportedModelError, match=f"{name}.*one value.*ignored_scope"):
        optimum_wc.compress_weights(model, mode="adaptive_codebook", dataset=calibration_items(), progress=False)
