"""Calibration datasets by optimum-intel's names (wikitext2, c4, c4-new, gsm8k from the Hub; auto, text the model
writes): the same model as optimum-intel with nncf. The Hub is out of reach here, so ``datasets.load_dataset`` serves
local stand-ins of the three Hub datasets, to optimum-intel and to us alike."""

from __future__ import annotations

import pytest
import torch

from helpers import EMBEDDED, F32, PYDOC_CALIBRATION
from optimum_wc import OVModelForCausalLM, WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError
from parity import compare_ir

pytestmark = pytest.mark.slow  # compresses the embedded model beside optimum-intel with nncf

HUB_IDS = {"Salesforce/wikitext", "allenai/c4", "openai/gsm8k"}


def _stand_in(path: str, *args, **kwargs):
    """A small local copy of the Hub dataset ``path`` (the columns optimum-intel's recipes read)."""
    import datasets

    assert path in HUB_IDS, path
    lines = [line for line in PYDOC_CALIBRATION.read_text().splitlines() if line.strip()]
    if path == "openai/gsm8k":
        return datasets.Dataset.from_dict({"question": lines[::2], "answer": lines[1::2][: len(lines[::2])]})
    if path == "allenai/c4":
        return datasets.Dataset.from_dict({"text": lines})
    return datasets.Dataset.from_dict({"text": ["", *lines[:20], "", *lines[20:]]})  # wikitext's blank lines


@pytest.fixture(scope="module")
def fp32_ir(tmp_path_factory):
    """The embedded model exported once to an FP32 IR folder with its tokenizer (both libraries load it)."""
    from optimum.intel import OVModelForCausalLM as IntelModel
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("datasets") / "fp32"
    IntelModel.from_pretrained(EMBEDDED, export=True, compile=False).save_pretrained(folder)
    AutoTokenizer.from_pretrained(EMBEDDED).save_pretrained(folder)
    return folder


def _lines(count: int) -> list[str]:
    return [line for line in PYDOC_CALIBRATION.read_text().splitlines() if line.strip()][:count]


@pytest.mark.parametrize(
    "dataset",
    ["wikitext2", "c4:seq_len=24", "gsm8k:seq_len=48", "auto:seq_len=16", [" \n", *_lines(4), "\t \n"]],
    ids=["wikitext2", "c4", "gsm8k", "auto", "list-with-blank-texts"],
)
def test_the_same_model_as_optimum_intel(dataset, fp32_ir, tmp_path, monkeypatch):
    import datasets
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVWeightQuantizationConfig

    monkeypatch.setattr(datasets, "load_dataset", _stand_in)
    options = {"bits": 4, "sym": True, "ratio": 0.8, "awq": True, "num_samples": 6, "dataset": dataset}
    torch.manual_seed(0)  # "auto" samples from torch's random state
    intel_config = OVWeightQuantizationConfig(**options)
    theirs = IntelModel.from_pretrained(fp32_ir, quantization_config=intel_config, ov_config=F32)
    torch.manual_seed(0)
    ours = OVModelForCausalLM.from_pretrained(fp32_ir, quantization_config=options, ov_config=F32)
    theirs.save_pretrained(tmp_path / "theirs")
    ours.save_pretrained(tmp_path / "ours")
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()
    assert ours.quantization_config.dataset == dataset


def test_a_model_that_only_repeats_itself_is_named_not_looped_on():
    from optimum_wc.hf.generated import generated_texts

    class Repeats:
        config = type("Config", (), {"vocab_size": 7})()

        def generate(self, ids, do_sample, max_length):
            return torch.cat([ids, torch.zeros((1, max_length - ids.shape[1]), dtype=ids.dtype)], dim=1)

    class Tokenizer:
        def batch_decode(self, ids, skip_special_tokens):
            return ["aaaa" for _ in ids]

    with pytest.raises(InvalidArgumentError, match="repeats itself"):
        generated_texts(Repeats(), Tokenizer(), 4)


def test_names_outside_optimum_intels_are_refused_with_the_list():
    with pytest.raises(InvalidArgumentError, match="auto, wikitext2, c4, c4-new, gsm8k"):
        WeightCompressionConfig(bits=4, dataset="wikitext103")


def test_the_quantizers_seed_and_arguments_draw_the_samples_as_optimum_intels(fp32_ir, tmp_path, monkeypatch):
    """The seed picks the Hub samples (optimum-intel fails on seeds below 42: numpy's seed of seed - 42); an argument
    of quantize() (subset_size) reaches nncf's call, not the drawing of the samples from the config."""
    import datasets
    from optimum.intel import OVConfig as IntelOVConfig
    from optimum.intel import OVModelForCausalLM as IntelModel
    from optimum.intel import OVQuantizer as IntelQuantizer
    from optimum.intel import OVWeightQuantizationConfig

    import optimum_wc

    monkeypatch.setattr(datasets, "load_dataset", _stand_in)
    options = {"bits": 4, "sym": True, "ratio": 0.8, "awq": True, "num_samples": 8, "dataset": "wikitext2"}
    options["tokenizer"] = str(fp32_ir)
    theirs = IntelModel.from_pretrained(fp32_ir, compile=False, ov_config=F32)
    config = IntelOVConfig(quantization_config=OVWeightQuantizationConfig(**options))
    IntelQuantizer(theirs, seed=50).quantize(ov_config=config, save_directory=tmp_path / "theirs", subset_size=5)
    ours = OVModelForCausalLM.from_pretrained(fp32_ir, compile=False, ov_config=F32)
    config = optimum_wc.OVConfig(quantization_config=optimum_wc.OVWeightQuantizationConfig(**options))
    optimum_wc.OVQuantizer(ours, seed=50).quantize(ov_config=config, save_directory=tmp_path / "ours", subset_size=5)
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()
