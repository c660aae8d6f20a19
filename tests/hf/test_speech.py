"""OVModelForSpeechSeq2Seq: for the same arguments, the Whisper encoder and decoder the same as optimum-intel with
nncf gives, saved and reloaded with its config, and the same tokens generated from the same audio."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import F32, forbid_nncf
import optimum_wc
from parity import compare_ir
from tiny_models import export_uncompressed, save_tiny_whisper

pytestmark = pytest.mark.slow  # exports a tiny Whisper beside optimum-intel with nncf


@pytest.fixture(scope="module")
def whisper_ir(tmp_path_factory):
    """A tiny Whisper exported once by optimum-intel, uncompressed; its checkpoint in ``checkpoint``."""
    from optimum.intel import OVModelForSpeechSeq2Seq as IntelModel

    checkpoint = save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
    return export_uncompressed(IntelModel, checkpoint, tmp_path_factory.mktemp("whisper-ir"))


@pytest.mark.parametrize(
    "arguments",
    [
        {"quantization_config": {"bits": 4, "group_size": 32, "ratio": 0.9}},
        {"quantization_config": {"quantization_configs": {"decoder": {"bits": 4, "sym": True, "group_size": 64}}}},
    ],
    ids=["int4", "decoder-only"],
)
def test_the_same_models_and_tokens_as_optimum_intel(arguments, whisper_ir, tmp_path, monkeypatch):
    from optimum.intel import OVModelForSpeechSeq2Seq as IntelModel
    from transformers import WhisperFeatureExtractor

    theirs = IntelModel.from_pretrained(whisper_ir, ov_config=F32, **arguments)
    theirs.save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForSpeechSeq2Seq.from_pretrained(whisper_ir, **arguments)
    ours.save_pretrained(tmp_path / "ours")
    for name in ("openvino_encoder_model.xml", "openvino_decoder_model.xml"):
        report = compare_ir(tmp_path / "theirs" / name, tmp_path / "ours" / name)
        assert report.identical, f"{name}: {report.describe()}"

    reloaded = optimum_wc.OVModelForSpeechSeq2Seq.from_pretrained(tmp_path / "ours", ov_config=F32)
    assert reloaded.quantization_config == ours.quantization_config is not None
    audio = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    features = WhisperFeatureExtractor.from_pretrained(whisper_ir / "checkpoint")(
        audio, sampling_rate=16000, return_tensors="pt"
    ).input_features
    expected = theirs.generate(features, max_new_tokens=6, do_sample=False)
    assert reloaded.generate(features, max_new_tokens=6, do_sample=False).tolist() == expected.tolist()
