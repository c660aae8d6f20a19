"""Diffusion pipelines: every OpenVINO model of a tiny Stable Diffusion (UNet, text encoder, VAE encoder and
decoder) the same as optimum-intel with nncf gives for the same arguments, saved and reloaded with its config
through the task class, and the same image from the same prompt and seed; calibration (optimum-intel's hybrid
quantization of the UNet's activations) refused before the export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import F32, forbid_export, forbid_nncf
import optimum_wc
from parity import compare_ir
from tiny_diffusion import save_tiny_stable_diffusion
from tiny_models import export_uncompressed

pytestmark = pytest.mark.slow  # exports a tiny Stable Diffusion beside optimum-intel with nncf

MODELS = ("unet", "text_encoder", "vae_encoder", "vae_decoder")


@pytest.fixture(scope="module")
def sd_ir(tmp_path_factory):
    from optimum.intel import OVStableDiffusionPipeline as IntelPipeline

    checkpoint = save_tiny_stable_diffusion(tmp_path_factory.mktemp("sd") / "tiny-sd")
    return export_uncompressed(IntelPipeline, checkpoint, tmp_path_factory.mktemp("sd-ir"))


def _image(pipeline) -> np.ndarray:
    import torch

    generator = torch.Generator().manual_seed(0)
    out = pipeline("a small model", num_inference_steps=2, height=64, width=64, generator=generator, output_type="np")
    return np.asarray(out.images)


@pytest.mark.parametrize(
    "arguments",
    [
        {"load_in_8bit": True},
        {
            "quantization_config": {
                "quantization_configs": {"unet": {"bits": 4, "group_size": 32}},
                "default_config": {"bits": 8, "sym": True},
            }
        },
    ],
    ids=["load_in_8bit", "per-model"],
)
def test_the_same_models_and_image_as_optimum_intel(arguments, sd_ir, tmp_path, monkeypatch):
    from optimum.intel import OVStableDiffusionPipeline as IntelPipeline

    theirs = IntelPipeline.from_pretrained(sd_ir, ov_config=F32, **arguments)
    theirs.save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVDiffusionPipeline.from_pretrained(sd_ir, **arguments)  # picks the class the folder names
    assert type(ours) is optimum_wc.OVStableDiffusionPipeline
    ours.save_pretrained(tmp_path / "ours")
    for name in MODELS:
        xml = f"{name}/openvino_model.xml"
        report = compare_ir(tmp_path / "theirs" / xml, tmp_path / "ours" / xml)
        assert report.identical, f"{xml}: {report.describe()}"
    index = json.loads((tmp_path / "ours" / "model_index.json").read_text())
    assert index == json.loads((tmp_path / "theirs" / "model_index.json").read_text())

    reloaded = optimum_wc.OVPipelineForText2Image.from_pretrained(tmp_path / "ours", ov_config=F32)
    assert type(reloaded) is optimum_wc.OVStableDiffusionPipeline
    assert reloaded.quantization_config == ours.quantization_config is not None
    assert np.array_equal(_image(reloaded), _image(theirs))


def test_calibration_is_refused_before_the_export(sd_ir, monkeypatch):
    forbid_export(monkeypatch, "OVStableDiffusionPipeline")
    with pytest.raises(optimum_wc.NotYetSupportedError, match="hybrid"):
        optimum_wc.OVStableDiffusionPipeline.from_pretrained(
            sd_ir, quantization_config={"bits": 8, "dataset": ["a cat", "a dog"]}
        )
