"""Parity with nncf on small hand-built graphs: weight types and layouts the exported LLMs do not have."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import nncf_kwargs
import openvino as ov
from openvino import opset13 as opset
from parity import compare_ir, compress_and_save

RNG = np.random.default_rng(11)


def _w(*shape, dtype=np.float32):
    return RNG.normal(0, 0.1, size=shape).astype(dtype)


def _bf16_weights() -> ov.Model:
    x = opset.parameter([2, 64], ov.Type.f32, name="x")
    w = opset.constant(_w(32, 64), dtype=ov.Type.bf16, name="w_bf16")
    h = opset.matmul(x, opset.convert(w, ov.Type.f32), False, True, name="mm0")
    out = opset.matmul(h, opset.constant(_w(32, 16), name="w_last"), False, False, name="mm1")
    return ov.Model([out], [x])


def _conv_and_matmul() -> ov.Model:
    x = opset.parameter([1, 4, 8, 8], ov.Type.f32, name="x")
    conv = opset.convolution(
        x, opset.constant(_w(8, 4, 3, 3), name="conv_w"), [1, 1], [0, 0], [0, 0], [1, 1], name="conv"
    )
    flat = opset.reshape(conv, [1, 288], special_zero=False)
    h = opset.matmul(flat, opset.constant(_w(64, 288), name="fc1_w"), False, True, name="fc1")
    out = opset.matmul(h, opset.constant(_w(64, 64), name="fc2_w"), False, True, name="fc2")
    return ov.Model([out], [x])


def _shared_last_layer() -> ov.Model:
    x = opset.parameter([2, 64], ov.Type.f32, name="x")
    shared = opset.constant(_w(64, 64), name="shared_w")
    h = opset.matmul(x, opset.constant(_w(64, 64), name="first_w"), False, True, name="first")
    h = opset.matmul(h, shared, False, True, name="middle")
    out = opset.matmul(h, shared, False, True, name="last")  # the last MatMul reuses a weight
    return ov.Model([out], [x])


def _batched_weights() -> ov.Model:
    x = opset.parameter([4, 2, 64], ov.Type.f32, name="x")
    h = opset.matmul(x, opset.constant(_w(4, 32, 64), name="experts_w"), False, True, name="experts")
    out = opset.matmul(h, opset.constant(_w(4, 32, 32), name="experts2_w"), False, False, name="experts2")
    return ov.Model([out], [x])


def _f16_direct() -> ov.Model:
    x = opset.parameter([2, 64], ov.Type.f16, name="x")
    h = opset.matmul(x, opset.constant(_w(64, 64, dtype=np.float16), name="a_w"), False, True, name="a")
    out = opset.matmul(h, opset.constant(_w(64, 64, dtype=np.float16), name="b_w"), False, True, name="b")
    return ov.Model([out], [x])


MODELS = {
    "bf16": _bf16_weights,
    "conv": _conv_and_matmul,
    "shared-last": _shared_last_layer,
    "batched": _batched_weights,
    "f16-direct": _f16_direct,
}
CONFIGS = [
    {},
    {"mode": "int8_sym"},
    {"mode": "int4_asym", "group_size": 32},
    {"mode": "int4_sym", "group_size": -1, "ratio": 0.6},
    {"mode": "nf4", "group_size": 16, "all_layers": True, "backup_mode": "int8_sym"},
]


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_identical_to_nncf(name, config, tmp_path):
    xml = tmp_path / "model.xml"
    ov.save_model(MODELS[name](), xml, compress_to_fp16=False)
    reference = compress_and_save(xml, tmp_path / "nncf", "nncf", **nncf_kwargs(config))
    ours = compress_and_save(xml, tmp_path / "ours", "optimum_wc", **config)
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


def test_finite_check_of_float16_bits_agrees_with_numpy():
    import numpy as np

    from optimum_wc.pipeline import planning

    values = np.array([0.0, -0.0, 1.0, -65504.0, 6e-8, np.inf, -np.inf, np.nan], dtype=np.float16)
    for index in range(len(values)):
        data = np.full((3, 5), values[index], dtype=np.float16)
        assert planning._is_finite(data) == bool(np.isfinite(values[index])), values[index]
    every_bit_pattern = np.arange(2**16, dtype=np.uint16).view(np.float16).reshape(256, 256)
    for row in every_bit_pattern:
        assert planning._is_finite(row) == bool(np.isfinite(row).all())
