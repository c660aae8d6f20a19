"""What `pip install optimum-wc` gives: the nncf drop-in with four dependencies; the Hugging Face side in an extra
that an error names when it is missing; the version written once."""

from __future__ import annotations

import importlib.metadata
import tomllib

from helpers import HF_SIDE, REPO, run_without_hf_side
import optimum_wc


def test_the_core_compresses_an_ir_without_the_hugging_face_side(tiny_ir, tmp_path):
    result = run_without_hf_side(f"""
        import json, sys, openvino as ov, optimum_wc
        model = optimum_wc.compress_weights({str(tiny_ir("llama"))!r}, mode="int4_asym", group_size=32, progress=False)
        ov.save_model(model, {str(tmp_path / "out.xml")!r})
        try:
            optimum_wc.OVModelForCausalLM
            error = None
        except optimum_wc.MissingExtraError as exc:
            error = str(exc)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {HF_SIDE!r})
        print(json.dumps({{"error": error, "loaded": loaded}}))
    """)
    assert (tmp_path / "out.bin").stat().st_size > 0
    assert result["loaded"] == []
    assert (
        result["error"]
        and "pip install 'optimum-wc[hf]'" in result["error"]
        and "OVModelForCausalLM" in result["error"]
    )


def test_the_core_declares_four_dependencies_and_the_rest_are_extras():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for dep in project["dependencies"]}
    assert names == {"numpy", "openvino", "tqdm", "threadpoolctl"}
    assert any(dep.startswith("optimum-intel") for dep in project["optional-dependencies"]["hf"])
    assert project["requires-python"].startswith(">=3.11")  # enum.StrEnum


def test_the_version_is_written_once():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("optimum-wc") == optimum_wc.__version__


def test_a_command_without_its_extra_names_the_extra(tmp_path):
    result = run_without_hf_side(f"""
        import contextlib, io, json, logging
        from optimum_wc import cli
        stream = io.StringIO()
        logging.basicConfig(stream=stream, level=logging.INFO, force=True)
        code = cli.main(["eval", {str(tmp_path)!r}, "--dataset", "some text"])
        print(json.dumps({{"code": code, "log": stream.getvalue()}}))
    """)
    assert result["code"] == 2 and "pip install 'optimum-wc[hf]'" in result["log"], result
