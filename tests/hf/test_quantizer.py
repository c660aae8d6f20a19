"""OVQuantizer: optimum-intel's quantizer API for weight compression, the same model as optimum-intel with nncf,
and what it does beyond weight compression refused before any work."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import F32, forbid_nncf
import optimum_wc
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from parity import compare_ir
from tiny_models import build_tiny_model

pytestmark = pytest.mark.slow  # loads and compresses tiny exported models beside optimum-intel with nncf


@pytest.fixture(scope="module")
def fp32_ir(tmp_path_factory):
    """A tiny Llama exported once to an FP32 IR folder (each test loads fresh models from it)."""
    from optimum.intel import OVModelForCausalLM as IntelModel

    checkpoint = tmp_path_factory.mktemp("quantizer") / "checkpoint"
    build_tiny_model("llama").save_pretrained(checkpoint)
    folder = checkpoint.parent / "fp32"
    IntelModel.from_pretrained(checkpoint, export=True, compile=False).save_pretrained(folder)
    return folder


def _items(model, count: int = 4) -> list[dict]:
    import torch

    generator = torch.Generator().manual_seed(0)
    return [model.prepare_inputs(input_ids=torch.randint(3, 500, (1, 12), generator=generator)) for _ in range(count)]


CASES = {
    "int4": ({"bits": 4, "sym": True, "group_size": 32, "ratio": 0.8}, {}, False),
    "awq-inputs": ({"bits": 4, "quant_method": "awq", "ratio": 0.8}, {}, True),
    "override": ({"bits": 4}, {"group_size": 64, "all_layers": True}, False),
    "no-config": (None, {}, False),
    "int8-ignores-inputs": ({"bits": 8}, {}, True),
}


@pytest.mark.parametrize("case", CASES)
def test_the_same_model_as_optimum_intels_quantizer(case, fp32_ir, tmp_path, monkeypatch):
    import nncf
    from optimum.intel import OVConfig as IntelOVConfig
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVQuantizer as IntelQuantizer
    from optimum.intel import OVWeightQuantizationConfig

    options, overrides, with_inputs = CASES[case]
    theirs = IntelModel.from_pretrained(fp32_ir, compile=False, ov_config=F32)
    intel_config = None if options is None else IntelOVConfig(quantization_config=OVWeightQuantizationConfig(**options))
    inputs = nncf.Dataset(_items(theirs)) if with_inputs else None
    IntelQuantizer.from_pretrained(theirs).quantize(
        calibration_dataset=inputs, ov_config=intel_config, save_directory=tmp_path / "theirs", **overrides
    )
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForCausalLM.from_pretrained(fp32_ir, compile=False, ov_config=F32)
    config = (
        None
        if options is None
        else optimum_wc.OVConfig(quantization_config=optimum_wc.OVWeightQuantizationConfig(**options))
    )
    inputs = _items(ours) if with_inputs else None
    optimum_wc.OVQuantizer.from_pretrained(ours).quantize(
        calibration_dataset=inputs, ov_config=config, save_directory=tmp_path / "ours", **overrides
    )
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()
    reloaded = optimum_wc.OVModelForCausalLM.from_pretrained(tmp_path / "ours", compile=False)
    assert reloaded.quantization_config == ours.quantization_config


def _token_rows(count: int = 12) -> list[dict]:
    """Tokenized text of 4-13 tokens, with a text column that the model does not take."""
    rng = np.random.default_rng(5)
    lengths = [int(n) for n in rng.integers(4, 14, count)]
    return [{"input_ids": rng.integers(3, 500, n).tolist(), "attention_mask": [1] * n} for n in lengths]


TOKENIZED = {  # config, form of the tokenized text, quantizer arguments
    "dataset-awq-se": ({"bits": 4, "quant_method": "awq", "scale_estimation": True, "num_samples": 5}, "dataset", {}),
    "list-awq-mixed-seed": (
        {
            "bits": 4,
            "sym": True,
            "ratio": 0.6,
            "sensitivity_metric": "mean_activation_magnitude",
            "quant_method": "awq",
            "num_samples": 6,
        },
        "list",
        {"seed": 7},
    ),
}


@pytest.mark.parametrize("case", TOKENIZED)
def test_tokenized_text_gives_optimum_intels_model(case, fp32_ir, tmp_path, monkeypatch):
    """optimum-intel records what generate() gives the model for each row, in a seeded random order."""
    from datasets import Dataset
    from optimum.intel import OVConfig as IntelOVConfig
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVQuantizer as IntelQuantizer
    from optimum.intel import OVWeightQuantizationConfig

    options, form, arguments = TOKENIZED[case]

    def rows():
        if form == "list":
            return _token_rows()
        return Dataset.from_list([{**row, "text": "unused"} for row in _token_rows()])

    theirs = IntelModel.from_pretrained(fp32_ir, compile=False, ov_config=F32)
    IntelQuantizer.from_pretrained(theirs, **arguments).quantize(
        calibration_dataset=rows(),
        ov_config=IntelOVConfig(quantization_config=OVWeightQuantizationConfig(**options)),
        save_directory=tmp_path / "theirs",
    )
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForCausalLM.from_pretrained(fp32_ir, compile=False, ov_config=F32)
    optimum_wc.OVQuantizer.from_pretrained(ours, **arguments).quantize(
        calibration_dataset=rows(),
        ov_config=optimum_wc.OVConfig(quantization_config=optimum_wc.OVWeightQuantizationConfig(**options)),
        save_directory=tmp_path / "ours",
    )
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()


def test_gptq_on_tokenized_text_compresses_where_nncf_fails(fp32_ir, tmp_path):
    """The recorded inputs ask nncf to reset the state before each; nncf's GPTQ runs a model without state and
    fails on that. Here GPTQ takes them, its layer inputs computed without state, as nncf's are."""
    from optimum.intel import OVConfig as IntelOVConfig
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVQuantizer as IntelQuantizer
    from optimum.intel import OVWeightQuantizationConfig

    options = {"bits": 4, "sym": True, "gptq": True, "num_samples": 4}
    theirs = IntelModel.from_pretrained(fp32_ir, compile=False)
    with pytest.raises(RuntimeError, match="Cannot reset state of a stateless model"):
        IntelQuantizer(theirs).quantize(
            calibration_dataset=_token_rows(),
            ov_config=IntelOVConfig(quantization_config=OVWeightQuantizationConfig(**options)),
        )
    ours = optimum_wc.OVModelForCausalLM.from_pretrained(fp32_ir, compile=False)
    config = optimum_wc.OVConfig(quantization_config=optimum_wc.OVWeightQuantizationConfig(**options))
    optimum_wc.OVQuantizer(ours).quantize(calibration_dataset=_token_rows(), ov_config=config)
    assert ours.model.get_rt_info(["nncf", "weight_compression", "gptq"]).astype(str) == "True"


def test_optimum_intels_own_model_and_config_objects_are_taken(fp32_ir, tmp_path, monkeypatch):
    from optimum.intel import OVConfig as IntelOVConfig
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVWeightQuantizationConfig

    forbid_nncf(monkeypatch)
    model = IntelModel.from_pretrained(fp32_ir, compile=False)
    config = IntelOVConfig(quantization_config=OVWeightQuantizationConfig(bits=4, sym=True))
    optimum_wc.OVQuantizer(model).quantize(ov_config=config)
    assert isinstance(model, optimum_wc.OVModelForCausalLM) and model.quantization_config.mode.value == "int4_sym"


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        ({"immediate_save": True}, InvalidArgumentError, "save_directory"),
        ({"calibration_dataset": "inputs"}, NotYetSupportedError, "static quantization"),
        ({"config": {"bits": 4}, "calibration_dataset": ["some text"]}, InvalidArgumentError, "input dicts"),
        ({"config": {"bits": 4}, "calibration_dataset": []}, InvalidArgumentError, "non-empty"),
        ({"config": {"bits": 4}, "batch_size": 0}, InvalidArgumentError, "batch_size"),
        ({"config": {"bits": 4}, "colour": "red"}, InvalidArgumentError, "colour"),
        ({"config": "static"}, NotYetSupportedError, "OVQuantizationConfig"),
        ({"ov_config": {"bits": 4}}, optimum_wc.InvalidArgumentTypeError, "OVConfig"),
    ],
    ids=[
        "immediate-save",
        "static",
        "text-inputs",
        "empty-inputs",
        "batch-size",
        "unknown-kwarg",
        "static-config",
        "not-ovconfig",
    ],
)
def test_beyond_weight_compression_is_refused_before_any_work(kwargs, error, text, fp32_ir, monkeypatch):
    from optimum.intel import OVQuantizationConfig

    def boom(*args, **kwargs):
        raise AssertionError("compressed before the refusal")

    model = optimum_wc.OVModelForCausalLM.from_pretrained(fp32_ir, compile=False)
    monkeypatch.setattr(optimum_wc.OVModelForCausalLM, "compress", boom)
    kwargs = dict(kwargs)
    wanted = kwargs.pop("config", None)
    if wanted == "static":
        wanted = OVQuantizationConfig()
    if kwargs.get("calibration_dataset") == "inputs":
        kwargs["calibration_dataset"] = _items(model)
    if "ov_config" not in kwargs and wanted is not None:
        kwargs["ov_config"] = optimum_wc.OVConfig(quantization_config=wanted)
    with pytest.raises(error, match=text):
        optimum_wc.OVQuantizer.from_pretrained(model).quantize(**kwargs)


def test_a_config_given_in_place_of_input_info_is_named():
    """optimum-intel's OVConfig takes ``input_info`` first; a config there would ask for static quantization."""
    with pytest.raises(InvalidArgumentError, match="quantization_config="):
        optimum_wc.OVConfig(optimum_wc.OVWeightQuantizationConfig(bits=4))


def test_what_is_not_a_model_of_ours_or_optimum_intels_is_refused_by_name():
    with pytest.raises(NotYetSupportedError, match="OVModelForSeq2SeqLM"):
        optimum_wc.OVQuantizer(object())
