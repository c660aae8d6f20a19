"""What ``from_pretrained``'s compression arguments ask for, with optimum-intel's tuned configs for popular models,
found as optimum-intel finds them.

optimum-intel keeps a table of 4-bit (and a few 8-bit) weight compression configs per model id and applies an entry
when the user asks for no more than a bit width: ``quantization_config={"bits": 4}`` or ``{"bits": 8}`` in Python,
``--weight-format int4``/``int8`` with no other compression flag on the command line. The id is looked up as given,
then as the ``_name_or_path`` in a local folder's ``config.json``, then by the folder's name alone
(``.../Llama-2-7b-hf``). Without an entry, 4 bits is its generic default (INT4_ASYM, group 128, ratio 1.0) and 8 bits
is INT8_ASYM. Separately, a few model ids get weights left out whatever the config (its default ignored scopes).

The table and the lookup are optimum-intel's own, read from the installed package, so that an entry it adds or
changes applies here too.
"""

from __future__ import annotations

import logging
from typing import Any

from optimum_wc.config.pipeline import PipelineCompressionConfig, is_pipeline_dict
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.config.scope import IgnoredScope
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, NotYetSupportedError
from optimum_wc.hf.default_ids import may_be_named

logger = logging.getLogger(__name__)

GENERIC = {4: {"bits": 4, "sym": False, "group_size": 128, "ratio": 1.0}, 8: {"bits": 8}}  # without an entry
TWO_PASS_KEYS = ("quantization_config1", "quantization_config2")  # gpt-oss: a second config for what the first left
MODEL_NAME = "model"  # the name of a causal LM's one OpenVINO model in optimum-intel's per-model tables


def table_entry(model_id: str, bits: int) -> dict[str, Any] | None:
    """optimum-intel's tuned config for ``model_id`` (a Hub id or a local folder) at ``bits`` (4 or 8), if any."""
    if not may_be_named(model_id):
        return None
    from optimum.intel.openvino.configuration import get_default_quantization_config

    return get_default_quantization_config(str(model_id), weight_format=f"int{bits}")


def default_config(model_id: str, bits: int) -> WeightCompressionConfig | PipelineCompressionConfig:
    """What optimum-intel compresses ``model_id`` with when asked for ``bits`` alone: its table entry (one config, or
    one per OpenVINO model), else its generic default.

    Raises:
        NotYetSupportedError: The entry is gpt-oss' two passes over one model, which optimum-wc does not chain yet.
    """
    entry = table_entry(model_id, bits)
    if entry is None:
        return WeightCompressionConfig(**GENERIC[bits])
    logger.info("Applying optimum-intel's default %d-bit quantization config for %s: %s", bits, model_id, entry)
    nested = [key for key in TWO_PASS_KEYS if key in entry]
    if nested:
        msg = (
            f"optimum-intel's default {bits}-bit config for {model_id} is one config per pass over the model "
            f"({', '.join(nested)}), which optimum-wc does not chain yet; pass a `quantization_config` with the "
            "settings to use."
        )
        raise NotYetSupportedError(msg)
    try:
        if is_pipeline_dict(entry):
            return PipelineCompressionConfig.from_dict(entry)
        return WeightCompressionConfig(**{key: value for key, value in entry.items() if value is not None})
    except InvalidArgumentError as exc:  # e.g. an image-text dataset: say whose setting it is
        raise type(exc)(
            f"optimum-intel's default {bits}-bit config for {model_id} cannot be applied here ({exc}); pass a "
            "`quantization_config` with the settings to use."
        ) from exc


def recommend(model_id: str, config: WeightCompressionConfig) -> None:
    """Logs optimum-intel's tuned config for an INT4/INT8 model given a config of its own, as optimum-intel does."""
    if config.spqr is not None or not config.mode.value.startswith(("int4", "int8")):
        return
    entry = table_entry(model_id, config.bits)
    if entry is not None:
        logger.info("For the given model, optimum-intel recommends the quantization_config %s", entry)


def with_default_ignored_scope(
    model_id: str, config: WeightCompressionConfig, ov_model: str = MODEL_NAME
) -> WeightCompressionConfig:
    """``config`` with the weights optimum-intel always leaves out of the OpenVINO model ``ov_model`` of
    ``model_id`` added to its ignored scope (its default ignored scopes, looked up by the id and a local folder's
    ``_name_or_path``, not by folder name)."""
    if not may_be_named(model_id):
        return config
    from optimum.intel.openvino.configuration import _DEFAULT_IGNORED_SCOPE_CONFIGS, _get_model_id_candidates

    for candidate in _get_model_id_candidates(str(model_id)):
        scope = _DEFAULT_IGNORED_SCOPE_CONFIGS.get(candidate, {}).get(ov_model)
        if scope:
            merged = WeightCompressionConfig.from_dict(config.to_dict())
            merged.ignored_scope = merge_scopes(config.ignored_scope, scope)
            return merged
    return config


def merge_scopes(scope: IgnoredScope | None, extra: dict[str, Any]) -> IgnoredScope:
    """The union of ``scope`` and optimum-intel's ``extra`` scope: each list joined (the config's entries first),
    and ``validate`` as the extra scope sets it (optimum-intel's default scopes name layers some exports lack)."""
    fields: dict[str, Any] = {}
    for key in ("names", "patterns", "types"):
        mine = list(getattr(scope, key, None) or [])
        fields[key] = mine + [item for item in extra.get(key, []) if item not in mine]
    fields["subgraphs"] = list(getattr(scope, "subgraphs", None) or [])
    fields["validate"] = extra.get("validate", True if scope is None else scope.validate)
    return IgnoredScope(**fields)


def resolve_quantization_config(
    model_id: str, load_in_8bit: bool | None, load_in_4bit: bool | None, quantization_config: object
) -> WeightCompressionConfig | PipelineCompressionConfig | None:
    """The config that ``from_pretrained``'s arguments ask for, or None for none.

    ``load_in_8bit`` is INT8_ASYM. ``load_in_4bit`` and the dicts ``{"bits": 4}`` and ``{"bits": 8}`` are
    optimum-intel's default for ``model_id`` (its tuned entry for the model, else INT4_ASYM group 128 / INT8_ASYM);
    dicts in either vocabulary and optimum-intel's ``OVWeightQuantizationConfig`` are accepted. The weights
    optimum-intel always leaves out of some models are added to the config's ignored scope.
    """
    config = _resolve(model_id, load_in_8bit, load_in_4bit, quantization_config)
    if isinstance(config, WeightCompressionConfig):
        return with_default_ignored_scope(model_id, config)
    return config  # None, or one config per OpenVINO model: their scopes are added per model at compression


def _resolve(
    model_id: str, load_in_8bit: bool | None, load_in_4bit: bool | None, quantization_config: object
) -> WeightCompressionConfig | PipelineCompressionConfig | None:
    for name, value in (("load_in_8bit", load_in_8bit), ("load_in_4bit", load_in_4bit)):
        if value is not None and not isinstance(value, bool):
            raise InvalidArgumentTypeError(f"`{name}` must be True, False or None, got {value!r}.")
    asked = [name for name, value in (("load_in_8bit", load_in_8bit), ("load_in_4bit", load_in_4bit)) if value]
    if quantization_config is not None and quantization_config != {}:
        asked.append("quantization_config")
    if len(asked) > 1:
        raise InvalidArgumentError(f"Pass only one of {', '.join(asked)}.")
    if load_in_8bit:
        return WeightCompressionConfig(bits=8)
    if load_in_4bit:
        return default_config(model_id, 4)
    if quantization_config is None or quantization_config == {}:  # an empty dict asks for nothing, as there
        return None
    if isinstance(quantization_config, dict) and quantization_config in ({"bits": 4}, {"bits": 8}):
        return default_config(model_id, quantization_config["bits"])
    if isinstance(quantization_config, PipelineCompressionConfig):
        return quantization_config
    if is_pipeline_dict(quantization_config) or type(quantization_config).__name__ == "OVPipelineQuantizationConfig":
        return PipelineCompressionConfig.from_optimum_intel(quantization_config)
    config = None
    if isinstance(quantization_config, WeightCompressionConfig):
        config = quantization_config
    elif isinstance(quantization_config, dict):
        config = WeightCompressionConfig.from_dict(quantization_config)
    elif type(quantization_config).__name__ == "OVWeightQuantizationConfig":
        config = WeightCompressionConfig.from_optimum_intel(quantization_config.to_dict())
    if config is not None:
        recommend(model_id, config)
        return config
    raise InvalidArgumentTypeError(
        "`quantization_config` must be a WeightCompressionConfig or PipelineCompressionConfig, a dict, or "
        f"optimum-intel's OVWeightQuantizationConfig or OVPipelineQuantizationConfig, got "
        f"{type(quantization_config).__name__}."
    )
