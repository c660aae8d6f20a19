"""OVModelForVisualCausalLM: optimum-intel's split of a config over a VLM's OpenVINO models (the language model
as asked, the others INT8_SYM), every model the same as optimum-intel with nncf gives, saved and reloaded with its
config, and the same tokens generated from an image and a prompt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import F32, forbid_export, forbid_nncf
import optimum_wc
from parity import compare_ir
from tiny_models import export_uncompressed, save_tiny_llava

pytestmark = pytest.mark.slow  # exports a tiny LLaVA beside optimum-intel with nncf

OV_MODELS = (
    "openvino_language_model.xml",
    "openvino_text_embeddings_model.xml",
    "openvino_vision_embeddings_model.xml",
)


@pytest.fixture(scope="module")
def llava_ir(tmp_path_factory):
    """A tiny LLaVA exported once by optimum-intel, uncompressed; its checkpoint (and processor) in ``.checkpoint``."""
    from optimum.intel import OVModelForVisualCausalLM as IntelModel

    checkpoint = save_tiny_llava(tmp_path_factory.mktemp("llava") / "tiny-llava")
    return export_uncompressed(IntelModel, checkpoint, tmp_path_factory.mktemp("llava-ir"))


CASES = {
    "int4": {"quantization_config": {"bits": 4, "group_size": 32, "ratio": 0.8}},
    "load_in_8bit": {"load_in_8bit": True},
    "per-model": {
        "quantization_config": {
            "quantization_configs": {"lm_model": {"bits": 4, "sym": True}, "vision_embeddings_model": {"bits": 8}}
        }
    },
}


@pytest.mark.parametrize("case", CASES)
def test_the_same_models_and_tokens_as_optimum_intel(case, llava_ir, tmp_path, monkeypatch):
    from optimum.intel import OVModelForVisualCausalLM as IntelModel
    from transformers import AutoProcessor

    theirs = IntelModel.from_pretrained(llava_ir, ov_config=F32, **CASES[case])
    theirs.save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForVisualCausalLM.from_pretrained(llava_ir, **CASES[case])
    ours.save_pretrained(tmp_path / "ours")
    for name in OV_MODELS:
        report = compare_ir(tmp_path / "theirs" / name, tmp_path / "ours" / name)
        assert report.identical, f"{name}: {report.describe()}"
    records = json.loads((tmp_path / "ours" / "compressed_weights.json").read_text())
    assert set(records) == ({"lm_model", "vision_embeddings_model"} if case == "per-model" else set(ours.ov_models))

    reloaded = optimum_wc.OVModelForVisualCausalLM.from_pretrained(tmp_path / "ours", ov_config=F32)
    assert reloaded.quantization_config == ours.quantization_config is not None
    processor = AutoProcessor.from_pretrained(llava_ir / "checkpoint")
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    inputs = processor(images=[image], text=["<image> the model of open vino"], return_tensors="pt")
    expected = theirs.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert reloaded.generate(**inputs, max_new_tokens=6, do_sample=False).tolist() == expected.tolist()


def test_calibration_with_images_is_refused_before_the_export(llava_ir, monkeypatch):
    forbid_export(monkeypatch, "OVModelForVisualCausalLM")
    with pytest.raises(optimum_wc.NotYetSupportedError, match="calibration `dataset`"):
        optimum_wc.OVModelForVisualCausalLM.from_pretrained(
            llava_ir, quantization_config={"bits": 4, "ratio": 0.5, "dataset": "wikitext2"}
        )


def test_a_16_bit_checkpoint_is_exported_as_optimum_intel_exports_one_it_compresses(tmp_path, monkeypatch):
    """optimum-intel traces a bf16 VLM it is asked to compress in bf16 (in fp32 only when told nothing follows)."""
    from optimum.intel import OVModelForVisualCausalLM as IntelModel
    import torch

    checkpoint = save_tiny_llava(tmp_path / "tiny-llava-bf16", dtype=torch.bfloat16)
    config = {"bits": 4, "group_size": 32}
    IntelModel.from_pretrained(checkpoint, export=True, quantization_config=config).save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForVisualCausalLM.from_pretrained(checkpoint, export=True, quantization_config=config)
    ours.save_pretrained(tmp_path / "ours")
    for name in OV_MODELS:
        report = compare_ir(tmp_path / "theirs" / name, tmp_path / "ours" / name)
        assert report.identical, f"{name}: {report.describe()}"
