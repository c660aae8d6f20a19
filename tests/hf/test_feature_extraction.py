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


def test_calibration_text_is_refused_before_the_export(bert_checkpoint, monkeypatch):
    forbid_export(monkeypatch, "OVModelForFeatureExtraction")
    with pytest.raises(optimum_wc.NotYetSupportedError, match="calibration `dataset`"):
        optimum_wc.OVModelForFeatureExtraction.from_pretrained(
            bert_checkpoint, export=True, quantization_config={"bits": 4, "ratio": 0.5, "dataset": "wikitext2"}
        )
