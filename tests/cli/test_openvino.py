"""``optimum-wc export openvino``: optimum-cli's command line gives optimum-cli's model (causal LMs, feature
extractors, seq2seq models), and what it does beyond their weight compression is refused before any export."""

from __future__ import annotations

import logging
import os
import subprocess
import textwrap

import pytest

from helpers import forbid_nncf, save_image_folder
from optimum_wc.cli import main
from parity import compare_ir, same_graph_in_any_order
from tiny_diffusion import save_tiny_stable_diffusion
from tiny_models import build_tiny_model, save_tiny_bert, save_tiny_llava, save_tiny_t5, save_tiny_whisper

pytestmark = pytest.mark.slow  # exports tiny checkpoints with optimum-cli and with us


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny Llama in a folder named after an id of optimum-intel's per-model table (Llama-2-7b: INT4_SYM, group
    128, ratio 0.6 for a bare --weight-format int4)."""
    folder = tmp_path_factory.mktemp("cli-openvino") / "Llama-2-7b-hf"
    build_tiny_model("llama").save_pretrained(folder)
    return folder


def _export_both(checkpoint, flags, tmp_path, monkeypatch):
    """Exports with optimum-cli (a subprocess, with nncf) and with us (nncf forbidden); returns both folders."""
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    subprocess.run(["optimum-cli", "export", "openvino", "-m", str(checkpoint), *flags, str(theirs)], check=True)
    forbid_nncf(monkeypatch)
    assert main(["export", "openvino", "-m", str(checkpoint), *flags, str(ours)]) == 0
    return theirs, ours


def _same_ir_as_optimum_cli(checkpoint, flags, tmp_path, monkeypatch):
    """The same single IR from optimum-cli and from us."""
    theirs, ours = _export_both(checkpoint, flags, tmp_path, monkeypatch)
    report = compare_ir(theirs / "openvino_model.xml", ours / "openvino_model.xml", ("nncf", "runtime_options"))
    assert report.identical, report.describe()
    return theirs, ours


@pytest.mark.parametrize(
    "flags",
    [
        ["--task", "text-generation-with-past", "--weight-format", "int4"],
        ["--task", "text-generation-with-past", "--weight-format", "int8", "--disable-stateful"],
        ["--task", "text-generation", "--weight-format", "int4", "--sym", "--group-size", "32", "--ratio", "0.9"]
        + ["--disable-convert-tokenizer"],
    ],
    ids=["int4-per-model-default", "int8-stateless", "int4-flags-no-past"],
)
def test_the_same_model_as_optimum_cli(flags, checkpoint, tmp_path, monkeypatch):
    theirs, ours = _same_ir_as_optimum_cli(checkpoint, flags, tmp_path, monkeypatch)
    for name in ("openvino_tokenizer.xml", "openvino_detokenizer.xml", "config.json", "generation_config.json"):
        assert (theirs / name).is_file() == (ours / name).is_file(), name


@pytest.mark.parametrize(
    "flags",
    [["--weight-format", "int8"], ["--weight-format", "int4", "--sym", "--group-size", "32", "--ratio", "0.8"]],
    ids=["int8", "int4-flags"],
)
def test_the_same_feature_extractor_as_optimum_cli(flags, tmp_path, monkeypatch):
    checkpoint = save_tiny_bert(tmp_path / "tiny-bert")
    _, ours = _same_ir_as_optimum_cli(checkpoint, ["--task", "feature-extraction", *flags], tmp_path, monkeypatch)
    assert "OVModelForFeatureExtraction" in (ours / "README.md").read_text()


def test_the_same_seq2seq_model_as_optimum_cli(tmp_path, monkeypatch):
    """Each OpenVINO model the same graph with the same weights as optimum-cli's (their export lists a T5 decoder's
    ops in another order from one run to the next, see tests/hf/test_seq2seq.py)."""
    checkpoint = save_tiny_t5(tmp_path / "tiny-t5")
    flags = ["--task", "text2text-generation-with-past", "--weight-format", "int4", "--group-size", "32"]
    theirs, ours = _export_both(checkpoint, flags, tmp_path, monkeypatch)
    for name in ("openvino_encoder_model.xml", "openvino_decoder_model.xml"):
        assert same_graph_in_any_order(theirs / name, ours / name) == [], name
    assert "OVModelForSeq2SeqLM" in (ours / "README.md").read_text()


def test_the_same_speech_model_as_optimum_cli(tmp_path, monkeypatch):
    checkpoint = save_tiny_whisper(tmp_path / "tiny-whisper")
    flags = ["--task", "automatic-speech-recognition-with-past", "--weight-format", "int8"]
    theirs, ours = _export_both(checkpoint, flags, tmp_path, monkeypatch)
    report = compare_ir(theirs / "openvino_encoder_model.xml", ours / "openvino_encoder_model.xml")
    assert report.identical, report.describe()
    decoder = "openvino_decoder_model.xml"  # its cross-attention weights: in any order, as a T5 decoder's
    assert same_graph_in_any_order(theirs / decoder, ours / decoder) == []
    assert "OVModelForSpeechSeq2Seq" in (ours / "README.md").read_text()


def test_the_same_diffusion_pipeline_as_optimum_cli(tmp_path, monkeypatch):
    checkpoint = save_tiny_stable_diffusion(tmp_path / "tiny-sd")
    flags = ["--task", "text-to-image", "--weight-format", "int8"]
    theirs, ours = _export_both(checkpoint, flags, tmp_path, monkeypatch)
    for name in ("unet", "text_encoder", "vae_encoder", "vae_decoder"):
        report = compare_ir(theirs / name / "openvino_model.xml", ours / name / "openvino_model.xml")
        assert report.identical, f"{name}: {report.describe()}"
    assert "OVStableDiffusionPipeline" in (ours / "README.md").read_text()


def test_the_same_vision_language_model_as_optimum_cli(tmp_path, monkeypatch):
    """optimum-cli's split: the language model in 4 bits, the embeddings in INT8_SYM; every model the same IR."""
    checkpoint = save_tiny_llava(tmp_path / "tiny-llava")
    flags = ["--task", "image-text-to-text", "--weight-format", "int4", "--group-size", "32"]
    theirs, ours = _export_both(checkpoint, flags, tmp_path, monkeypatch)
    for name in ("language", "text_embeddings", "vision_embeddings"):
        xml = f"openvino_{name}_model.xml"
        report = compare_ir(theirs / xml, ours / xml, ("nncf", "runtime_options"))
        assert report.identical, f"{xml}: {report.describe()}"


def test_the_same_calibrated_vision_language_model_as_optimum_cli(tmp_path, monkeypatch):
    """``--dataset textvqa``: the Hub is out of reach here, so ``datasets.load_dataset`` serves a local image folder
    for its id, in optimum-cli's process (a sitecustomize) and in ours."""
    import datasets

    checkpoint = save_tiny_llava(tmp_path / "tiny-llava")
    folder = save_image_folder(tmp_path / "images", 6)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        textwrap.dedent(f"""
            import datasets

            real = datasets.load_dataset

            def stand_in(path, *args, **kwargs):
                if path != "lmms-lab/textvqa":
                    return real(path, *args, **kwargs)
                rows = real("imagefolder", data_dir={str(folder)!r}, split="train")
                return rows.to_iterable_dataset() if kwargs.get("streaming") else rows

            datasets.load_dataset = stand_in
            """)
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]))
    real = datasets.load_dataset
    rows = real("imagefolder", data_dir=str(folder), split="train")
    monkeypatch.setattr(
        datasets, "load_dataset", lambda path, *a, **k: rows if path == "lmms-lab/textvqa" else real(path, *a, **k)
    )
    flags = ["--task", "image-text-to-text", "--weight-format", "int4", "--group-size", "16", "--ratio", "0.8"]
    flags += ["--dataset", "textvqa", "--num-samples", "3", "--scale-estimation"]
    theirs, ours = _export_both(checkpoint, flags, tmp_path, monkeypatch)
    for name in ("language", "text_embeddings", "vision_embeddings"):
        xml = f"openvino_{name}_model.xml"
        report = compare_ir(theirs / xml, ours / xml, ("nncf", "runtime_options"))
        assert report.identical, f"{xml}: {report.describe()}"


@pytest.mark.parametrize(
    "flags, text",
    [
        (["--task", "text-generation-with-past", "--quant-mode", "int8", "--dataset", "wikitext2"], "--quant-mode"),
        (["--task", "text-generation-with-past", "--weight-format", "int8", "--library", "timm"], "timm"),
        (["--task", "image-classification", "--weight-format", "int8"], "--task image-classification: optimum-wc"),
        (["--weight-format", "int8"], "--task could not be inferred"),  # a local folder, as optimum-cli says
        (["--task", "text-generation", "--weight-format", "int8", "--ratio", "0.5"], "ratio"),
        (["--task", "text-generation", "--weight-format", "int4", "--dataset", "gsm8k", "--awq"], "Hugging Face Hub"),
    ],
    ids=["quant-mode", "library", "task", "auto-task-local", "int8-ratio", "hub-dataset-offline"],
)
def test_beyond_weight_compression_of_causal_lms_is_refused_before_export(
    flags, text, checkpoint, tmp_path, monkeypatch, caplog
):
    import datasets
    from optimum.exporters.openvino import __main__ as exporter

    def no_export(*args, **kwargs):
        raise AssertionError("exported before the refusal")

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(exporter, "main_export", no_export)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    caplog.set_level(logging.ERROR)
    assert main(["export", "openvino", "-m", str(checkpoint), *flags, str(tmp_path / "out")]) == 2
    assert text in caplog.text
    assert not (tmp_path / "out").exists()


def test_float_formats_write_optimum_intels_export_as_it_is(checkpoint, tmp_path, monkeypatch):
    """fp16/fp32: nothing to compress, so the folder is what optimum-intel's exporter writes, with the OVConfig
    optimum-cli gives it, moved into place whole."""
    from optimum.exporters.openvino import __main__ as exporter

    calls = []

    def fake_export(**kwargs):
        calls.append(kwargs)
        (kwargs["output"] / "openvino_model.xml").write_text("exported")

    monkeypatch.setattr(exporter, "main_export", fake_export)
    out = tmp_path / "out"
    flags = ["--task", "text-generation", "--weight-format", "fp16", "--disable-stateful", "--variant", "fp16"]
    flags += ["--library", "transformers", "--pad-token-id", "7", "--cache_dir", str(tmp_path / "cache")]
    flags += ["--model-kwargs", '{"use_cache": false}', "--trust-remote-code"]
    assert main(["export", "openvino", "-m", str(checkpoint), *flags, str(out)]) == 0
    (call,) = calls
    assert call["ov_config"].dtype == "fp16" and call["ov_config"].quantization_config is None
    passed = {key: call[key] for key in ("task", "stateful", "variant", "convert_tokenizer", "library_name")}
    assert passed == {
        "task": "text-generation",
        "stateful": False,
        "variant": "fp16",
        "convert_tokenizer": True,
        "library_name": "transformers",
    }
    assert (call["pad_token_id"], call["cache_dir"], call["model_kwargs"]) == (
        7,
        str(tmp_path / "cache"),
        {"use_cache": False},
    )
    assert call["trust_remote_code"] is True and call["model_name_or_path"] == str(checkpoint)
    assert sorted(p.name for p in out.iterdir()) == ["openvino_model.xml"]


def test_calibration_of_a_model_class_without_it_is_refused_before_the_export(tmp_path, monkeypatch, caplog):
    from optimum.exporters.openvino import __main__ as exporter

    def no_export(*args, **kwargs):
        raise AssertionError("exported before the refusal")

    monkeypatch.setattr(exporter, "main_export", no_export)
    text = tmp_path / "calibration.txt"
    text.write_text("the model is a small text model of open vino\n" * 4)
    flags = ["--task", "automatic-speech-recognition", "--weight-format", "int4", "--ratio", "0.5"]
    flags += ["--dataset", str(text)]
    caplog.set_level(logging.ERROR)
    assert main(["export", "openvino", "-m", str(tmp_path / "whisper"), *flags, str(tmp_path / "out")]) == 2
    assert "OVModelForSpeechSeq2Seq does not take a calibration `dataset`" in caplog.text
