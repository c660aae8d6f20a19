"""Byte-identical output to nncf 3.4.0, pairwise over the configuration space, on every tiny architecture."""

from __future__ import annotations

import pathlib

import nncf
import numpy as np
import pytest

from helpers import nncf_kwargs
import openvino as ov
from pairwise import all_pairs, missing_pairs
from parity import assert_same_as_nncf, compare_ir, compress_and_save
from tiny_models import ARCHITECTURES

FOUR_BIT_FACTORS = {
    "arch": sorted(ARCHITECTURES),
    "mode": ["int4_sym", "int4_asym", "nf4"],
    "group_size": [-1, 32, 64, 128],
    "ratio": [1.0, 0.8, 0.5],
    "all_layers": [False, True],
    "backup_mode": ["int8_asym", "int8_sym", "none"],
}
FOUR_BIT_ROWS = all_pairs(FOUR_BIT_FACTORS)
INT8_ROWS = [
    {"arch": arch, "mode": mode, **extra}
    for arch in sorted(ARCHITECTURES)
    for mode, extra in [("int8_asym", {}), ("int8_sym", {"ratio": 1.0, "group_size": -1})]
]


def _row_id(row: dict) -> str:
    return "-".join(f"{v}" for v in row.values())


def test_pairwise_rows_cover_every_pair():
    assert missing_pairs(FOUR_BIT_FACTORS, FOUR_BIT_ROWS) == []
    assert {row["arch"] for row in INT8_ROWS} == set(ARCHITECTURES)


@pytest.mark.parametrize("row", FOUR_BIT_ROWS + INT8_ROWS, ids=_row_id)
def test_identical_to_nncf(row, tiny_ir, tmp_path):
    kwargs = {k: v for k, v in row.items() if k != "arch"}
    assert_same_as_nncf(tiny_ir(row["arch"]), tmp_path, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"mode": "int4_asym", "group_size": 64, "ratio": 0.8}, {"mode": "nf4", "all_layers": True}],
    ids=["int8_asym", "int4_asym-g64-r0.8", "nf4-all_layers"],
)
def test_identical_to_nncf_on_f16_weights(kwargs, tiny_ir, tmp_path):
    assert_same_as_nncf(tiny_ir("llama-fp16"), tmp_path, **kwargs)


@pytest.mark.parametrize("fallback", ["ignore", "adjust"])
def test_group_size_fallback_identical_to_nncf(fallback, tiny_ir, tmp_path):
    xml = tiny_ir("llama")
    reference_params = nncf.AdvancedCompressionParameters(group_size_fallback_mode=nncf.GroupSizeFallbackMode(fallback))
    reference = tmp_path / "nncf" / "openvino_model.xml"
    reference.parent.mkdir()
    model = nncf.compress_weights(
        ov.Core().read_model(xml),
        mode=nncf.CompressWeightsMode.INT4_SYM,
        group_size=96,
        advanced_parameters=reference_params,
    )
    ov.save_model(model, reference, compress_to_fp16=False)
    import optimum_wc

    params = optimum_wc.AdvancedCompressionParameters(group_size_fallback_mode=fallback)
    ours = compress_and_save(
        xml, tmp_path / "ours", "optimum_wc", mode="int4_sym", group_size=96, advanced_parameters=params
    )
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


def test_ignored_scope_identical_to_nncf(tiny_ir, tmp_path):
    xml = tiny_ir("llama")
    scope = dict(
        names=["__module.model.layers.0.mlp.down_proj/aten::linear/MatMul"],
        patterns=[r".*self_attn\.q_proj.*"],
        types=[],
    )
    reference = tmp_path / "nncf" / "openvino_model.xml"
    reference.parent.mkdir()
    model = nncf.compress_weights(
        ov.Core().read_model(xml),
        mode=nncf.CompressWeightsMode.INT4_ASYM,
        ratio=0.8,
        ignored_scope=nncf.IgnoredScope(**scope),
    )
    ov.save_model(model, reference, compress_to_fp16=False)
    import optimum_wc

    ours = compress_and_save(
        xml,
        tmp_path / "ours",
        "optimum_wc",
        mode="int4_asym",
        ratio=0.8,
        ignored_scope=optimum_wc.IgnoredScope(**scope),
    )
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


def test_compiled_logits_identical_to_nncf(tiny_ir, tmp_path):
    xml = tiny_ir("qwen2")
    kwargs = {"mode": "int4_asym", "group_size": 32, "ratio": 0.8}
    paths = {
        "nncf": compress_and_save(xml, tmp_path / "nncf", "nncf", **nncf_kwargs(kwargs)),
        "ours": compress_and_save(xml, tmp_path / "ours", "optimum_wc", **kwargs),
    }
    core = ov.Core()
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 500, size=(1, 12))
    inputs = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "position_ids": np.arange(12)[None],
        "beam_idx": np.zeros(1, dtype=np.int32),
    }
    logits = {}
    for name, path in paths.items():
        compiled = core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        logits[name] = compiled.create_infer_request().infer(inputs)["logits"]
    assert np.isfinite(logits["ours"]).all()
    np.testing.assert_array_equal(logits["ours"], logits["nncf"])


def test_compare_ir_detects_a_difference(tiny_ir, tmp_path):
    """The comparison itself can fail: INT8 vs INT4 outputs are reported as different."""
    xml = tiny_ir("llama")
    a = compress_and_save(xml, tmp_path / "a", "optimum_wc")
    b = compress_and_save(xml, tmp_path / "b", "optimum_wc", mode="int4_sym")
    report = compare_ir(a, b)
    assert not report.bin_equal and report.graph_differences and report.rt_info_differences


def test_compare_ir_follows_connections_when_auto_names_repeat(tmp_path):
    """Two nodes may carry the same auto-generated name (a new node numbered by one process's counter, an old one by
    another's): connections are compared by node, not by name, so the same graph is not reported as different."""
    import openvino.opset13 as opset

    def model(repeat_name: bool) -> pathlib.Path:
        x = opset.parameter([2, 2], ov.Type.f16, name="x")
        first, second = opset.convert(x, ov.Type.f32), opset.convert(x, ov.Type.f32)
        first.set_friendly_name("Convert_7")
        second.set_friendly_name("Convert_7" if repeat_name else "Convert_8")
        path = tmp_path / f"{repeat_name}.xml"
        ov.save_model(ov.Model([opset.result(opset.add(first, opset.relu(second)))], [x]), path)
        return path

    assert compare_ir(model(False), model(True)).graph_differences == []
