"""WeightCompressionConfig: both vocabularies, validation at construction, lossless dict/JSON round trips."""

from __future__ import annotations

import pytest

import optimum_wc
from optimum_wc import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError, UnsupportedArgumentError

OPTIMUM_INTEL_DICTS = [
    {"bits": 4},
    {"bits": 8},
    {"bits": 4, "sym": True, "group_size": 64, "ratio": 0.8},
    {"bits": 4, "dtype": "nf4", "group_size": 32, "all_layers": True},
    {"dtype": "int4", "backup_precision": "int8_sym", "ratio": 0.5, "sensitivity_metric": "weight_quantization_error"},
    {"bits": 4, "group_size": 96, "group_size_fallback": "adjust", "ignored_scope": {"patterns": [".*lm_head.*"]}},
    {"bits": 8, "sym": True, "weight_format": "int8"},
]


@pytest.mark.parametrize("values", OPTIMUM_INTEL_DICTS, ids=str)
def test_optimum_intel_dicts_mean_what_optimum_intel_passes_to_nncf(values):
    from optimum.intel import OVWeightQuantizationConfig

    theirs = OVWeightQuantizationConfig(**values).to_nncf_dict()
    ours = WeightCompressionConfig(**values).to_compress_kwargs()
    assert ours["mode"].value == theirs["mode"].value
    for key in ("ratio", "group_size", "all_layers", "subset_size", "awq", "scale_estimation", "gptq"):
        assert ours[key] == theirs[key], key
    for key in ("sensitivity_metric", "backup_mode"):
        assert (ours[key] and ours[key].value) == (theirs[key] and theirs[key].value), key
    their_scope = theirs["ignored_scope"]
    assert (ours["ignored_scope"].patterns if ours["ignored_scope"] else []) == (
        their_scope.patterns if their_scope else []
    )
    if "advanced_parameters" in theirs:
        fallback = theirs["advanced_parameters"].group_size_fallback_mode.value
        assert ours["advanced_parameters"].group_size_fallback_mode.value == fallback


def test_our_vocabulary_and_theirs_build_equal_configs():
    assert WeightCompressionConfig(mode="int4_sym", group_size=64) == WeightCompressionConfig(
        bits=4, sym=True, group_size=64
    )
    assert WeightCompressionConfig(mode="nf4") == WeightCompressionConfig(bits=4, dtype="nf4")


@pytest.mark.parametrize(
    "dtype, bits, mode",
    [
        ("mxfp4", 4, "mxfp4"),
        ("mxfp4", None, "mxfp4"),
        ("mxfp8_e4m3", None, "mxfp8_e4m3"),
        ("fp8_e4m3", 8, "fp8_e4m3"),
        ("fp4", None, "fp4"),
        ("nvfp4", 4, "nvfp4"),
        ("int3", None, "int3_sym"),
        ("int2", 2, "int2_sym"),
        ("cb4", 4, "cb4"),
    ],
)
def test_dtype_names_a_mode(dtype, bits, mode):
    config = WeightCompressionConfig(dtype=dtype, bits=bits)
    assert config.mode == mode
    assert WeightCompressionConfig.from_dict(config.to_dict()) == config
    assert WeightCompressionConfig(backup_mode="none", bits=4) == WeightCompressionConfig(
        backup_precision="none", bits=4
    )


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "int4_asym", "group_size": 64, "ratio": 0.8, "all_layers": True, "backup_mode": "int8_sym"},
        {"bits": 4, "ignored_scope": {"names": ["a"], "types": ["MatMul"], "validate": False}, "num_samples": 64},
        {"mode": "nf4", "group_size_fallback": "ignore", "dq_group_size": 32, "tokenizer": "models/tiny"},
    ],
    ids=str,
)
def test_dict_and_json_round_trips_are_lossless(values, tmp_path):
    config = WeightCompressionConfig(**values)
    assert WeightCompressionConfig.from_dict(config.to_dict()) == config
    config.to_json_file(tmp_path / "config.json")
    assert WeightCompressionConfig.from_json_file(tmp_path / "config.json") == config
    assert config.to_dict()["version"] == optimum_wc.__version__ and config.to_dict()["format_version"] == 1


@pytest.mark.parametrize(
    "values, error, text",
    [
        ({"bits": 4, "colour": "red"}, InvalidArgumentError, "Known keys"),
        ({"bits": 3}, InvalidArgumentError, "`bits`"),
        ({"bits": 8, "dtype": "nf4"}, InvalidArgumentError, "nf4"),
        ({"bits": 8, "dtype": "mxfp4"}, InvalidArgumentError, "needs `bits`=4"),
        ({"dtype": "int3", "sym": False}, InvalidArgumentError, "symmetric only"),
        ({"dtype": "fp5"}, InvalidArgumentError, "`dtype` must be one of"),
        ({"bits": 8, "dtype": "cb4"}, InvalidArgumentError, "needs `bits`=4"),
        ({"bits": 8, "ratio": 0.5}, UnsupportedArgumentError, "`ratio`"),
        ({"bits": 4, "ratio": 2.0}, InvalidArgumentError, "`ratio`"),
        ({"bits": 4, "group_size": 0}, InvalidArgumentError, "`group_size`"),
        ({"mode": "int4_sym", "bits": 8}, InvalidArgumentError, "contradicts"),
        ({"bits": 4, "num_samples": 0}, InvalidArgumentError, "`num_samples`"),
        ({"bits": 4, "backup_precision": "int4"}, UnsupportedArgumentError, "`backup_mode`"),
        ({"bits": 4, "quant_method": "hybrid"}, NotYetSupportedError, "hybrid"),
        ({"bits": 4, "tokenizer": 3}, optimum_wc.InvalidArgumentTypeError, "`tokenizer`"),
    ],
    ids=str,
)
def test_invalid_configs_fail_at_construction(values, error, text):
    with pytest.raises(error, match=text):
        WeightCompressionConfig(**values)


def test_data_aware_options_wait_for_their_data_as_in_optimum_intel():
    """optimum-intel's config takes them without a dataset (OVQuantizer may bring the data); compressing with the
    config alone meets nncf's error, before any work."""
    from optimum.intel import OVWeightQuantizationConfig

    for values in ({"bits": 4, "lora_correction": True}, {"bits": 4, "scale_estimation": True}):
        OVWeightQuantizationConfig(**values)
        config = WeightCompressionConfig(**values)
        with pytest.raises(UnsupportedArgumentError, match="need a calibration `dataset`"):
            config.checked_settings()
        WeightCompressionConfig(**values, dataset="wikitext2").checked_settings()
