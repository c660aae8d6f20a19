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
from parity import compare_ir, compress_and_save

CASES = [
    pytest.param(({}, {}), marks=pytest.mark.slow),  # f8e4m3 codebooks of 16 values per layer
    ({"group_size": 32, "ratio": 0.6}, {}),
    ({}, {"value_type": "float16", "num_elements": 8}),
    pytest.param(({"arch": "gpt2"}, {}), marks=pytest.mark.slow),  # weights stored [in, out]
    ({"arch": "llama-fp16", "awq": True, "scale_estimation": True}, {"value_type": "float16"}),
    ({"arch": "qwen2", "gptq": True}, {"value_type": "float32"}),  # one codebook per layer of a q/k/v batch
    ({"arch": "opt", "ratio": 0.5, "backup_mode": "fp8_e4m3", "codebook": 5}, {"num_elements": 5}),
    ({"arch": "qwen2", "ratio": 0.7, "group_size": 64}, {"num_elements": 20}),  # u8 indices
    pytest.param(({}, {"across_blocks": True, "value_type": "float16"}), marks=pytest.mark.slow),
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
        ({"lora_correction": True}, nncf.InternalError, optimum_wc.InternalError),
        ({"group_size": 32, "across": True}, ValueError, optimum_wc.InvalidArgumentError),
        ({"codebook": True, "num_elements": 4}, nncf.ValidationError, optimum_wc.ValidationError),
        ({"no_dataset": True}, TypeError, optimum_wc.UnsupportedArgumentError),
    ],
    ids=["4-bit-embedding", "lora", "across-blocks-in-groups", "num-elements", "no-dataset"],
)
def test_refused_before_any_work(kwargs, theirs, ours, tiny_ir, monkeypatch):
    from helpers import calibration_items

    kwargs = dict(kwargs)
    params = {"across_blocks": kwargs.pop("across", False), "num_elements": kwargs.pop("num_elements", 16)}
    codebook = np.linspace(-1, 1, 5, dtype=np.float32) if kwargs.pop("codebook", False) else None
    dataset = None if kwargs.pop("no_dataset", False) else calibration_items()
    xml = tiny_ir("llama")
    advanced = nncf.AdvancedCompressionParameters(
        codebook=codebook, adaptive_codebook_params=NNCFAdaptiveParameters(**params)
    )
    with pytest.raises(theirs):
        nncf.compress_weights(
            ov.Core().read_model(xml),
            mode=nncf.CompressWeightsMode.ADAPTIVE_CODEBOOK,
            advanced_parameters=advanced,
            dataset=None if dataset is None else nncf.Dataset(dataset),
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
            progress=False,
            **kwargs,
        )


@pytest.mark.parametrize("value", ["bf8", "int4", 3])
def test_unknown_value_types_are_named(value):
    with pytest.raises(optimum_wc.InvalidArgumentError, match="value_type"):
        optimum_wc.AdvancedAdaptiveCodebookParameters(value_type=value)
