"""Every field of optimum-intel's OVWeightQuantizationConfig takes effect in ours as it does there (the arguments it
hands to nncf.compress_weights) or is refused by name: none is dropped in silence."""

from __future__ import annotations

import inspect

import nncf
import pytest

from optimum_wc.config.datasets import parse_dataset_name
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from optimum_wc.hf.defaults import resolve_quantization_config

DATA = {"dataset": "wikitext2"}
# field -> (the config's arguments, None or the error ours raises for them)
FIELDS = {
    "bits": ({"bits": 8}, None),
    "sym": ({"bits": 4, "sym": True}, None),
    "group_size": ({"bits": 4, "group_size": 64}, None),
    "tokenizer": ({"bits": 4, "tokenizer": "models/tiny-llama-pydoc", **DATA, "awq": True}, None),
    "dataset": ({"bits": 4, "dataset": "wikitext2:seq_len=64", "awq": True}, None),
    "ratio": ({"bits": 4, "ratio": 0.8}, None),
    "all_layers": ({"bits": 4, "all_layers": True}, None),
    "sensitivity_metric": ({"bits": 4, "ratio": 0.8, "sensitivity_metric": "mean_activation_variance", **DATA}, None),
    "ignored_scope": ({"bits": 4, "ignored_scope": {"names": ["lm_head"], "validate": False}}, None),
    "num_samples": ({"bits": 4, "num_samples": 64, **DATA, "awq": True}, None),
    "quant_method": ({"bits": 4, "quant_method": "awq", **DATA}, None),
    "scale_estimation": ({"bits": 4, "scale_estimation": True, **DATA}, None),
    "dtype": ({"bits": 4, "dtype": "nf4"}, None),
    "gptq": ({"bits": 4, "gptq": True, **DATA}, None),
    "processor": ({"bits": 4, "processor": "some/processor", "dataset": "textvqa", "awq": True}, None),
    "lora_correction": ({"bits": 4, "lora_correction": True, **DATA}, None),
    "backup_precision": ({"bits": 4, "backup_precision": "int8_sym"}, None),
    "statistics_path": ({"bits": 4, "statistics_path": "stats", **DATA, "awq": True}, None),
    "group_size_fallback": ({"bits": 4, "group_size_fallback": "adjust"}, None),
    "dq_group_size": ({"bits": 4, "dq_group_size": 32}, None),
    "advanced_parameters": (
        {
            "bits": 4,
            "advanced_parameters": nncf.AdvancedCompressionParameters(
                min_adjusted_group_size=16, group_size_fallback_mode=nncf.GroupSizeFallbackMode.ADJUST
            ),
        },
        None,
    ),
    "a field nncf does not take": ({"bits": 4, "colour": "red"}, InvalidArgumentError),
}
# not nncf arguments: kept in our config
RUNTIME_ONLY = {"tokenizer": "tokenizer", "processor": "processor", "dq_group_size": "dq_group_size"}


def test_every_field_of_optimum_intels_config_is_here():
    from optimum.intel import OVWeightQuantizationConfig

    fields = [
        n for n in inspect.signature(OVWeightQuantizationConfig.__init__).parameters if n not in ("self", "kwargs")
    ]
    assert sorted(fields) == sorted(f for f in FIELDS if f not in ("advanced_parameters", "a field nncf does not take"))


@pytest.mark.parametrize("field", FIELDS)
def test_each_field_takes_effect_as_in_optimum_intel_or_is_refused_by_name(field):
    from optimum.intel import OVWeightQuantizationConfig

    arguments, error = FIELDS[field]
    theirs = OVWeightQuantizationConfig(**arguments)
    if error is not None:
        name = field if field in arguments else "colour"
        with pytest.raises(error, match=name):
            resolve_quantization_config("not-a-listed-model", None, None, theirs)
        return
    config = resolve_quantization_config("not-a-listed-model", None, None, theirs)
    ours = config.to_compress_kwargs()
    theirs_resolved = CompressionSettings.from_arguments(**theirs.to_nncf_dict(), dataset=ours["dataset"])
    assert CompressionSettings.from_arguments(**ours) == theirs_resolved  # what nncf's arguments resolve to
    if field in RUNTIME_ONLY:
        assert getattr(config, field) == arguments[field]
    if field == "dataset":  # optimum-intel keeps the options apart; our config keeps them in the name
        assert parse_dataset_name(ours["dataset"]) == ("wikitext2", 64) and theirs._dataset_kwargs == {"seq_len": 64}


def test_optimum_intels_quieter_rules_hold():
    """An empty dict asks for nothing; 8-bit weights ignore a dataset and a statistics path without data is dropped
    (optimum-intel does both before it calls nncf); its positional argument order and `weight_only` marker."""
    from optimum.intel import OVWeightQuantizationConfig as Theirs

    import optimum_wc

    assert resolve_quantization_config("not-a-listed-model", None, None, {}) is None
    eight = optimum_wc.WeightCompressionConfig(bits=8, dataset="wikitext2", statistics_path="stats", weight_only=True)
    kwargs = eight.to_compress_kwargs()
    assert kwargs["dataset"] is None and kwargs["advanced_parameters"].statistics_path is None
    assert eight.dataset == "wikitext2" and eight.statistics_path == "stats"  # kept in the saved config
    ours = optimum_wc.OVWeightQuantizationConfig(4, True, 64)
    assert CompressionSettings.from_arguments(**ours.to_compress_kwargs()) == CompressionSettings.from_arguments(
        **Theirs(4, True, 64).to_nncf_dict()
    )
    with pytest.raises(NotYetSupportedError, match="weight_only"):
        optimum_wc.WeightCompressionConfig(bits=8, weight_only=False)
