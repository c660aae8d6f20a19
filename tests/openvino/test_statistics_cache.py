"""statistics_path: the first run saves the activation statistics, a second run with the same inputs reuses them
and writes the same model; other calibration items never reuse them; the rt_info stays nncf's."""

from __future__ import annotations

import nncf
import pytest

from helpers import calibration_items
import optimum_wc
from optimum_wc import compress as compress_module
from optimum_wc.config.advanced import AdvancedCompressionParameters
from optimum_wc.pipeline import data_aware
from parity import compare_ir, compress_and_save

CASES = {
    "awq+se": ({"awq": True, "scale_estimation": True}, data_aware, "input_statistics", "input_means-"),
    "hessian-metric": (
        {"ratio": 0.6, "sensitivity_metric": "hessian_input_activation"},
        compress_module,
        "collect_statistics",
        "hessian_input_activation-",
    ),
}


def _fail(*args, **kwargs):
    raise AssertionError("statistics were collected again")


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_second_run_reuses_the_saved_statistics_and_writes_the_same_model(case, tiny_ir, tmp_path, monkeypatch):
    options, module, collector, prefix = CASES[case]
    xml = tiny_ir("llama")
    cache = tmp_path / "stats"
    advanced = AdvancedCompressionParameters(statistics_path=str(cache))
    common = dict(mode="int4_sym", group_size=32, dataset=calibration_items(), **options)
    plain = compress_and_save(xml, tmp_path / "plain", "optimum_wc", **common)
    first = compress_and_save(xml, tmp_path / "first", "optimum_wc", advanced_parameters=advanced, **common)
    saved = sorted(p.name for p in cache.iterdir())
    assert len(saved) == 1 and saved[0].startswith(prefix) and saved[0].endswith(".npz")

    with monkeypatch.context() as patch:
        patch.setattr(module, collector, _fail)
        second = compress_and_save(xml, tmp_path / "second", "optimum_wc", advanced_parameters=advanced, **common)
    assert compare_ir(first, second).identical
    assert open(first.with_suffix(".bin"), "rb").read() == open(plain.with_suffix(".bin"), "rb").read()

    # other calibration items: a new file, never the saved statistics
    other = dict(common, dataset=calibration_items(seed=5))
    compress_and_save(xml, tmp_path / "other", "optimum_wc", advanced_parameters=advanced, **other)
    assert len(list(cache.iterdir())) == 2


def test_same_ir_as_nncf_with_statistics_path(tiny_ir, tmp_path):
    xml = tiny_ir("llama")
    advanced = {"statistics_path": str(tmp_path / "stats")}
    items = calibration_items()
    reference = compress_and_save(
        xml,
        tmp_path / "nncf",
        "nncf",
        mode=nncf.CompressWeightsMode.INT4_SYM,
        group_size=32,
        awq=True,
        dataset=nncf.Dataset(items),
        advanced_parameters=nncf.AdvancedCompressionParameters(**advanced),
    )
    ours = compress_and_save(
        xml,
        tmp_path / "ours",
        "optimum_wc",
        mode="int4_sym",
        group_size=32,
        awq=True,
        dataset=items,
        advanced_parameters=optimum_wc.AdvancedCompressionParameters(**advanced),
    )
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()
