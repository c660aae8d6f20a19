"""OVModelForVisualCausalLM: optimum-intel's split of a config over a VLM's OpenVINO models (the language model
as asked, the others INT8_SYM), every model the same as optimum-intel with nncf gives, saved and reloaded with its
config, and the same tokens generated from an image and a prompt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import F32, forbid_export, forbid_nncf, save_image_folder
import optimum_wc
from optimum_wc.saving.folder import is_compressed
from parity import compare_ir
from tiny_models import export_uncompressed, save_tiny_llava

pytestmark = pytest.mark.slow  # exports a tiny LLaVA beside optimum-intel with nncf

OV_MODELS = (
    "openvino_language_model.xml",
    "openvino_text_embeddings_model.xml",
    "openvino_vision_embeddings_model.xml",
)


def _same_models(theirs, *ours) -> None:
    """Every OpenVINO model of the VLM saved in each of ``ours`` is the one saved in ``theirs``."""
    for folder in ours:
        for name in OV_MODELS:
            report = compare_ir(theirs / name, folder / name)
            assert report.identical, f"{folder.name}/{name}: {report.describe()}"


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
    _same_models(tmp_path / "theirs", tmp_path / "ours")
    records = json.loads((tmp_path / "ours" / "compressed_weights.json").read_text())
    assert set(records) == ({"lm_model", "vision_embeddings_model"} if case == "per-model" else set(ours.ov_models))

    reloaded = optimum_wc.OVModelForVisualCausalLM.from_pretrained(tmp_path / "ours", ov_config=F32)
    assert reloaded.quantization_config == ours.quantization_config is not None
    processor = AutoProcessor.from_pretrained(llava_ir / "checkpoint")
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    inputs = processor(images=[image], text=["<image> the model of open vino"], return_tensors="pt")
    expected = theirs.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert reloaded.generate(**inputs, max_new_tokens=6, do_sample=False).tolist() == expected.tolist()


DATA_AWARE = {"bits": 4, "group_size": 16, "ratio": 0.8, "scale_estimation": True, "num_samples": 4}


def test_calibration_on_a_local_image_folder_gives_optimum_intels_models(llava_ir, tmp_path, monkeypatch):
    """optimum-intel takes local image-text items through OVQuantizer (a dataset with textvqa's columns); ours
    takes them so too, or the folder by path. The language model is calibrated on them: other items give other
    weights."""
    import datasets
    from optimum.intel import OVConfig, OVQuantizer
    from optimum.intel import OVModelForVisualCausalLM as IntelModel
    from optimum.intel import OVWeightQuantizationConfig as IntelConfig

    folder = save_image_folder(tmp_path / "images", 6)
    processor = str(llava_ir / "checkpoint")
    config = {**DATA_AWARE, "processor": processor, "tokenizer": processor}
    theirs = IntelModel.from_pretrained(llava_ir, ov_config=F32, compile=False)
    rows = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")
    intel_config = IntelConfig(dataset="textvqa", **config)
    OVQuantizer(theirs).quantize(calibration_dataset=rows, ov_config=OVConfig(quantization_config=intel_config))
    theirs.save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForVisualCausalLM.from_pretrained(
        llava_ir, ov_config=F32, quantization_config={**config, "dataset": str(folder)}
    )
    ours.save_pretrained(tmp_path / "ours")
    quantized = optimum_wc.OVModelForVisualCausalLM.from_pretrained(llava_ir, ov_config=F32, compile=False)
    our_config = optimum_wc.OVConfig(
        quantization_config=optimum_wc.OVWeightQuantizationConfig(dataset="textvqa", **config)
    )
    optimum_wc.OVQuantizer(quantized).quantize(
        calibration_dataset=rows, ov_config=our_config, save_directory=tmp_path / "q"
    )
    _same_models(tmp_path / "theirs", tmp_path / "ours", tmp_path / "q")
    reloaded = optimum_wc.OVModelForVisualCausalLM.from_pretrained(tmp_path / "ours", compile=False)
    assert reloaded.quantization_config == ours.quantization_config
    assert reloaded.quantization_config.processor == processor

    other = optimum_wc.OVModelForVisualCausalLM.from_pretrained(
        llava_ir, ov_config=F32, quantization_config={**config, "dataset": str(folder), "num_samples": 2}
    )
    other.save_pretrained(tmp_path / "other")
    assert not compare_ir(tmp_path / "theirs" / OV_MODELS[0], tmp_path / "other" / OV_MODELS[0]).identical


def test_textvqa_is_drawn_from_the_hub_as_optimum_intel_draws_it(llava_ir, tmp_path, monkeypatch):
    """``dataset="textvqa"``: the split downloaded whole and shuffled with the quantizer's seed (the Hub is out of
    reach here, so ``datasets.load_dataset`` serves a local image folder for its id), and the processor and
    tokenizer taken from the model's folder when the config names none."""
    import datasets
    from optimum.intel import OVModelForVisualCausalLM as IntelModel
    from transformers import AutoProcessor

    rows = datasets.load_dataset("imagefolder", data_dir=str(save_image_folder(tmp_path / "images", 6)), split="train")
    real = datasets.load_dataset
    asked = []

    def stand_in(path, *args, **kwargs):
        if path != "lmms-lab/textvqa":
            return real(path, *args, **kwargs)
        asked.append((kwargs["split"], bool(kwargs.get("streaming"))))
        return rows.to_iterable_dataset() if kwargs.get("streaming") else rows

    monkeypatch.setattr(datasets, "load_dataset", stand_in)
    model = tmp_path / "model"  # the IR with the processor beside it, where optimum-intel looks for one by default
    model.mkdir()
    for file in llava_ir.iterdir():
        (model / file.name).symlink_to(file)
    AutoProcessor.from_pretrained(llava_ir / "checkpoint").save_pretrained(model)
    config = {**DATA_AWARE, "num_samples": 3, "dataset": "textvqa"}
    IntelModel.from_pretrained(model, ov_config=F32, quantization_config=config).save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForVisualCausalLM.from_pretrained(model, ov_config=F32, quantization_config=config)
    ours.save_pretrained(tmp_path / "ours")
    _same_models(tmp_path / "theirs", tmp_path / "ours")
    assert set(asked) == {("validation", False)}


REFUSED = {
    "texts": ({"dataset": ["a prompt"]}, optimum_wc.InvalidArgumentError, "images and prompts"),
    "text dataset": ({"dataset": "wikitext2"}, optimum_wc.InvalidArgumentError, "another kind of data"),
    "unreachable images": ({"dataset": "contextual"}, optimum_wc.InvalidArgumentError, "no longer answer"),
    "vision model": (
        {"quantization_configs": {"vision_embeddings_model": {"bits": 4, "awq": True, "dataset": "textvqa"}}},
        optimum_wc.NotYetSupportedError,
        "only the language model",
    ),
    "offline hub": ({"dataset": "textvqa"}, optimum_wc.InvalidArgumentError, "local image folder"),
    "no prompt column": (None, optimum_wc.InvalidArgumentError, "prompt column"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_calibration_that_cannot_work_is_refused_before_the_export(case, llava_ir, tmp_path, monkeypatch):
    import datasets

    config, error, message = REFUSED[case]
    if case == "no prompt column":
        folder = save_image_folder(tmp_path / "images", 2)
        (folder / "metadata.jsonl").write_text('{"file_name": "0.png"}\n{"file_name": "1.png"}\n')
        config = {"dataset": str(folder)}
    if case == "offline hub":
        monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("offline")))
    if "quantization_configs" not in config:
        config = {"bits": 4, "ratio": 0.5, **config}
    forbid_export(monkeypatch, "OVModelForVisualCausalLM")
    with pytest.raises(error, match=message):
        optimum_wc.OVModelForVisualCausalLM.from_pretrained(llava_ir, quantization_config=config)


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
    _same_models(tmp_path / "theirs", tmp_path / "ours")


def test_the_quantizer_takes_images_and_prompts_only_as_a_dataset(llava_ir):
    model = optimum_wc.OVModelForVisualCausalLM.from_pretrained(llava_ir, compile=False)
    config = optimum_wc.OVConfig(quantization_config=optimum_wc.OVWeightQuantizationConfig(bits=4, awq=True))
    with pytest.raises(optimum_wc.InvalidArgumentError, match="datasets.Dataset of images and prompts"):
        optimum_wc.OVQuantizer(model).quantize(calibration_dataset=[{"input_ids": [[1, 2]]}], ov_config=config)
    assert not any(is_compressed(each) for each in model.ov_models.values())
