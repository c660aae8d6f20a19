"""The model card's bit-width table: the bits per weight it reports are what the IR stores."""

from __future__ import annotations

import math

import numpy as np
import pytest

import openvino as ov
from optimum_wc.compress import compress_model
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.saving.model_card import write_model_card

pytestmark = pytest.mark.slow  # compresses a tiny exported model


def _stored_bytes(model: ov.Model, weight: str) -> int:
    """Bytes of the constants of one compressed weight: codes (or a codebook and its indices), scale, zero point,
    NVFP4's second-order scale."""
    names = {weight, f"{weight}/scale", f"{weight}/zero_point", f"{weight}/second_order_scale"}
    names.add(f"{weight}_nncf_codebook_idxs")
    total = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_friendly_name() in names:
            output = op.output(0)
            total += math.ceil(output.get_element_type().bitwidth * math.prod(output.get_shape()) / 8)
    return total


@pytest.mark.parametrize(
    "mode, expected_primary",
    [
        ("mxfp4", 4 + 8 / 32),
        ("nvfp4", 4 + 8 / 16),
        ("fp8_e4m3", 8 + 16 / 128),
        ("int4_asym", 4 + 20 / 128),
        ("cb4", None),  # per channel: 16 bits of scale per row, over inputs of 128 or 256
    ],
)
def test_bits_per_weight_are_what_the_ir_stores(mode, expected_primary, tiny_ir, tmp_path):
    model = ov.Core().read_model(tiny_ir("llama"))
    result = compress_model(model, CompressionSettings.from_arguments(mode=mode), progress=False)
    rows = {row.label: row for row in result.summary.rows}
    primary = next(row for label, row in rows.items() if label.startswith(mode))
    if expected_primary is not None:
        assert primary.stored_bits == pytest.approx(expected_primary)  # from the formats' definitions
    for row in [r for r in result.summary.rows if r.label != "float"]:  # and from the IR's bytes, weight by weight
        weights = [w for w in result.plan.weights if w.precision is not None and w.precision.label == row.label]
        stored = sum(_stored_bytes(model, w.target.constant_name) for w in weights) * 8
        elements = sum(w.target.num_elements for w in weights)
        # not counted in the table: NVFP4's global scale, the 16 FP8 values of a codebook (per weight)
        uncounted = {"nvfp4": 32, "cb4": 16 * 8}.get(mode, 0) * len(weights) if row is primary else 0
        np.testing.assert_allclose(row.stored_bits * elements, stored - uncounted, rtol=1e-9, atol=8)
    card = write_model_card(tmp_path, None, None, result.summary, {}).read_text()
    assert f"| {primary.label} |" in card and f"| {primary.stored_bits:.2f} |" in card


def test_a_pipelines_summary_is_the_rows_of_its_models_summed(tiny_ir):
    """``CompressionSummary.combined``: per precision, the weights of every model's plan, and the bits they store."""
    from optimum_wc.pipeline.summary import CompressionSummary

    asked = {"llama": {"mode": "int4_asym", "group_size": 64, "ratio": 0.8}, "gpt2": {"mode": "int4_sym"}}
    models = {arch: ov.Core().read_model(tiny_ir(arch)) for arch in asked}
    results = {
        arch: compress_model(models[arch], CompressionSettings.from_arguments(**asked[arch]), progress=False)
        for arch in asked
    }
    combined = CompressionSummary.combined([result.summary for result in results.values()])
    assert {row.label for row in combined.rows} == {row.label for r in results.values() for row in r.summary.rows}
    for row in [r for r in combined.rows if r.label != "float"]:
        weights = [
            (arch, w)
            for arch, result in results.items()
            for w in result.plan.weights
            if w.precision is not None and w.precision.label == row.label
        ]
        elements = sum(w.target.num_elements for _, w in weights)
        stored = sum(_stored_bytes(models[arch], w.target.constant_name) for arch, w in weights) * 8
        assert (row.num_parameters, row.num_layers) == (elements, len(weights))
        np.testing.assert_allclose(row.stored_bits * elements, stored, rtol=1e-9, atol=8 * len(weights))
    assert combined.total_parameters == sum(r.summary.total_parameters for r in results.values())
