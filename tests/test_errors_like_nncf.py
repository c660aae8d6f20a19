"""Each refusal of compress_weights has the name of the error nncf raises for it (users catch nncf's names)."""

from __future__ import annotations

import nncf
import numpy as np
import pytest

from golden import golden_model
import optimum_wc

CASES = [
    {"ratio": 1.5, "mode": "int4_sym"},
    {"group_size": 0, "mode": "int4_sym"},
    {"group_size": -2, "mode": "int4_sym"},
    {"subset_size": 0},
    {"backup_mode": "int4"},
    {"sensitivity_metric": "hessian_input_activation", "mode": "int4_sym", "ratio": 0.5},
    {"ignored_scope": {"names": ["does-not-exist"]}},
    {"compression_format": "fake_quantize"},
    {"mode": "int8_asym", "ratio": 0.8},
    {"mode": "int8_sym", "group_size": 64},
    {"mode": "int8_asym", "all_layers": False},
    {"mode": "int8_asym", "backup_mode": "int8_sym"},
    {"mode": "int4_sym", "gptq": True},
    {"mode": "int4_sym", "scale_estimation": True},
    {"mode": "int4_sym", "group_size": 64},
    {"mode": "int4_sym", "lora_correction": True, "gptq": True, "dataset": "items"},
    {"mode": "mxfp4", "group_size": 64},
    {"mode": "nvfp4", "group_size": 32},
    {"mode": "mxfp8_e4m3", "advanced_parameters": {"group_size_fallback_mode": "adjust"}},
    {"mode": "fp4", "awq": True},
    {"mode": "fp8_e4m3", "scale_estimation": True, "dataset": "items"},
    {"mode": "codebook"},
    {"mode": "codebook", "advanced_parameters": {"codebook": np.array([1.0, 0.5], np.float32)}},
    {"mode": "codebook", "advanced_parameters": {"codebook": np.array([[0.0, 1.0]], np.float32)}},
    {"mode": "cb4", "advanced_parameters": {"codebook": np.array([1.0], np.float32)}},
]


def _arguments(library, case: dict) -> dict:
    arguments = dict(case)
    enums = {
        "mode": "CompressWeightsMode",
        "backup_mode": "BackupMode",
        "sensitivity_metric": "SensitivityMetric",
        "compression_format": "CompressionFormat",
    }
    for key, enum in enums.items():
        if key in arguments and arguments[key] != "int4":  # no BackupMode is "int4": passed as it is
            arguments[key] = getattr(library, enum)(arguments[key])
    if "advanced_parameters" in arguments:
        fields = dict(arguments["advanced_parameters"])
        if "group_size_fallback_mode" in fields:
            fields["group_size_fallback_mode"] = library.GroupSizeFallbackMode(fields["group_size_fallback_mode"])
        arguments["advanced_parameters"] = library.AdvancedCompressionParameters(**fields)
    if "ignored_scope" in arguments:
        arguments["ignored_scope"] = library.IgnoredScope(**arguments["ignored_scope"])
    if arguments.get("dataset") == "items":
        arguments["dataset"] = nncf.Dataset([{"input_ids": np.zeros((1, 3), np.int64)}])
    return arguments


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_error_has_nncfs_name(case):
    with pytest.raises(Exception) as theirs:
        nncf.compress_weights(golden_model(), **_arguments(nncf, case))
    with pytest.raises(optimum_wc.OptimumWCError) as ours:
        optimum_wc.compress_weights(golden_model(), progress=False, **_arguments(optimum_wc, case))
    assert type(theirs.value).__module__.startswith("nncf")
    assert type(ours.value).__name__ == type(theirs.value).__name__
    assert isinstance(ours.value, getattr(optimum_wc, type(theirs.value).__name__))
