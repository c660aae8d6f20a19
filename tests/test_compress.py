"""compress_weights end to end: bad models, nncf never called, determinism, the summary and progress output."""

from __future__ import annotations

import logging
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from helpers import calibration_items
import openvino as ov
from openvino import opset13 as opset
import optimum_wc
from optimum_wc.pipeline.rt_info import read_layer_records

REPO = pathlib.Path(__file__).resolve().parent.parent


def _signature(model: ov.Model) -> list[tuple]:
    return [
        (op.get_type_name(), op.get_friendly_name(), str(op.get_output_element_type(0)))
        for op in model.get_ordered_ops()
    ]


def test_model_without_weights_is_returned_unchanged_with_a_warning(caplog):
    x = opset.parameter([2, 3], ov.Type.f32, name="x")
    model = ov.Model([opset.relu(x)], [x])
    before = _signature(model)
    with caplog.at_level(logging.WARNING, logger="optimum_wc"):
        assert optimum_wc.compress_weights(model, mode="int4_sym", progress=False) is model
    assert "no weights that can be compressed" in caplog.text
    assert _signature(model) == before and not model.has_rt_info(["nncf"])


def test_nan_or_inf_weight_is_refused_naming_the_layer():
    x = opset.parameter([2, 8], ov.Type.f32, name="x")
    good = np.ones((4, 8), np.float32)
    bad = np.ones((4, 4), np.float32)
    bad[1, 2] = np.nan
    worse = np.ones((4, 4), np.float32)
    worse[0, 0] = np.inf
    h = opset.matmul(x, opset.constant(good, name="good.weight"), False, True)
    h = opset.matmul(h, opset.constant(bad, name="bad.weight"), False, True)
    h = opset.matmul(h, opset.constant(worse, name="worse.weight"), False, True)
    model = ov.Model([h], [x])
    before = _signature(model)
    with pytest.raises(optimum_wc.NonFiniteWeightError) as info:
        optimum_wc.compress_weights(model, progress=False)
    assert "'bad.weight'" in str(info.value) and "'worse.weight'" in str(info.value)
    assert "good.weight" not in str(info.value)
    assert _signature(model) == before


def test_low_bit_weights_are_left_alone(tiny_ir):
    model = ov.Core().read_model(tiny_ir("llama"))
    optimum_wc.compress_weights(model, mode="int4_asym", all_layers=True, progress=False)
    once = _signature(model)
    optimum_wc.compress_weights(model, mode="int8_asym", progress=False)
    assert _signature(model) == once


def test_shared_weight_is_compressed_once(tiny_ir):
    model = ov.Core().read_model(tiny_ir("qwen2"))  # tied embedding and lm_head
    optimum_wc.compress_weights(model, mode="int4_sym", progress=False)
    names = [op.get_friendly_name() for op in model.get_ops()]
    assert names.count("self.model.embed_tokens.weight") == 1
    assert names.count("self.model.embed_tokens.weight/scale") == 1
    records = read_layer_records(model)
    assert records["self.model.embed_tokens.weight"] == {
        "bits": 8,
        "group_size": -1,
        "mode": "int8_asym",
        "shape": [512, 128],
    }
    down = records["self.model.layers.0.mlp.down_proj.weight"]
    assert down == {"bits": 4, "group_size": 128, "mode": "int4_sym", "shape": [128, 256]}


def test_output_does_not_depend_on_the_number_of_workers(tiny_ir, tmp_path):
    blobs = []
    for workers in (1, 2):
        model = ov.Core().read_model(tiny_ir("opt"))
        optimum_wc.compress_weights(model, mode="nf4", ratio=0.8, group_size=64, num_workers=workers, progress=False)
        ov.save_model(model, tmp_path / f"w{workers}.xml", compress_to_fp16=False)
        blobs.append((tmp_path / f"w{workers}.bin").read_bytes())
    assert blobs[0] == blobs[1]


def test_summary_table_and_progress_bar(tiny_ir, caplog, capsys):
    model = ov.Core().read_model(tiny_ir("llama"))
    settings = optimum_wc.CompressionSettings.from_arguments(mode="int4_asym", group_size=64, ratio=0.8)
    with caplog.at_level(logging.INFO, logger="optimum_wc"):
        result = optimum_wc.compress_model(model, settings)
    assert "int4_asym, group size 64" in caplog.text and "int8_asym, per-channel" in caplog.text
    assert "Compressing weights" in capsys.readouterr().err
    rows = {row.label: row for row in result.summary.rows}
    ratio_defining = result.summary.ratio_defining_parameters
    share = rows["int4_asym, group size 64"].num_ratio_defining_parameters / ratio_defining
    assert share < 0.8 and rows["float"].num_layers == 1  # the rotary-embedding MatMul stays float
    assert sum(r.num_parameters for r in result.summary.rows) == result.summary.total_parameters


def test_nncf_is_never_imported_on_our_path(tiny_ir):
    """A fresh interpreter compresses a model; nncf must not even be imported."""
    script = (
        "import sys, openvino as ov, optimum_wc\n"
        f"m = ov.Core().read_model({str(tiny_ir('llama'))!r})\n"
        "optimum_wc.compress_weights(m, mode='int4_asym', ratio=0.8, progress=False)\n"
        "assert m.has_rt_info(['nncf', 'weight_compression', 'mode'])\n"
        "import numpy as np\n"
        "ids = np.arange(3, 11)[None]\n"
        "items = [{'input_ids': ids, 'attention_mask': np.ones_like(ids), 'position_ids': np.arange(8)[None],"
        " 'beam_idx': np.zeros(1, dtype=np.int32)}] * 2\n"
        f"m = ov.Core().read_model({str(tiny_ir('llama'))!r})\n"
        "optimum_wc.compress_weights(m, mode='int4_sym', group_size=32, dataset=items, awq=True,"
        " scale_estimation=True, gptq=True, progress=False)\n"
        "assert m.get_rt_info(['nncf', 'weight_compression', 'gptq']).value == 'True'\n"
        "print('nncf imported:', any(k == 'nncf' or k.startswith('nncf.') for k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert "nncf imported: False" in out.stdout


def test_nncf_entry_points_raising_do_not_matter(tiny_ir, monkeypatch):
    """Even with nncf imported, our call never reaches it: its entry points are made to raise."""
    import nncf
    from nncf.quantization.algorithms.weight_compression import algorithm, weight_lowering

    def boom(*args, **kwargs):
        raise AssertionError("nncf was called")

    monkeypatch.setattr(nncf, "compress_weights", boom)
    monkeypatch.setattr(algorithm.WeightCompression, "apply", boom)
    monkeypatch.setattr(weight_lowering, "compress_weight", boom)
    monkeypatch.setattr(weight_lowering, "integer_quantize_dequantize_weight", boom)
    monkeypatch.setattr(weight_lowering, "do_integer_quantization", boom)
    model = ov.Core().read_model(tiny_ir("gpt2"))
    optimum_wc.compress_weights(model, mode="int4_sym", group_size=32, progress=False)
    assert model.get_rt_info(["nncf", "weight_compression", "mode"]).value == "int4_sym"
    model = ov.Core().read_model(tiny_ir("opt"))
    optimum_wc.compress_weights(
        model,
        mode="int4_asym",
        group_size=32,
        dataset=nncf.Dataset(calibration_items()),
        awq=True,
        scale_estimation=True,
        gptq=True,
        progress=False,
    )
    assert model.get_rt_info(["nncf", "weight_compression", "awq"]).value == "True"


def test_optimum_intel_sees_our_model_as_already_compressed(tiny_ir):
    from optimum.intel.openvino.quantization import _verify_not_optimized

    model = ov.Core().read_model(tiny_ir("llama"))
    _verify_not_optimized(model)  # a float model passes
    optimum_wc.compress_weights(model, mode="int4_sym", progress=False)
    with pytest.raises(RuntimeError, match="already optimized"):
        _verify_not_optimized(model)
