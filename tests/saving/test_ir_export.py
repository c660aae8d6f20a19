"""``optimum-wc export`` on an IR folder: no Hugging Face package, and the same files as the Hugging Face path
(``OVModelForCausalLM.from_pretrained`` + ``save_pretrained``) writes for the same model: byte for byte, but for
the auto-generated node names in the ``.xml``, which OpenVINO numbers from a process-wide counter."""

from __future__ import annotations

import pathlib
import re

import pytest

from helpers import EMBEDDED, HF_SIDE, run_without_hf_side
from optimum_wc.cli import build_parser, config_from_args, main

pytestmark = pytest.mark.slow  # exports the embedded model and writes it both ways

FLAGS = {
    "int4": ["--weight-format", "int4"],
    "int4-sym-g64-r0.8": ["--weight-format", "int4", "--sym", "--group-size", "64", "--ratio", "0.8"],
    "nf4-all-layers": ["--weight-format", "nf4", "--all-layers", "--backup-precision", "none"],
    "int8": ["--weight-format", "int8"],
    "fp16": ["--weight-format", "fp16"],
}


@pytest.fixture(scope="module")
def float_ir(tmp_path_factory) -> pathlib.Path:
    """The embedded model as a float IR folder with its tokenizers, as optimum-wc saves one."""
    from optimum_wc import OVModelForCausalLM

    folder = tmp_path_factory.mktemp("float") / "ir"
    OVModelForCausalLM.from_pretrained(EMBEDDED, export=True, load_in_8bit=False, compile=False).save_pretrained(folder)
    return folder


def _files(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", FLAGS)
def test_the_ir_path_writes_what_the_hugging_face_path_writes(name, float_ir, tmp_path):
    from optimum_wc import OVModelForCausalLM

    flags = FLAGS[name]
    assert main(["export", str(float_ir), str(tmp_path / "core"), *flags, "--no-progress"]) == 0
    config = config_from_args(build_parser().parse_args(["export", str(float_ir), "out", *flags]))
    model = OVModelForCausalLM.from_pretrained(
        str(float_ir),
        quantization_config=config,
        compile=False,
        load_in_8bit=False if config is None else None,
        progress=False,
    )
    model.save_pretrained(tmp_path / "hf", compress_to_fp16=name == "fp16")
    core, hf = _files(tmp_path / "core"), _files(tmp_path / "hf")
    assert sorted(core) == sorted(hf) and "openvino_tokenizer.xml" in core and "README.md" in core
    assert [file for file in core if core[file] != hf[file]] in ([], ["openvino_model.xml"])
    assert _numbered_names_aside(core["openvino_model.xml"]) == _numbered_names_aside(hf["openvino_model.xml"])


def _numbered_names_aside(xml: bytes) -> str:
    """The ``.xml`` with the numbers of OpenVINO's auto-generated names (``Convert_38091``) replaced."""
    return re.sub(r"\b([A-Z][A-Za-z0-9]*)_\d+", r"\1_N", xml.decode())


def test_the_ir_path_imports_no_hugging_face_package(float_ir, tmp_path):
    result = run_without_hf_side(f"""
        import json, sys
        from optimum_wc.cli import main
        code = main(["export", {str(float_ir)!r}, {str(tmp_path / "out")!r}, "--weight-format", "int4",
                     "--no-progress"])
        print(json.dumps({{"code": code, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {HF_SIDE!r})}}))
    """)
    assert result == {"code": 0, "loaded": []}
    assert (tmp_path / "out" / "openvino_model.bin").stat().st_size < (
        float_ir / "openvino_model.bin"
    ).stat().st_size / 4
    assert (tmp_path / "out" / "openvino_tokenizer.xml").is_file() and (tmp_path / "out" / "config.json").is_file()


def test_an_already_compressed_ir_is_refused_as_the_hugging_face_path_refuses_it(float_ir, tmp_path, caplog):
    assert main(["export", str(float_ir), str(tmp_path / "int8"), "--weight-format", "int8", "--no-progress"]) == 0
    assert main(["export", str(tmp_path / "int8"), str(tmp_path / "again"), "--weight-format", "int4"]) == 2
    assert "already compressed" in caplog.text and not (tmp_path / "again").exists()


def test_from_pretrained_hands_the_run_options_to_the_core(float_ir, tmp_path, monkeypatch):
    from optimum_wc import OVModelForCausalLM
    from optimum_wc.hf import compressed

    seen = {}
    compress_model = compressed.compress_model

    def recording(model, settings, **run):
        seen.update(run)
        return compress_model(model, settings, **run)

    monkeypatch.setattr(compressed, "compress_model", recording)
    run = {"num_workers": 1, "progress": False, "scratch_dir": str(tmp_path / "scratch")}
    OVModelForCausalLM.from_pretrained(str(float_ir), load_in_4bit=True, compile=False, **run)
    assert seen == run and (tmp_path / "scratch").is_dir()
