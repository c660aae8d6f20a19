"""The group-size fallback: the same layers adjusted, ignored or sent to the backup precision as nncf, for any
``min_adjusted_group_size`` nncf takes, and logged with their names and sizes."""

from __future__ import annotations

import logging

import nncf
import pytest

from golden import golden_model
import openvino as ov
import optimum_wc
from parity import compare_ir


def _save(model: ov.Model, folder) -> object:
    folder.mkdir(parents=True)
    ov.save_model(model, folder / "m.xml", compress_to_fp16=False)
    return folder / "m.xml"


@pytest.mark.parametrize(
    "fallback, minimum",
    [("adjust", 0), ("adjust", 16.0), ("adjust", -3), ("adjust", 64), ("ignore", 32)],
)
def test_fallback_identical_to_nncf(fallback, minimum, tmp_path, caplog):
    """The golden graph's ``down`` projections have 160 inputs and ``odd.out`` 96, which groups of 64 do not divide
    (largest power-of-two divisor 32 for both)."""
    reference = nncf.compress_weights(
        golden_model(),
        mode=nncf.CompressWeightsMode.INT4_SYM,
        group_size=64,
        advanced_parameters=nncf.AdvancedCompressionParameters(
            group_size_fallback_mode=nncf.GroupSizeFallbackMode(fallback), min_adjusted_group_size=minimum
        ),
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="optimum_wc"):
        ours = optimum_wc.compress_weights(
            golden_model(),
            mode="int4_sym",
            group_size=64,
            advanced_parameters=optimum_wc.AdvancedCompressionParameters(
                group_size_fallback_mode=fallback, min_adjusted_group_size=minimum
            ),
            progress=False,
        )
    report = compare_ir(_save(reference, tmp_path / "nncf"), _save(ours, tmp_path / "ours"))
    assert report.identical, report.describe()
    log = caplog.text
    if fallback == "ignore":
        assert "cannot be applied to 3 layer(s)" in log and "odd.in" not in log
        assert "layer1.down (160 channels)" in log and "odd.out (96 channels)" in log
    elif minimum <= 32:
        assert "adjusted group sizes are used" in log and "odd.out (96 channels): 32" in log
    else:
        assert "int8_asym backup mode" in log and "layer0.down (160 channels; 32 < min_adjusted_group_size)" in log


def test_min_adjusted_group_size_must_be_a_number():
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="min_adjusted_group_size"):
        optimum_wc.AdvancedCompressionParameters(min_adjusted_group_size="16")
