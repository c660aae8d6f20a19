"""One record per option: every argument of compress_weights reaches the core from WeightCompressionConfig and from
the CLI, and comes back from a saved config unchanged."""

from __future__ import annotations

import inspect

import pytest

import optimum_wc
from optimum_wc import AdvancedCompressionParameters, CompressWeightsMode, IgnoredScope, WeightCompressionConfig
from optimum_wc.cli import build_parser, config_from_args, run_options
from optimum_wc.config.advanced import AdvancedGPTQParameters
from optimum_wc.config.enums import BackupMode, CompressionFormat, GroupSizeFallbackMode, SensitivityMetric
from optimum_wc.config.options import ALGORITHM_FLAGS, OPTIONS, RUN_OPTIONS
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.errors import InvalidArgumentError, UnsupportedArgumentError

DATA = {"dataset": "wikitext2"}
# option -> (other arguments it needs, a value other than its default, the flags that give that value)
SAMPLES = {
    "mode": ({}, CompressWeightsMode.NF4, ["--weight-format", "nf4"]),
    "ratio": ({"mode": "int4_asym"}, 0.8, ["--weight-format", "int4", "--ratio", "0.8"]),
    "group_size": ({"mode": "int4_asym"}, 64, ["--weight-format", "int4", "--group-size", "64"]),
    "ignored_scope": (
        {"mode": "int4_asym"},
        IgnoredScope(patterns=[".*lm_head.*"]),
        ["--weight-format", "int4", "--ignored-scope", ".*lm_head.*"],
    ),
    "all_layers": ({"mode": "int4_asym"}, True, ["--weight-format", "int4", "--all-layers"]),
    "dataset": ({"mode": "int4_asym"}, "wikitext2", ["--weight-format", "int4", "--dataset", "wikitext2"]),
    "sensitivity_metric": (
        {"mode": "int4_asym", **DATA},
        SensitivityMetric.HESSIAN_INPUT_ACTIVATION,
        ["--weight-format", "int4", "--dataset", "wikitext2", "--sensitivity-metric", "hessian_input_activation"],
    ),
    "subset_size": (
        {"mode": "int4_asym", **DATA},
        64,
        ["--weight-format", "int4", "--dataset", "wikitext2", "--num-samples", "64"],
    ),
    "awq": ({"mode": "int4_asym"}, True, ["--weight-format", "int4", "--awq"]),
    "scale_estimation": (
        {"mode": "int4_asym", **DATA},
        True,
        ["--weight-format", "int4", "--dataset", "wikitext2", "--scale-estimation"],
    ),
    "gptq": ({"mode": "int4_asym", **DATA}, True, ["--weight-format", "int4", "--dataset", "wikitext2", "--gptq"]),
    "lora_correction": (
        {"mode": "int4_asym", **DATA},
        True,
        ["--weight-format", "int4", "--dataset", "wikitext2", "--lora-correction"],
    ),
    "backup_mode": (
        {"mode": "int4_asym"},
        BackupMode.INT8_SYM,
        ["--weight-format", "int4", "--backup-precision", "int8_sym"],
    ),
    "advanced_parameters": (
        {"mode": "int4_asym", **DATA},
        AdvancedCompressionParameters(gptq_params=AdvancedGPTQParameters(act_order=True)),
        [
            "--weight-format",
            "int4",
            "--dataset",
            "wikitext2",
            "--advanced-parameters",
            '{"gptq_params": {"act_order": true}}',
        ],
    ),
    "spqr": (
        {"mode": "spqr", **DATA},
        optimum_wc.SpQRConfig(bits=3),
        ["--weight-format", "spqr", "--dataset", "wikitext2", "--spqr-bits", "3"],
    ),
}
# options whose every non-default value the core refuses today: the refusal shows the value reached it
REFUSED = {
    "compression_format": (
        {"mode": "int4_asym"},
        CompressionFormat.FQ,
        UnsupportedArgumentError,
        ["--weight-format", "int4", "--compression-format", "fake_quantize"],
    ),
}
RUN_SAMPLES = {
    "num_workers": (1, ["--num-workers", "1"]),
    "progress": (False, ["--no-progress"]),
    "scratch_dir": ("scratch", ["--scratch-dir", "scratch"]),
}


def _args(flags: list[str]):
    return build_parser().parse_args(["export", "model", "out", *flags])


def test_every_option_has_a_sample_here_and_a_flag_and_is_in_the_config_or_a_run_option():
    names = [option.name for option in OPTIONS]
    assert sorted(names) == sorted([*SAMPLES, *REFUSED, *RUN_SAMPLES])
    assert all(option.flags for option in OPTIONS)
    assert set(RUN_OPTIONS) == set(RUN_SAMPLES)


def test_signatures_are_the_table():
    names = [option.name for option in OPTIONS]
    assert list(inspect.signature(optimum_wc.compress_weights).parameters) == ["model", *names]
    defaults = {n: p.default for n, p in inspect.signature(optimum_wc.compress_weights).parameters.items()}
    assert all(defaults[option.name] == option.default for option in OPTIONS)
    settings_names = list(inspect.signature(CompressionSettings.from_arguments).parameters)
    assert settings_names == [n for n in names if n not in RUN_OPTIONS]
    assert all(f"        {option.name}: " in optimum_wc.compress_weights.__doc__ for option in OPTIONS)


@pytest.mark.parametrize("name", SAMPLES)
def test_each_option_reaches_the_core_from_the_config_and_comes_back(name):
    others, value, _ = SAMPLES[name]
    config = WeightCompressionConfig.from_compress_kwargs(**others, **{name: value})
    assert _same(config.to_compress_kwargs()[name], value)
    again = WeightCompressionConfig.from_dict(config.to_dict())
    assert again == config and _same(again.to_compress_kwargs()[name], value)
    default = WeightCompressionConfig.from_compress_kwargs(**others).to_compress_kwargs()[name]
    assert not _same(default, value)


@pytest.mark.parametrize("name", SAMPLES)
def test_each_option_reaches_the_core_from_the_cli(name):
    _, value, flags = SAMPLES[name]
    config = config_from_args(_args(flags))
    assert _same(config.to_compress_kwargs()[name], value)


@pytest.mark.parametrize("name", REFUSED)
def test_refused_values_reach_the_core_from_the_config_and_the_cli(name):
    others, value, error, flags = REFUSED[name]
    with pytest.raises(error, match=f"`?{name}"):
        WeightCompressionConfig.from_compress_kwargs(**others, **{name: value})
    with pytest.raises(error, match=f"`?{name}"):
        config_from_args(_args(flags))


@pytest.mark.parametrize("name", RUN_SAMPLES)
def test_run_options_come_from_the_cli_and_are_not_config_keys(name):
    value, flags = RUN_SAMPLES[name]
    assert run_options(_args(flags))[name] == value
    with pytest.raises(InvalidArgumentError, match="Unknown quantization config key"):
        WeightCompressionConfig(bits=4, **{name: value})


def test_optimum_intels_shorthands_fold_into_advanced_parameters():
    config = config_from_args(
        _args(["--weight-format", "int4", "--group-size-fallback", "adjust", "--quantization-statistics-path", "stats"])
    )
    advanced = config.advanced_parameters
    assert advanced.group_size_fallback_mode == GroupSizeFallbackMode.ADJUST and advanced.statistics_path == "stats"
    assert config.to_compress_kwargs()["advanced_parameters"].statistics_path is None  # no data: optimum-intel drops it
    assert WeightCompressionConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["advanced_parameters"] == {"statistics_path": "stats", "group_size_fallback_mode": "adjust"}


def test_a_config_does_not_change_the_callers_advanced_parameters():
    mine = AdvancedCompressionParameters()
    WeightCompressionConfig(bits=4, advanced_parameters=mine, group_size_fallback="ignore")
    assert mine.group_size_fallback_mode == GroupSizeFallbackMode.ERROR


def test_bad_advanced_parameters_are_named():
    with pytest.raises(InvalidArgumentError, match=r"`advanced_parameters.gptq_params` has unknown keys \['order'\]"):
        WeightCompressionConfig(bits=4, advanced_parameters={"gptq_params": {"order": True}})
    with pytest.raises(InvalidArgumentError, match="--advanced-parameters must be JSON"):
        config_from_args(_args(["--weight-format", "int4", "--advanced-parameters", "{act_order}"]))


def _same(ours: object, expected: object) -> bool:
    if isinstance(expected, optimum_wc.SpQRConfig):
        return isinstance(ours, optimum_wc.SpQRConfig) and ours.bits == expected.bits
    return ours == expected


@pytest.mark.parametrize("flag", ALGORITHM_FLAGS, ids=lambda flag: flag.name)
def test_each_algorithm_parameter_has_a_flag_that_reaches_the_core_and_comes_back(flag):
    _, attribute, field = flag.key.split(".")
    default = getattr(getattr(AdvancedCompressionParameters(), attribute), field)
    if isinstance(default, bool):
        value, flags = not default, [flag.name if not default else flag.name.replace("--", "--no-", 1)]
    elif isinstance(default, str):  # one of its choices
        value = next(choice for choice in flag.arguments["choices"] if choice != default)
        flags = [flag.name, value]
    else:
        value = default * 2 if default else 1
        flags = [flag.name, str(value)]
    config = config_from_args(_args(["--weight-format", "int4", *flags]))
    again = WeightCompressionConfig.from_dict(config.to_dict())
    for reached in (config, again):
        assert getattr(getattr(reached.to_compress_kwargs()["advanced_parameters"], attribute), field) == value


def test_algorithm_flags_merge_with_the_json_of_advanced_parameters():
    flags = ["--advanced-parameters", '{"gptq_params": {"block_size": 64}}', "--gptq-act-order"]
    gptq = config_from_args(_args(["--weight-format", "int4", *flags])).advanced_parameters.gptq_params
    assert (gptq.block_size, gptq.act_order) == (64, True)
