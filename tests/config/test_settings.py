"""Validation and defaults of compress_weights' arguments: nncf's rules, our error classes, nncf objects accepted."""

from __future__ import annotations

import nncf
import pytest

import openvino as ov
import optimum_wc
from optimum_wc import CompressionSettings, CompressWeightsMode
from optimum_wc.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    OptimumWCError,
    UnsupportedArgumentError,
)

BAD_ARGUMENTS = [
    # (kwargs, error class, text the message must contain)
    ({"mode": 4}, InvalidArgumentTypeError, "`mode`"),
    ({"mode": "int5"}, UnsupportedArgumentError, "`mode`"),
    ({"mode": "adaptive_codebook"}, UnsupportedArgumentError, "ADAPTIVE_CODEBOOK estimates codebooks"),
    ({"mode": "codebook"}, InvalidArgumentError, "needs its codebook"),
    (
        {"mode": "codebook", "advanced_parameters": optimum_wc.AdvancedCompressionParameters(codebook=[1.0, 0.5])},
        InvalidArgumentError,
        "must be sorted",
    ),
    ({"mode": "mxfp4", "group_size": 64}, InvalidArgumentError, "groups of 32"),
    ({"mode": "nvfp4", "group_size": 32}, InvalidArgumentError, "groups of 16"),
    (
        {
            "mode": "mxfp8_e4m3",
            "advanced_parameters": optimum_wc.AdvancedCompressionParameters(group_size_fallback_mode="adjust"),
        },
        InvalidArgumentError,
        "ADJUST",
    ),
    ({"ratio": "0.5", "mode": "int4_sym"}, InvalidArgumentTypeError, "`ratio`"),
    ({"ratio": True, "mode": "int4_sym"}, InvalidArgumentTypeError, "`ratio`"),
    ({"ratio": 1.5, "mode": "int4_sym"}, InvalidArgumentError, "`ratio`"),
    ({"ratio": -0.1, "mode": "int4_sym"}, InvalidArgumentError, "`ratio`"),
    ({"group_size": 64.0, "mode": "int4_sym"}, InvalidArgumentTypeError, "`group_size`"),
    ({"group_size": 0, "mode": "int4_sym"}, InvalidArgumentError, "`group_size`"),
    ({"group_size": -2, "mode": "int4_sym"}, InvalidArgumentError, "`group_size`"),
    ({"all_layers": "yes", "mode": "int4_sym"}, InvalidArgumentTypeError, "`all_layers`"),
    ({"subset_size": 0}, InvalidArgumentError, "`subset_size`"),
    ({"subset_size": "10"}, InvalidArgumentTypeError, "`subset_size`"),
    ({"awq": 1, "mode": "int4_sym"}, InvalidArgumentTypeError, "`awq`"),
    ({"backup_mode": "int4"}, UnsupportedArgumentError, "`backup_mode`"),
    ({"sensitivity_metric": 3, "mode": "int4_sym"}, InvalidArgumentTypeError, "`sensitivity_metric`"),
    (
        {"sensitivity_metric": "hessian_input_activation", "mode": "int4_sym", "ratio": 0.5},
        InvalidArgumentError,
        "dataset",
    ),
    ({"ignored_scope": ["a"]}, InvalidArgumentTypeError, "`ignored_scope`"),
    ({"ignored_scope": optimum_wc.IgnoredScope(names=["does-not-exist"])}, InvalidArgumentError, "does-not-exist"),
    ({"compression_format": "fake_quantize"}, UnsupportedArgumentError, "`compression_format`"),
    (
        {"advanced_parameters": {"group_size_fallback_mode": "ignore"}},
        InvalidArgumentTypeError,
        "`advanced_parameters`",
    ),
    ({"mode": "int8_asym", "ratio": 0.8}, UnsupportedArgumentError, "`ratio`"),
    ({"mode": "int8_sym", "group_size": 64}, UnsupportedArgumentError, "`group_size`"),
    ({"mode": "int8_asym", "all_layers": False}, UnsupportedArgumentError, "all_layers"),
    ({"mode": "int8_asym", "backup_mode": "int8_sym"}, UnsupportedArgumentError, "backup_mode"),
    ({"mode": "int4_sym", "gptq": True}, UnsupportedArgumentError, "`dataset`"),
    ({"mode": "int4_sym", "dataset": [], "ratio": 0.5}, InvalidArgumentError, "`dataset` is empty"),
    ({"mode": "int4_sym", "scale_estimation": True}, UnsupportedArgumentError, "`dataset`"),
    ({"mode": "fp4", "awq": True}, UnsupportedArgumentError, "`mode`=FP4"),
    ({"num_workers": 0}, InvalidArgumentTypeError, "`num_workers`"),
    ({"progress": "yes"}, InvalidArgumentTypeError, "`progress`"),
    ({"scratch_dir": __file__}, InvalidArgumentError, "is not a folder"),
    ({"colour": "red"}, InvalidArgumentTypeError, "unexpected keyword argument"),
]


@pytest.fixture(scope="module")
def llama_model_path(tiny_ir):
    return tiny_ir("llama")


@pytest.mark.parametrize("kwargs, error, text", BAD_ARGUMENTS, ids=[str(k) for k, _, _ in BAD_ARGUMENTS])
def test_bad_argument_raises_before_the_model_changes(kwargs, error, text, llama_model_path):
    model = ov.Core().read_model(llama_model_path)
    before = [(op.get_friendly_name(), op.get_type_name()) for op in model.get_ordered_ops()]
    with pytest.raises(error, match=None) as info:
        optimum_wc.compress_weights(model, **{"progress": False, **kwargs})
    assert text in str(info.value)
    assert isinstance(info.value, OptimumWCError) and isinstance(info.value, (ValueError, TypeError))
    assert [(op.get_friendly_name(), op.get_type_name()) for op in model.get_ordered_ops()] == before
    assert not model.has_rt_info(["nncf", "weight_compression"])


def test_model_must_be_an_openvino_model_or_the_path_of_one(tmp_path):
    with pytest.raises(InvalidArgumentTypeError, match="`model` must be an openvino.Model or the path of an IR"):
        optimum_wc.compress_weights(3.5)
    with pytest.raises(optimum_wc.CorruptModelError, match="openvino_model.xml does not exist"):
        optimum_wc.compress_weights(str(tmp_path))
    with pytest.raises(optimum_wc.UnsupportedArgumentError):  # the arguments are checked before the file is read
        optimum_wc.compress_weights(str(tmp_path), mode="int8_asym", ratio=0.5)


NNCF_REFUSED = [
    {"mode": "int8_asym", "ratio": 0.8},
    {"mode": "int8_sym", "group_size": 64},
    {"mode": "int8_asym", "all_layers": True},
    {"mode": "int8_asym", "sensitivity_metric": "weight_quantization_error"},
    {"mode": "int8_sym", "backup_mode": "int8_sym"},
    {"mode": "int4_sym", "ratio": 1.5},
    {"mode": "int4_asym", "group_size": -2},
    {"mode": "int4_asym", "group_size": 0},
    {"mode": "nf4", "subset_size": 0},
    {"mode": "int4_sym", "ratio": 0.5, "sensitivity_metric": "mean_activation_variance"},
    {"mode": "int4_sym", "gptq": True},
    {"mode": "int4_sym", "scale_estimation": True},
    {"mode": "int4_sym", "group_size": 96},  # does not divide 128 or 256 channels
]


def _as_nncf(kwargs: dict) -> dict:
    enums = {
        "mode": nncf.CompressWeightsMode,
        "backup_mode": nncf.BackupMode,
        "sensitivity_metric": nncf.SensitivityMetric,
    }
    return {k: enums[k](v) if k in enums else v for k, v in kwargs.items()}


@pytest.mark.parametrize("kwargs", NNCF_REFUSED, ids=str)
def test_both_libraries_refuse(kwargs, llama_model_path):
    with pytest.raises(Exception):  # noqa: B017 - nncf raises its own classes
        nncf.compress_weights(ov.Core().read_model(llama_model_path), **_as_nncf(kwargs))
    with pytest.raises(OptimumWCError):
        optimum_wc.compress_weights(ov.Core().read_model(llama_model_path), progress=False, **kwargs)


def test_invalid_group_size_lists_every_layer_as_nncf_does(llama_model_path):
    import re

    with pytest.raises(Exception) as reference:  # noqa: B017
        nncf.compress_weights(
            ov.Core().read_model(llama_model_path), mode=nncf.CompressWeightsMode.INT4_ASYM, group_size=96
        )
    with pytest.raises(optimum_wc.InvalidGroupSizeError) as ours:
        optimum_wc.compress_weights(
            ov.Core().read_model(llama_model_path), mode="int4_asym", group_size=96, progress=False
        )
    listed = re.compile(r'"([^"]+)" \(channel size: (\d+)\)')
    assert len(listed.findall(str(ours.value))) == 14  # 7 MatMuls in each of 2 layers; lm_head stays INT8
    assert sorted(listed.findall(str(ours.value))) == sorted(listed.findall(str(reference.value)))
    assert "group_size_fallback_mode" in str(ours.value)


def test_defaults_resolved_like_nncf():
    int8 = CompressionSettings.from_arguments()
    assert (int8.mode, int8.group_size, int8.ratio, int8.backup_mode) == (
        CompressWeightsMode.INT8_ASYM,
        -1,
        1,
        "int8_asym",
    )
    int4 = CompressionSettings.from_arguments(mode="int4_sym", ratio=0)
    assert (int4.group_size, int4.ratio, int4.all_layers, int4.sensitivity_metric.value) == (
        128,
        1,
        False,
        "weight_quantization_error",
    )
    assert int4.rt_info()["ratio"] == "1" and int4.rt_info()["ignored_scope"] == "[]"
    assert CompressionSettings.from_arguments(mode="int4_sym", ratio=0.8).rt_info()["ratio"] == "0.8"


def test_advanced_parameters_text_matches_nncf():
    from nncf.quantization.advanced_parameters import convert_to_dict_recursively

    ours = optimum_wc.AdvancedCompressionParameters(group_size_fallback_mode="adjust", min_adjusted_group_size=16)
    theirs = nncf.AdvancedCompressionParameters(
        group_size_fallback_mode=nncf.GroupSizeFallbackMode.ADJUST, min_adjusted_group_size=16
    )
    assert str(ours.to_dict()) == str(convert_to_dict_recursively(theirs))
    assert str(nncf.AdvancedCompressionParameters()) and str(
        optimum_wc.AdvancedCompressionParameters().to_dict()
    ) == str(convert_to_dict_recursively(nncf.AdvancedCompressionParameters()))


def test_nncf_objects_are_accepted():
    settings = CompressionSettings.from_arguments(
        mode=nncf.CompressWeightsMode.NF4,
        backup_mode=nncf.BackupMode.INT8_SYM,
        sensitivity_metric=nncf.SensitivityMetric.WEIGHT_QUANTIZATION_ERROR,
        ignored_scope=nncf.IgnoredScope(names=["a"], patterns=["b.*"], validate=False),
        advanced_parameters=nncf.AdvancedCompressionParameters(
            group_size_fallback_mode=nncf.GroupSizeFallbackMode.IGNORE
        ),
    )
    assert settings.mode is CompressWeightsMode.NF4 and settings.backup_mode.name == "INT8_SYM"
    assert settings.ignored_scope == optimum_wc.IgnoredScope(names=["a"], patterns=["b.*"], validate=False)
    assert settings.advanced_parameters.group_size_fallback_mode.name == "IGNORE"
    assert settings.rt_info()["ignored_scope/names"] == "['a']"


def test_strings_match_names_and_values_case_insensitively():
    assert CompressionSettings.from_arguments(mode="INT4_ASYM").mode is CompressWeightsMode.INT4_ASYM
    assert CompressionSettings.from_arguments(mode="nf4").mode is CompressWeightsMode.NF4
