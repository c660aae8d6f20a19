"""Data-aware mixed precision: the same INT4/INT8 assignment as nncf for the same calibration samples."""

from __future__ import annotations

import nncf
import pytest

from helpers import calibration_items
import openvino as ov
import optimum_wc
from optimum_wc.pipeline.rt_info import read_layer_records
from parity import compare_ir, compress_and_save

METRICS = [
    "max_activation_variance",
    "mean_activation_variance",
    "mean_activation_magnitude",
    "hessian_input_activation",
]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("arch, ratio, all_layers", [("llama", 0.5, False), ("qwen2", 0.8, True), ("gpt2", 0.6, False)])
def test_identical_to_nncf(arch, ratio, all_layers, metric, tiny_ir, tmp_path):
    xml = tiny_ir(arch)
    common = {"ratio": ratio, "all_layers": all_layers}
    reference = compress_and_save(
        xml,
        tmp_path / "nncf",
        "nncf",
        mode=nncf.CompressWeightsMode.INT4_SYM,
        dataset=nncf.Dataset(calibration_items()),
        sensitivity_metric=nncf.SensitivityMetric(metric),
        **common,
    )
    ours = compress_and_save(
        xml,
        tmp_path / "ours",
        "optimum_wc",
        mode="int4_sym",
        dataset=nncf.Dataset(calibration_items()),
        sensitivity_metric=metric,
        **common,
    )
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


def _assignment(model: ov.Model) -> dict[str, str]:
    return {name: record["mode"] for name, record in read_layer_records(model).items()}


def test_data_aware_metrics_change_the_assignment(tiny_ir):
    """The parity above is not vacuous: the statistics decide which layers stay in INT8."""
    xml = tiny_ir("llama")
    assignments = []
    for kwargs in [{}, {"dataset": calibration_items(), "sensitivity_metric": "hessian_input_activation"}]:
        model = ov.Core().read_model(xml)
        optimum_wc.compress_weights(model, mode="int4_sym", ratio=0.5, progress=False, **kwargs)
        assignments.append(_assignment(model))
    assert assignments[0] != assignments[1]


def test_dataset_defaults_to_max_activation_variance_and_accepts_plain_lists(tiny_ir):
    model = ov.Core().read_model(tiny_ir("opt"))
    optimum_wc.compress_weights(model, mode="nf4", ratio=0.7, dataset=calibration_items(), progress=False)
    assert model.get_rt_info(["nncf", "weight_compression", "sensitivity_metric"]).value == "max_activation_variance"


@pytest.mark.parametrize(
    "dataset, error, text",
    [
        ([], optimum_wc.InvalidArgumentError, "empty"),
        ("wikitext2", optimum_wc.InvalidArgumentTypeError, "`dataset`"),
        (42, optimum_wc.InvalidArgumentTypeError, "`dataset`"),
    ],
    ids=["empty", "text", "number"],
)
def test_bad_datasets_are_refused_before_any_change(dataset, error, text, tiny_ir):
    model = ov.Core().read_model(tiny_ir("llama"))
    with pytest.raises(error, match=text):
        optimum_wc.compress_weights(model, mode="int4_sym", ratio=0.5, dataset=dataset, progress=False)
    assert not model.has_rt_info(["nncf", "weight_compression"])
