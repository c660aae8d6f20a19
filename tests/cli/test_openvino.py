"""``optimum-wc export openvino``: optimum-cli's command line gives optimum-cli's model, and what it does beyond weight
compression of causal LMs is refused before any export."""

from __future__ import annotations

import logging
import subprocess

import pytest

from helpers import forbid_nncf
from optimum_wc.cli import main
from parity import compare_ir
from tiny_models import build_tiny_model

pytestmark = pytest.mark.slow  # exports tiny checkpoints with optimum-cli and with us


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-openvino") / "llama"
    build_tiny_model("llama").save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "flags",
    [
        ["--task", "text-generation-with-past", "--weight-format", "int4", "--sym", "--group-size", "32"],
        ["--task", "text-generation-with-past", "--weight-format", "int8", "--disable-stateful"],
        ["--task", "text-generation", "--weight-format", "fp16", "--disable-convert-tokenizer"],
    ],
    ids=["int4-sym-g32", "int8-stateless", "fp16-no-past"],
)
def test_the_same_model_as_optimum_cli(flags, checkpoint, tmp_path, monkeypatch):
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    subprocess.run(["optimum-cli", "export", "openvino", "-m", str(checkpoint), *flags, str(theirs)], check=True)
    forbid_nncf(monkeypatch)
    assert main(["export", "openvino", "-m", str(checkpoint), *flags, str(ours)]) == 0
    report = compare_ir(theirs / "openvino_model.xml", ours / "openvino_model.xml", ("nncf", "runtime_options"))
    assert report.identical, report.describe()
    for name in ("openvino_tokenizer.xml", "openvino_detokenizer.xml", "config.json", "generation_config.json"):
        assert (theirs / name).is_file() == (ours / name).is_file(), name


@pytest.mark.parametrize(
    "flags, text",
    [
        (["--task", "text-generation-with-past", "--quant-mode", "int8", "--dataset", "wikitext2"], "--quant-mode"),
        (["--task", "text-generation-with-past", "--weight-format", "int8", "--library", "diffusers"], "diffusers"),
        (["--task", "feature-extraction", "--weight-format", "int8"], "causal LMs only"),
        (["--weight-format", "int8"], "--task could not be inferred"),  # a local folder, as optimum-cli says
        (["--task", "text-generation", "--weight-format", "int8", "--ratio", "0.5"], "ratio"),
    ],
    ids=["quant-mode", "library", "task", "auto-task-local", "int8-ratio"],
)
def test_beyond_weight_compression_of_causal_lms_is_refused_before_export(
    flags, text, checkpoint, tmp_path, monkeypatch, caplog
):
    from optimum.exporters.openvino import __main__ as exporter

    def no_export(*args, **kwargs):
        raise AssertionError("exported before the refusal")

    monkeypatch.setattr(exporter, "main_export", no_export)
    caplog.set_level(logging.ERROR)
    assert main(["export", "openvino", "-m", str(checkpoint), *flags, str(tmp_path / "out")]) == 2
    assert text in caplog.text
    assert not (tmp_path / "out").exists()
