"""OVModelForFeatureExtraction: the same IR as optimum-intel with nncf for the same arguments, saved and reloaded
with its config, and the same embeddings from the ``feature-extraction`` pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import F32, forbid_export, forbid_nncf
import optimum_wc
from parity import compare_ir
from tiny_models import save_tiny_bert

pytestmark = pytest.mark.slow  # exports a tiny BERT beside optimum-intel with nncf


@pytest.fixture(scope="module")
def bert_checkpoint(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


CASES = {
    "load_in_8bit": {"load_in_8bit": True},
    "int4-sym": {"quantization_config": {"bits": 4, "sym": True, "group_size": 32, "ratio": 0.8}},
    "bits-4-default": {"quantization_config": {"bits": 4}},
}


@pytest.mark.parametrize("case", CASES)
def test_the_same_model_and_embeddings_as_optimum_intel(case, bert_checkpoint, tmp_path, monkeypatch):
    from optimum.intel import OVModelForFeatureExtraction as IntelModel
    from transformers import AutoTokenizer, pipeline

    theirs = IntelModel.from_pretrained(bert_checkpoint, export=True, ov_config=F32, **CASES[case])
    theirs.save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForFeatureExtraction.from_pretrained(bert_checkpoint, export=True, **CASES[case])
    ours.save_pretrained(tmp_path / "ours")
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()

    reloaded = optimum_wc.OVModelForFeatureExtraction.from_pretrained(tmp_path / "ours", ov_config=F32)
    assert reloaded.quantization_config == ours.quantization_config is not None
    assert "OVModelForFeatureExtraction.from_pretrained" in (tmp_path / "ours" / "README.md").read_text()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "ours")
    text = "the model is a small text embedding model of open vino"
    expected = pipeline("feature-extraction", model=theirs, tokenizer=tokenizer)(text)
    got = pipeline("feature-extraction", model=reloaded, tokenizer=tokenizer)(text)
    assert np.array_equal(np.asarray(got), np.asarray(expected))


def test_hub_calibration_recipes_are_refused_before_the_export(bert_checkpoint, monkeypatch):
    forbid_export(monkeypatch, "OVModelForFeatureExtraction")
    with pytest.raises(optimum_wc.NotYetSupportedError, match="list of strings"):
        optimum_wc.OVModelForFeatureExtraction.from_pretrained(
            bert_checkpoint, export=True, quantization_config={"bits": 4, "ratio": 0.5, "dataset": "wikitext2"}
        )


WORDS = "the a model weights compress open vino text embedding small is of".split()
# texts of 70 words (the tiny BERT takes 64 positions), and one short text that optimum-intel skips
TEXTS = [" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(70)) for i in range(5)]
TEXTS.insert(2, "a small model")


@pytest.mark.parametrize(
    "extra",
    [{"ratio": 0.6}, {"ratio": 0.8, "scale_estimation": True, "num_samples": 3}],
    ids=["mixed-precision", "scale-estimation"],
)
def test_calibration_text_gives_optimum_intels_model(extra, bert_checkpoint, tmp_path, monkeypatch):
    from optimum.intel import OVModelForFeatureExtraction as IntelModel

    config = {"bits": 4, "sym": True, "group_size": 32, "dataset": TEXTS, **extra}
    theirs = IntelModel.from_pretrained(bert_checkpoint, export=True, quantization_config=config)
    theirs.save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForFeatureExtraction.from_pretrained(
        bert_checkpoint, export=True, quantization_config=config
    )
    ours.save_pretrained(tmp_path / "ours")
    report = compare_ir(tmp_path / "theirs" / "openvino_model.xml", tmp_path / "ours" / "openvino_model.xml")
    assert report.identical, report.describe()
