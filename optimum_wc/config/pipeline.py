"""``PipelineCompressionConfig``: a config per OpenVINO model of a model made of several (encoder and decoder,
vision and language parts, the components of a diffusion pipeline), as optimum-intel's
``OVPipelineQuantizationConfig``.

Each OpenVINO model named in ``quantization_configs`` is compressed with its config; the others with
``default_config``, or left as they are when it is None. The dict form is optimum-intel's: ``{"quantization_configs":
{name: config dict}, "default_config": config dict}``, with each config dict in either vocabulary.
"""

from __future__ import annotations

from typing import Any

from optimum_wc.config.quantization import CONFIG_FORMAT_VERSION, WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, NotYetSupportedError
from optimum_wc.version import __version__

# optimum-intel's pipeline-level fields, which it pulls up from the per-model configs (we read them there)
PULLED_UP = ("num_samples", "dataset", "tokenizer", "processor")
RECORD_KEYS = ("library", "version", "format_version")


def weight_config(value: Any, where: str) -> WeightCompressionConfig:
    """``value`` (our config, optimum-intel's ``OVWeightQuantizationConfig``, or a dict in either vocabulary) as a
    :class:`WeightCompressionConfig`; ``where`` names it in errors."""
    if isinstance(value, WeightCompressionConfig):
        return value
    if isinstance(value, dict) and "_dataset_kwargs" not in value:
        return WeightCompressionConfig.from_dict(value)
    kind = type(value).__name__
    if kind in ("OVWeightQuantizationConfig", "dict"):  # a dict with `_dataset_kwargs` is optimum-intel's to_dict()
        return WeightCompressionConfig.from_optimum_intel(value)
    if kind in ("OVQuantizationConfig", "OVMixedQuantizationConfig"):
        raise NotYetSupportedError(
            f"{where} is an {kind}: quantization of activations is not weight compression, which is all optimum-wc "
            "does; give an OVWeightQuantizationConfig (or a dict of its fields) for this model."
        )
    raise InvalidArgumentTypeError(
        f"{where} must be a WeightCompressionConfig, an OVWeightQuantizationConfig or a dict, got {kind}."
    )


class PipelineCompressionConfig:
    """A :class:`WeightCompressionConfig` for each OpenVINO model of a multi-model pipeline, by its name
    (``"encoder"``, ``"decoder"``, ``"lm_model"``, ``"vision_embeddings_model"``, ``"unet"``, ...).

    Args:
        quantization_configs: OpenVINO model name -> its config (ours, optimum-intel's, or a dict of either).
        default_config: The config of the models not named; None leaves them uncompressed.
        **kwargs: optimum-intel's pipeline-level ``num_samples``, ``dataset``, ``tokenizer`` and ``processor``,
            which it pulls up from the per-model configs: taken where a per-model config carries the field.
    """

    def __init__(
        self,
        quantization_configs: dict[str, Any],
        default_config: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(quantization_configs, dict) or not all(isinstance(k, str) for k in quantization_configs):
            raise InvalidArgumentTypeError(
                "`quantization_configs` must be a dict of OpenVINO model name -> config, got "
                f"{type(quantization_configs).__name__}."
            )
        self.quantization_configs = {
            name: weight_config(value, f"`quantization_configs[{name!r}]`")
            for name, value in quantization_configs.items()
        }
        self.default_config = None if default_config is None else weight_config(default_config, "`default_config`")
        self._check_pulled_up(kwargs)

    def _check_pulled_up(self, kwargs: dict[str, Any]) -> None:
        unknown = sorted(set(kwargs) - set(PULLED_UP) - set(RECORD_KEYS) - {"ignored_scope", "_dataset_kwargs"})
        if unknown:
            raise InvalidArgumentError(
                f"PipelineCompressionConfig got unknown field(s) {unknown}; it takes `quantization_configs`, "
                f"`default_config` and {', '.join(f'`{k}`' for k in PULLED_UP)}."
            )
        if kwargs.get("ignored_scope") is not None:
            raise InvalidArgumentError(
                "`ignored_scope` is per OpenVINO model: set it in the config of each model in "
                "`quantization_configs` (optimum-intel ignores a pipeline-level one)."
            )
        configs = self.configs()
        counts = {config.num_samples for config in configs if config.dataset is not None and config.takes_data}
        if kwargs.get("num_samples") is not None and counts - {kwargs["num_samples"]}:
            raise NotYetSupportedError(
                f"A pipeline-level `num_samples` ({kwargs['num_samples']}) that differs from the per-model ones "
                f"({sorted(counts, key=str)}): optimum-intel draws the largest for every model; set the same "
                "`num_samples` in each config."
            )
        for key in PULLED_UP:
            # optimum-intel pulls these up from the per-model configs: one that none of them carries would be lost
            if kwargs.get(key) is not None and all(getattr(config, key, None) is None for config in configs):
                raise NotYetSupportedError(
                    f"A pipeline-level `{key}` ({kwargs[key]!r}) that no per-model config carries: set `{key}` in "
                    "the config of each model that takes it."
                )

    def configs(self) -> list[WeightCompressionConfig]:
        """Every config this one holds: the per-model ones, then the default."""
        extra = [] if self.default_config is None else [self.default_config]
        return list(self.quantization_configs.values()) + extra

    def for_model(self, name: str) -> WeightCompressionConfig | None:
        """The config of the OpenVINO model ``name`` (None: it is left as it is)."""
        return self.quantization_configs.get(name, self.default_config)

    def checked_settings(self) -> None:
        """Each config's checks (see :meth:`WeightCompressionConfig.checked_settings`), before any work."""
        for config in self.configs():
            config.checked_settings()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in optimum-intel's layout and our vocabulary; :meth:`from_dict` rebuilds an equal config."""
        return {
            "quantization_configs": {name: config.to_dict() for name, config in self.quantization_configs.items()},
            "default_config": None if self.default_config is None else self.default_config.to_dict(),
            "library": "optimum-wc",
            "version": __version__,
            "format_version": CONFIG_FORMAT_VERSION,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PipelineCompressionConfig:
        if not isinstance(values, dict) or "quantization_configs" not in values:
            raise InvalidArgumentTypeError("A pipeline config must be a dict with a `quantization_configs` key.")
        return cls(**values)

    @classmethod
    def from_optimum_intel(cls, values: Any) -> PipelineCompressionConfig:
        """The config of an ``OVPipelineQuantizationConfig`` (the object, or a dict of its fields)."""
        if isinstance(values, dict):
            return cls.from_dict(values)
        configs = {name: _intel_weight_config(config, name) for name, config in values.quantization_configs.items()}
        default = None if values.default_config is None else _intel_weight_config(values.default_config, "default")
        return cls(configs, default, **{key: getattr(values, key, None) for key in PULLED_UP})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PipelineCompressionConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"PipelineCompressionConfig({self.quantization_configs!r}, default_config={self.default_config!r})"


def _intel_weight_config(config: Any, name: str) -> WeightCompressionConfig:
    return weight_config(config, f"The config of {name!r}")


def each_config(config: WeightCompressionConfig | PipelineCompressionConfig) -> list[WeightCompressionConfig]:
    """The configs ``config`` holds: itself, or a pipeline's per-model and default configs."""
    return config.configs() if isinstance(config, PipelineCompressionConfig) else [config]


def check_model_names(config: PipelineCompressionConfig, names: list[str], owner: str) -> None:
    """Refuses a per-model config for a model that ``owner`` (a model class with OpenVINO models ``names``) does not
    have, where optimum-intel would leave it unused."""
    unknown = sorted(set(config.quantization_configs) - set(names))
    if unknown:
        raise InvalidArgumentError(
            f"`quantization_configs` names {unknown}, which {owner} does not have; its OpenVINO models are "
            f"{', '.join(repr(name) for name in names)}."
        )


def is_pipeline_dict(values: Any) -> bool:
    """Whether ``values`` is a pipeline config in dict form (optimum-intel tells them apart by this key)."""
    return isinstance(values, dict) and "quantization_configs" in values


class OVPipelineQuantizationConfig(PipelineCompressionConfig):
    """optimum-intel's name for :class:`PipelineCompressionConfig`."""
