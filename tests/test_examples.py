"""The README's main command and the examples run as a user would run them."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # runs each example in a fresh interpreter

REPO = pathlib.Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_main_command_compresses_the_embedded_model_and_generates(tmp_path):
    out = _run("examples/compress_default_model.py", "--output", str(tmp_path / "int4"))
    assert "generation: 'The dictionary" in out
    before, after = (float(x.split(" MiB")[0]) for x in out.split("IR size: ")[1].split(" -> "))
    assert after < before / 3
    assert (tmp_path / "int4" / "openvino_model.xml").is_file()


def test_load_in_flags_example():
    out = _run("examples/load_in_flags.py")
    assert "mode='int8_asym'" in out and "mode='int4_asym', ratio=1.0, group_size=128" in out


def test_from_pretrained_config_example():
    out = _run("examples/from_pretrained_config.py")
    assert "| int4_sym, group size 64 | 41% (31 / 45)" in out and "| int8_asym, per-channel  | 59% (13 / 45)" in out


def test_save_reload_pipeline_example(tmp_path):
    out = _run("examples/save_reload_pipeline.py", "models/tiny-llama-pydoc", str(tmp_path / "nf4"))
    assert "restored config: WeightCompressionConfig(mode='nf4', ratio=1.0, group_size=64)" in out
    assert "\nExceptions are" in out and (tmp_path / "nf4" / "openvino_tokenizer.xml").is_file()


def test_every_example_runs_in_a_test():
    tests = pathlib.Path(__file__).read_text()
    assert [p.name for p in sorted((REPO / "examples").glob("*.py")) if f"examples/{p.name}" not in tests] == []
