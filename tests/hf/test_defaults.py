"""optimum-intel's per-model default configs: found for the same ids, by the same lookup, applied to the same
arguments ({"bits": 4}, {"bits": 8}, load_in_4bit, a bare --weight-format int4/int8), and the same model comes out."""

from __future__ import annotations

import json
import logging
import pathlib
import shutil

import pytest

from helpers import F32
from optimum_wc import OVModelForCausalLM, WeightCompressionConfig
from optimum_wc.cli import build_parser, config_from_args
from optimum_wc.config.datasets import DATASET_NAMES
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from optimum_wc.hf.defaults import GENERIC, default_config, resolve_quantization_config, with_default_ignored_scope
from parity import compare_ir
from tiny_models import build_tiny_model

ROOTS = ("nncf", "runtime_options")  # the compression's record, and dq_group_size where an entry sets it


def _table() -> dict[str, dict]:
    from optimum.intel.openvino.configuration import _DEFAULT_4BIT_WQ_CONFIGS, _DEFAULT_8BIT_WQ_CONFIGS

    return {
        **{(model, 4): entry for model, entry in _DEFAULT_4BIT_WQ_CONFIGS.items()},
        **{(model, 8): entry for model, entry in _DEFAULT_8BIT_WQ_CONFIGS.items()},
    }


@pytest.mark.parametrize("key", list(_table()), ids=lambda key: f"{key[0]}-int{key[1]}")
def test_every_entry_resolves_to_what_optimum_intel_hands_nncf_or_is_refused(key):
    from optimum.intel import OVWeightQuantizationConfig

    model, bits = key
    entry = _table()[key]
    if "quantization_config1" in entry:  # gpt-oss' two passes over one model
        with pytest.raises(NotYetSupportedError, match=model):
            default_config(model, bits)
        return
    per_model = entry.get("quantization_configs", {"model": entry})
    if any(each.get("dataset") not in (None, *DATASET_NAMES) for each in per_model.values()):
        with pytest.raises(InvalidArgumentError, match="dataset") as refused:  # image-text sets (VLMs): not ours yet
            default_config(model, bits)
        assert model in str(refused.value) and "quantization_config" in str(refused.value)  # whose setting it is
        return
    ours = default_config(model, bits)
    if "quantization_configs" in entry:
        assert list(ours.quantization_configs) == list(per_model) and ours.default_config is None
    for name, each in per_model.items():
        mine = ours.quantization_configs[name] if "quantization_configs" in entry else ours
        theirs = OVWeightQuantizationConfig(**each)
        handed = {k: v for k, v in theirs.to_nncf_dict().items() if k != "weight_only"}  # popped before nncf
        resolved = CompressionSettings.from_arguments(**{**handed, "dataset": mine.dataset})
        assert CompressionSettings.from_arguments(**mine.to_compress_kwargs()) == resolved
        assert mine.dq_group_size == each.get("dq_group_size")


def test_lookup_by_id_config_name_and_folder_name(tmp_path):
    llama2 = {"sym": True, "group_size": 128, "ratio": 0.6}
    folder = tmp_path / "Llama-2-7b-hf"
    folder.mkdir()
    named = tmp_path / "renamed"
    named.mkdir()
    (named / "config.json").write_text(json.dumps({"_name_or_path": "meta-llama/Llama-2-7b-hf"}))
    for source in ("meta-llama/Llama-2-7b-hf", str(folder), str(named)):
        config = default_config(source, 4)
        assert (config.sym, config.group_size, config.ratio) == tuple(llama2.values())
        assert resolve_quantization_config(source, None, True, None) == config  # load_in_4bit: the same default
    assert default_config(str(tmp_path / "unknown"), 4) == WeightCompressionConfig(**GENERIC[4])
    assert default_config("unknown/model", 8) == WeightCompressionConfig(bits=8)
    eight = resolve_quantization_config("meta-llama/Llama-2-7b-hf", True, None, None)
    assert eight == WeightCompressionConfig(bits=8)  # optimum-intel's load_in_8bit takes no entry


def test_a_config_of_ones_own_is_kept_and_the_entry_recommended(caplog):
    caplog.set_level(logging.INFO)
    config = resolve_quantization_config("meta-llama/Llama-2-7b-hf", None, None, {"bits": 4, "group_size": 32})
    assert (config.group_size, config.ratio, config.sym) == (32, 1.0, False)
    assert "recommends" in caplog.text and "0.6" in caplog.text


def test_default_ignored_scopes_are_added_to_any_config():
    config = WeightCompressionConfig(bits=4, ignored_scope={"names": ["lm_head"]})
    merged = with_default_ignored_scope("Qwen/Qwen3-Embedding-0.6B", config)
    assert merged.ignored_scope.names[0] == "lm_head" and len(merged.ignored_scope.names) == 3
    assert merged.ignored_scope.validate is False and config.ignored_scope.names == ["lm_head"]
    assert with_default_ignored_scope("meta-llama/Llama-2-7b-hf", config) is config


def test_bare_weight_format_takes_the_entry_on_the_command_line(tmp_path):
    def config(*flags: str) -> WeightCompressionConfig:
        return config_from_args(build_parser().parse_args(["export", "Qwen/Qwen2.5-Coder-3B-Instruct", "out", *flags]))

    assert config("--weight-format", "int8").dq_group_size == 128
    four = config("--weight-format", "int4", "--quantization-statistics-path", str(tmp_path))
    assert (four.group_size, four.scale_estimation, four.dataset) == (64, True, "wikitext2")
    assert four.statistics_path == str(tmp_path) and four.tokenizer == "Qwen/Qwen2.5-Coder-3B-Instruct"
    flagged = config("--weight-format", "int4", "--sym")  # a flag: optimum-cli's generic default, not the entry
    assert (flagged.sym, flagged.scale_estimation, flagged.dataset) == (True, None, None)
    per_model = ["export", "meta-models/Muse-Glimmer-30B", "out", "--weight-format", "int4"]
    with pytest.raises(NotYetSupportedError, match="one config per OpenVINO model"):  # one IR: no per-model entry
        config_from_args(build_parser().parse_args(per_model))


def test_per_model_default_scopes_are_looked_up_by_the_models_name():
    config = WeightCompressionConfig(bits=4)
    assert with_default_ignored_scope("microsoft/speecht5_tts", config, "decoder").ignored_scope is not None
    assert with_default_ignored_scope("microsoft/speecht5_tts", config, "encoder") is config


@pytest.mark.parametrize(
    "model_id",
    ["databricks/dolly-v2-3b", "meta-models/Muse-Glimmer-30B", "openai/gpt-oss-20b"],
    ids=["hub-dataset-offline", "per-model-configs-of-a-vlm", "two-pass"],
)
def test_entries_we_cannot_apply_fail_before_the_export(model_id, tmp_path, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    def no_export(*args, **kwargs):
        raise AssertionError("exported before the refusal")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr("optimum.intel.OVModelForCausalLM.from_pretrained", no_export)
    folder = tmp_path / model_id.split("/")[1]
    folder.mkdir()
    with pytest.raises(
        (InvalidArgumentError, NotYetSupportedError), match="Hugging Face Hub|one config per|does not have"
    ):
        OVModelForCausalLM.from_pretrained(folder, export=True, quantization_config={"bits": 4})


@pytest.fixture(scope="module")
def named_ir(tmp_path_factory):
    """``named_ir(model_id, by)`` -> a tiny Llama's FP32 IR folder (exported once) that carries ``model_id``: as the
    folder's name (``by="folder"``) or as ``_name_or_path`` in its config.json (``by="config"``)."""
    from optimum.intel import OVModelForCausalLM as IntelModel

    root = tmp_path_factory.mktemp("named")
    build_tiny_model("llama").save_pretrained(root / "checkpoint")
    IntelModel.from_pretrained(root / "checkpoint", export=True, compile=False).save_pretrained(root / "base")

    def get(model_id: str, by: str) -> pathlib.Path:
        folder = root / by / (model_id.split("/")[1] if by == "folder" else "ir")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(root / "base", folder)
        if by == "config":
            config = json.loads((folder / "config.json").read_text())
            (folder / "config.json").write_text(json.dumps({**config, "_name_or_path": model_id}))
        return folder

    return get


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_id, by, bits",
    [
        ("meta-llama/Llama-2-7b-hf", "folder", 4),  # symmetric, ratio 0.6
        ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "config", 4),  # data-free AWQ, group 64
        ("Qwen/Qwen2.5-Coder-3B-Instruct", "folder", 8),  # dq_group_size in the runtime options
    ],
)
def test_the_same_model_as_optimum_intel(model_id, by, bits, named_ir, tmp_path):
    """(optimum-cli's bare --weight-format int4 on a table id: tests/cli/test_openvino.py.)"""
    from optimum.intel import OVModelForCausalLM as IntelModel

    folder = named_ir(model_id, by)
    theirs = IntelModel.from_pretrained(folder, quantization_config={"bits": bits}, ov_config=F32)
    theirs.save_pretrained(tmp_path / "theirs")
    ours = OVModelForCausalLM.from_pretrained(folder, quantization_config={"bits": bits}, ov_config=F32)
    ours.save_pretrained(tmp_path / "ours")
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml", ROOTS)
    assert report.identical, report.describe()
    assert ours.quantization_config == default_config(str(folder), bits)
