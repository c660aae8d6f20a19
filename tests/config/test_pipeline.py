"""PipelineCompressionConfig: optimum-intel's OVPipelineQuantizationConfig, object or dict, gives each OpenVINO
model the config optimum-intel hands nncf for it; what it would drop or cannot mean is refused."""

from __future__ import annotations

import pytest

from optimum_wc import NotYetSupportedError, PipelineCompressionConfig
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError

PER_MODEL = {
    "lm_model": {"bits": 4, "sym": False, "group_size": 64, "ratio": 0.8, "backup_precision": "int8_sym"},
    "text_embeddings_model": {"bits": 8, "sym": True},
}


def _settings(config) -> CompressionSettings:
    return CompressionSettings.from_arguments(**config.to_compress_kwargs())


@pytest.mark.parametrize("form", ["object", "to_dict", "our-dict"])
def test_each_model_gets_what_optimum_intel_hands_nncf(form):
    from optimum.intel import OVPipelineQuantizationConfig, OVWeightQuantizationConfig

    theirs = OVPipelineQuantizationConfig(
        {name: OVWeightQuantizationConfig(**values) for name, values in PER_MODEL.items()},
        default_config=OVWeightQuantizationConfig(bits=8, sym=False),
    )
    given = {
        "object": theirs,
        "to_dict": theirs.to_dict(),
        "our-dict": {"quantization_configs": PER_MODEL, "default_config": {"bits": 8}},
    }[form]
    ours = PipelineCompressionConfig.from_optimum_intel(given)
    for name, config in theirs.quantization_configs.items():
        assert _settings(ours.for_model(name)) == CompressionSettings.from_arguments(**config.to_nncf_dict())
    # optimum-intel's to_dict() writes its default config as {"quant_method": ...}: INT8_ASYM when read back, too
    assert _settings(ours.for_model("vision_embeddings_model")) == CompressionSettings.from_arguments(mode="int8_asym")
    assert PipelineCompressionConfig.from_dict(ours.to_dict()) == ours


def test_models_without_a_config_are_left_alone():
    config = PipelineCompressionConfig({"encoder": {"bits": 4}})
    assert config.for_model("decoder") is None and config.for_model("encoder").bits == 4


@pytest.mark.parametrize(
    "args, error, text",
    [
        (([{"bits": 4}],), InvalidArgumentTypeError, "must be a dict"),
        (({"lm_model": 4},), InvalidArgumentTypeError, r"`quantization_configs\['lm_model'\]`"),
        (({"lm_model": {"bits": 4}}, {"bitz": 8}), InvalidArgumentError, "bitz"),
        (({"lm_model": {"bits": 4}}, None, {"ignored_scope": {"names": ["a"]}}), InvalidArgumentError, "per OpenVINO"),
        (({"lm_model": {"bits": 4}}, None, {"dataset": "wikitext2"}), NotYetSupportedError, "pipeline-level"),
        (({"lm_model": {"bits": 4}}, None, {"smooth_quant_alpha": 0.5}), InvalidArgumentError, "smooth_quant_alpha"),
    ],
    ids=["not-a-dict", "not-a-config", "bad-default", "pipeline-scope", "dataset-nobody-carries", "unknown-field"],
)
def test_what_it_cannot_mean_is_refused(args, error, text):
    configs, default, extra = (*args, None, None, None)[:3]
    with pytest.raises(error, match=text):
        PipelineCompressionConfig(configs, default, **(extra or {}))


def test_activation_quantization_for_a_model_is_refused():
    from optimum.intel import OVQuantizationConfig

    with pytest.raises(NotYetSupportedError, match="OVQuantizationConfig"):
        PipelineCompressionConfig({"unet": OVQuantizationConfig()})


def test_pipeline_level_data_optimum_intel_would_use_is_refused_in_either_form():
    from optimum.intel import OVPipelineQuantizationConfig, OVWeightQuantizationConfig

    dataset_for_all = OVPipelineQuantizationConfig({"model": OVWeightQuantizationConfig(bits=4)}, dataset="wikitext2")
    for given in (dataset_for_all, dataset_for_all.to_dict()):
        with pytest.raises(NotYetSupportedError, match="pipeline-level `dataset`"):
            PipelineCompressionConfig.from_optimum_intel(given)
    per_model = OVWeightQuantizationConfig(bits=4, ratio=0.8, dataset="wikitext2", num_samples=32)
    more_samples = OVPipelineQuantizationConfig({"model": per_model}, num_samples=64)
    with pytest.raises(NotYetSupportedError, match="num_samples"):  # optimum-intel would draw 64 for the model
        PipelineCompressionConfig.from_optimum_intel(more_samples)
    same = PipelineCompressionConfig.from_optimum_intel(OVPipelineQuantizationConfig({"model": per_model}))
    assert same.for_model("model").num_samples == 32
