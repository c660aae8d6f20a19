"""optimum-intel's table ids read from its source: every id its tables hold, and an IR that no table names is
exported without importing torch or optimum-intel."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.hf import default_ids


def test_ids_hold_every_key_of_optimum_intels_tables():
    from optimum.intel.openvino import configuration

    keys = set()
    for table in default_ids.TABLES:
        keys |= set(getattr(configuration, table))
    assert keys <= default_ids.table_ids()  # aliases added in code too
    assert len(default_ids.table_ids()) < 2 * len(keys)  # and not every string of the module


def test_an_id_may_be_named_as_given_by_name_or_path_or_by_folder_name(tmp_path):
    named = sorted(default_ids.table_ids())[0]
    assert default_ids.may_be_named(named)
    assert default_ids.may_be_named(str(tmp_path / named.split("/")[-1]))
    folder = tmp_path / "exported"
    folder.mkdir()
    assert not default_ids.may_be_named(str(folder))
    (folder / "config.json").write_text(json.dumps({"_name_or_path": named}))
    assert default_ids.may_be_named(str(folder))


def test_every_id_is_looked_up_where_the_source_does_not_show_the_tables(monkeypatch, tmp_path):
    monkeypatch.setattr(default_ids, "TABLES", (*default_ids.TABLES, "_A_TABLE_IT_DOES_NOT_HAVE"))
    default_ids.table_ids.cache_clear()
    try:
        assert default_ids.table_ids() is None
        assert default_ids.may_be_named(str(tmp_path))
    finally:
        default_ids.table_ids.cache_clear()


def test_an_ir_no_table_names_is_exported_without_torch(tmp_path):
    x = opset.parameter([1, 256], ov.Type.f32, name="x")
    weight = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    model = ov.Model([opset.matmul(x, opset.constant(weight), False, True)], [x])
    ov.save_model(model, tmp_path / "ir" / "openvino_model.xml", compress_to_fp16=False)
    code = (
        "import sys\nfrom optimum_wc import cli\n"
        f"assert cli.main(['export', {str(tmp_path / 'ir')!r}, {str(tmp_path / 'out')!r}, '--weight-format', "
        "'int4', '--no-progress']) == 0\n"
        "print(sorted(m for m in ('torch', 'transformers', 'optimum.intel') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert pathlib.Path(tmp_path / "out" / "openvino_model.xml").is_file()
