"""OVModelForCausalLM: export + compression by optimum-wc, parity with optimum-intel, save/reload, pipelines."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest
import torch

from helpers import F32, PYDOC_CALIBRATION, REPO, forbid_nncf
import openvino as ov
import optimum_wc
from optimum_wc import OVModelForCausalLM, WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, UnsupportedModelError
from parity import compare_ir
from tiny_models import build_tiny_model

pytestmark = pytest.mark.slow  # exports and compresses real tiny checkpoints, beside optimum-intel with nncf

DEFAULT_MODEL = REPO / "models" / "tiny-llama-pydoc"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """``checkpoint(arch)`` -> a folder with a tiny random Transformers checkpoint."""
    root = tmp_path_factory.mktemp("checkpoints")

    def get(arch: str) -> pathlib.Path:
        folder = root / arch
        if not folder.exists():
            build_tiny_model(arch).save_pretrained(folder)
        return folder

    return get


def _mode(model) -> str:
    return model.model.get_rt_info(["nncf", "weight_compression", "mode"]).value


@pytest.mark.parametrize("arch", ["llama", "gpt2", "opt", "qwen2"])
def test_load_in_4bit_compresses_with_our_core(arch, checkpoint, monkeypatch):
    forbid_nncf(monkeypatch)
    model = OVModelForCausalLM.from_pretrained(checkpoint(arch), export=True, load_in_4bit=True, compile=False)
    assert isinstance(model, OVModelForCausalLM)
    assert _mode(model) == "int4_asym"
    assert model.model.get_rt_info(["nncf", "weight_compression", "group_size"]).value == "128"
    assert model.quantization_config == WeightCompressionConfig(bits=4, sym=False, group_size=128, ratio=1.0)
    assert not model.model.has_rt_info(["runtime_options", "KV_CACHE_PRECISION"])


def test_load_in_8bit_and_automatic_int8_for_large_models(checkpoint, monkeypatch):
    model = OVModelForCausalLM.from_pretrained(checkpoint("gpt2"), export=True, load_in_8bit=True, compile=False)
    assert _mode(model) == "int8_asym"
    plain = OVModelForCausalLM.from_pretrained(checkpoint("gpt2"), export=True, compile=False)
    assert not plain.model.has_rt_info(["nncf"]) and plain.quantization_config is None
    monkeypatch.setattr("optimum_wc.hf.compressed.AUTO_INT8_MIN_WEIGHTS", 1000)  # as if the model had 1e9 weights
    auto = OVModelForCausalLM.from_pretrained(checkpoint("gpt2"), export=True, compile=False)
    assert _mode(auto) == "int8_asym"


@pytest.mark.parametrize(
    "options",
    [
        {"bits": 4, "sym": True, "group_size": 64, "ratio": 0.8},
        {"bits": 4, "dtype": "mxfp4"},
        {"bits": 4, "dtype": "cb4", "ratio": 0.7},
        {"bits": 4, "sym": True, "group_size": 32, "lora_correction": True, "dataset": "pydoc", "num_samples": 6},
    ],
    ids=["int4", "mxfp4", "cb4", "lora"],
)
def test_same_ir_and_tokens_as_optimum_intel_with_nncf(options, checkpoint, tmp_path):
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVWeightQuantizationConfig

    folder = checkpoint("qwen2")
    if options.get("dataset") == "pydoc":  # text, as optimum-intel takes it offline, for a model with a tokenizer
        options = {**options, "dataset": [line for line in PYDOC_CALIBRATION.read_text().splitlines() if line][:6]}
        folder = DEFAULT_MODEL
    intel_config = OVWeightQuantizationConfig(**options)
    theirs = IntelModel.from_pretrained(folder, export=True, quantization_config=intel_config, ov_config=F32)
    ours = OVModelForCausalLM.from_pretrained(folder, export=True, quantization_config=intel_config, ov_config=F32)
    theirs.save_pretrained(tmp_path / "theirs")
    ours.save_pretrained(tmp_path / "ours")
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()
    prompt = torch.tensor([[5, 17, 42, 99, 3]])
    kwargs = {"max_new_tokens": 12, "do_sample": False}
    np.testing.assert_array_equal(ours.generate(prompt, **kwargs).numpy(), theirs.generate(prompt, **kwargs).numpy())


def test_save_reload_round_trip(tmp_path):
    model = OVModelForCausalLM.from_pretrained(
        DEFAULT_MODEL,
        export=True,
        quantization_config={"mode": "int4_sym", "group_size": 64, "ratio": 0.8},
        ov_config=F32,
    )
    target = tmp_path / "saved"
    model.save_pretrained(target)
    names = {p.name for p in target.iterdir()}
    expected = {
        "openvino_model.xml",
        "openvino_model.bin",
        "config.json",
        "generation_config.json",
        "openvino_config.json",
        "compressed_weights.json",
        "README.md",
        "tokenizer.json",
        "openvino_tokenizer.xml",
    }
    assert expected <= names and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    saved_config = json.loads((target / "openvino_config.json").read_text())["quantization_config"]
    assert WeightCompressionConfig.from_dict(saved_config) == model.quantization_config
    card = (target / "README.md").read_text()
    assert "int4_sym, group size 64" in card and "optimum-wc" in card

    reloaded = OVModelForCausalLM.from_pretrained(target, ov_config=F32)
    assert reloaded.quantization_config == model.quantization_config
    assert _signature(reloaded.model) == _signature(model.model)  # not compressed a second time
    ids = torch.tensor([[1, 200, 300, 400, 500, 600]])
    np.testing.assert_array_equal(reloaded(input_ids=ids).logits.numpy(), model(input_ids=ids).logits.numpy())
    with pytest.raises(UnsupportedModelError, match="already compressed"):
        OVModelForCausalLM.from_pretrained(target, load_in_8bit=True)


def _signature(model: ov.Model) -> list:
    return [(op.get_type_name(), op.get_friendly_name()) for op in model.get_ordered_ops()]


def test_failed_save_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    model = OVModelForCausalLM.from_pretrained(DEFAULT_MODEL, export=True, load_in_8bit=True, compile=False)
    target = tmp_path / "saved"
    model.save_pretrained(target)
    before = {p.name: p.stat().st_size for p in target.iterdir()}

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("optimum_wc.saving.folder.write_model_card", fail)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(target)
    assert {p.name: p.stat().st_size for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]


def test_pipeline_and_generate_with_the_embedded_model():
    from transformers import AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    model = OVModelForCausalLM.from_pretrained(DEFAULT_MODEL, export=True, load_in_4bit=True)
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    text = generator("The dictionary", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    assert text.startswith("The dictionary") and len(text) > len("The dictionary")


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        ({"quantization_config": {"bits": 4, "colour": "red"}}, InvalidArgumentError, "Known keys"),
        ({"load_in_8bit": True, "load_in_4bit": True}, InvalidArgumentError, "only one"),
        ({"quantization_config": {"bits": 8, "ratio": 0.5}}, optimum_wc.UnsupportedArgumentError, "`ratio`"),
        ({"load_in_4bit": "yes"}, optimum_wc.InvalidArgumentTypeError, "load_in_4bit"),
        ({"quantization_config": {"mode": "adaptive_codebook"}}, optimum_wc.UnsupportedArgumentError, "dataset"),
        (
            {"quantization_config": {"bits": 4, "scale_estimation": True}},
            optimum_wc.UnsupportedArgumentError,
            "dataset",
        ),
        (
            {"quantization_config": {"bits": 4, "awq": True, "dataset": "textvqa"}},
            InvalidArgumentError,
            "another kind of data.*auto, wikitext2",
        ),
        ({"load_in_4bit": True, "device_map": "auto"}, InvalidArgumentError, "`device_map`.*memory-mapped"),
        (
            {"offload_folder": "offload", "max_memory": {"cpu": "1GiB"}},
            InvalidArgumentError,
            "`max_memory`, `offload_folder`",
        ),
    ],
)
def test_bad_compression_arguments_fail_before_export(kwargs, error, text, checkpoint, monkeypatch):
    def no_export(*args, **kw):
        raise AssertionError("exported before validating")

    monkeypatch.setattr("optimum.intel.OVModelForCausalLM.from_pretrained", no_export)
    with pytest.raises(error, match=text):
        OVModelForCausalLM.from_pretrained(checkpoint("gpt2"), export=True, **kwargs)


def test_unknown_model_id_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(optimum_wc.ModelNotFoundError, match="no-such-org/no-such-model"):
        OVModelForCausalLM.from_pretrained("no-such-org/no-such-model", export=True)
    with pytest.raises((OSError, ValueError)):
        OVModelForCausalLM.from_pretrained(tmp_path / "nothing-here", export=True, local_files_only=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises((OSError, ValueError)):
        OVModelForCausalLM.from_pretrained(tmp_path / "empty", export=True, local_files_only=True)


def test_model_types_with_their_own_optimum_intel_class_get_ours_too(tmp_path):
    from optimum.intel.openvino.modeling_decoder import OVPhi3ForCausalLM
    from transformers import AutoModelForCausalLM, Phi3Config

    config = Phi3Config(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "phi3")
    model = OVModelForCausalLM.from_pretrained(tmp_path / "phi3", export=True, quantization_config={"bits": 8})
    assert isinstance(model, OVModelForCausalLM) and isinstance(model, OVPhi3ForCausalLM)
    assert _mode(model) == "int8_asym"
    assert model.generate(torch.tensor([[3, 4, 5]]), max_new_tokens=3, do_sample=False).shape == (1, 6)


def test_a_model_type_optimum_intel_cannot_export_is_a_clear_error(tmp_path):
    from transformers import ViTConfig, ViTModel

    ViTModel(
        ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path / "vit")
    with pytest.raises((ValueError, KeyError, OSError)) as info:
        OVModelForCausalLM.from_pretrained(tmp_path / "vit", export=True, load_in_8bit=True)
    assert "vit" in str(info.value).lower()


def test_saved_folder_runs_in_openvino_genai(tmp_path):
    import openvino_genai
    from transformers import AutoTokenizer

    model = OVModelForCausalLM.from_pretrained(DEFAULT_MODEL, export=True, load_in_4bit=True)  # default CPU hints
    model.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "openvino_detokenizer.xml").is_file()
    pipe = openvino_genai.LLMPipeline(str(tmp_path / "saved"), "CPU")
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens, config.do_sample = 10, False
    text = pipe.generate("The dictionary", config)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "saved")
    ids = model.generate(**tokenizer("The dictionary", return_tensors="pt"), max_new_tokens=10, do_sample=False)
    assert text and tokenizer.decode(ids[0], skip_special_tokens=True) == "The dictionary" + text


def test_save_pretrained_checks_push_arguments_before_saving(tmp_path):
    model = OVModelForCausalLM.from_pretrained(DEFAULT_MODEL, export=True, load_in_8bit=True, compile=False)
    with pytest.raises(InvalidArgumentError, match="repository_id"):
        model.save_pretrained(tmp_path / "a", push_to_hub=True)
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="repo_id"):
        model.save_pretrained(tmp_path / "a", repo_id="user/x")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    "algorithms",
    [
        {"ratio": 0.5, "sensitivity_metric": "hessian_input_activation"},
        {"quant_method": "awq", "scale_estimation": True, "group_size": 64},
        {"gptq": True, "scale_estimation": True, "group_size": 64},
    ],
    ids=["hessian-metric", "awq-se", "gptq-se"],
)
def test_text_calibration_gives_the_same_model_as_optimum_intel_with_nncf(algorithms, tmp_path):
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVWeightQuantizationConfig

    texts = [line for line in PYDOC_CALIBRATION.read_text().splitlines() if line][:12]
    options = {
        "bits": 4,
        "sym": True,
        "dataset": texts,
        "tokenizer": str(DEFAULT_MODEL),
        "num_samples": 12,
        **algorithms,
    }
    theirs = IntelModel.from_pretrained(
        DEFAULT_MODEL, export=True, quantization_config=OVWeightQuantizationConfig(**options)
    )
    ours = OVModelForCausalLM.from_pretrained(DEFAULT_MODEL, export=True, quantization_config=options, compile=False)
    theirs.save_pretrained(tmp_path / "theirs")
    ours.save_pretrained(tmp_path / "ours")
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()
    assert ours.quantization_config.dataset == texts


def _calibration_lines(count: int) -> list[str]:
    text = PYDOC_CALIBRATION.read_text()
    return [line for line in text.splitlines() if line.strip()][:count]


@pytest.mark.parametrize(
    "dataset, tokenizer, text",
    [
        ("lines", "model", r"tokenizer` does not match the model: .* token id \d+, .* vocabulary has 512"),
        ("long", "tiny", r"has \d+ tokens, more than the model's context of \d+"),
        ("empty", "tiny", "sample 0 of the `dataset` has no token"),  # a list is taken as given, as optimum-intel
        ("offline-hub", "tiny", "Pass local data instead"),
    ],
    ids=["tokenizer-mismatch", "longer-than-context", "empty", "hub-name-offline"],
)
def test_bad_calibration_data_fails_before_any_weight_is_touched(dataset, tokenizer, text, checkpoint, monkeypatch):
    """The tiny checkpoint has a 512-token vocabulary; the embedded model's tokenizer has 8192 tokens."""
    import datasets

    from optimum_wc.hf import compressed
    from tiny_models import MAX_POSITIONS

    class ByteTokenizer:
        """One token per byte (ids < 256), for the tiny checkpoint."""

        def __call__(self, text, return_tensors=None):
            ids = torch.tensor([list(text.encode("utf-8"))])
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def touched(*args, **kwargs):
        raise AssertionError("compression started")

    monkeypatch.setattr(compressed, "compress_model", touched)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    if tokenizer == "tiny":
        monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", lambda *a, **k: ByteTokenizer())
    sources = {
        "lines": _calibration_lines(4),
        "long": ["x" * (MAX_POSITIONS + 1)],
        "empty": ["", "   "],
        "offline-hub": "wikitext2",
    }
    config = {
        "bits": 4,
        "sym": True,
        "group_size": 16,
        "awq": True,
        "dataset": sources[dataset],
        "tokenizer": str(DEFAULT_MODEL),
        "num_samples": 4,
    }
    with pytest.raises(InvalidArgumentError, match=text):
        OVModelForCausalLM.from_pretrained(checkpoint("llama"), export=True, quantization_config=config, compile=False)


@pytest.mark.parametrize("damaged", ["model.safetensors", "config.json", "openvino_config.json"])
def test_a_damaged_checkpoint_file_is_named_before_any_export(damaged, tmp_path, monkeypatch):
    """A truncated download surfaced as a header error of safetensors or a JSON error, naming no file."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, folder)
    target = folder / damaged
    if damaged == "openvino_config.json":
        target.write_text('{"library": "optimum-wc", "quantization_config": ')
    else:
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 3])
    monkeypatch.setattr("optimum.exporters.openvino.main_export", lambda *a, **k: pytest.fail("exported"))
    with pytest.raises(optimum_wc.CorruptModelError, match=re.escape(str(target))):
        OVModelForCausalLM.from_pretrained(folder, export=True, load_in_4bit=True)
