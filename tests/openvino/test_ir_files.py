"""A damaged IR is refused with an error that names the file, before OpenVINO reads it (whose own messages do not)."""

from __future__ import annotations

import logging
import pathlib
import shutil

import pytest

import optimum_wc
from optimum_wc.errors import CorruptModelError
from optimum_wc.openvino.ir_files import check_ir_files


@pytest.fixture
def ir_folder(tiny_ir, tmp_path) -> pathlib.Path:
    """A copy of the tiny llama's exported folder (IR and config), safe to damage."""
    source = tiny_ir("llama").parent
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    return folder


def _truncate(path: pathlib.Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_sound_ir_passes(ir_folder):
    check_ir_files(ir_folder / "openvino_model.xml")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda f: _truncate(f / "openvino_model.bin", 0.5),
            r"openvino_model.bin is truncated: openvino_model.xml needs [\d,]+ bytes of weights, the file has [\d,]+",
        ),
        (
            lambda f: _truncate(f / "openvino_model.xml", 0.5),
            r"openvino_model.xml is not a well-formed OpenVINO IR .*damaged or truncated",
        ),
        (lambda f: (f / "openvino_model.bin").unlink(), r"openvino_model.bin is missing: .*openvino_model.xml needs"),
        (
            lambda f: (f / "openvino_model.xml").write_text("<html><body/></html>"),
            r"is not an OpenVINO IR \(its root element is <html>",
        ),
    ],
    ids=["truncated-bin", "truncated-xml", "missing-bin", "not-an-ir"],
)
def test_damaged_files_are_named(ir_folder, damage, message, caplog):
    damage(ir_folder)
    with pytest.raises(CorruptModelError, match=message) as error:
        check_ir_files(ir_folder / "openvino_model.xml")
    assert str(ir_folder) in str(error.value)  # the full path of the file at fault
    with pytest.raises(CorruptModelError, match=message):
        optimum_wc.OVModelForCausalLM.from_pretrained(ir_folder)

    from optimum_wc.cli import main

    caplog.set_level(logging.ERROR)
    assert main(["export", str(ir_folder), str(ir_folder.parent / "out"), "--weight-format", "int8"]) == 2
    assert "optimum-wc: error:" in caplog.text and str(ir_folder) in caplog.text
    assert not (ir_folder.parent / "out").exists()
