"""``OVQuantizer`` and ``OVConfig``: optimum-intel's quantizer API for weight compression, with optimum-wc's core.

``OVQuantizer.from_pretrained(model).quantize(ov_config=OVConfig(quantization_config=...), calibration_dataset=...,
save_directory=...)`` compresses a model's weights in place as optimum-intel's does (the same arguments, the same
defaults: 8-bit weights when no config is given), and saves it: any of optimum_wc's model classes (or optimum-intel's
of the same names), with one config or one per OpenVINO model. What optimum-intel's quantizer does beyond weight
compression (static quantization of activations, mixed configs) and calibration data for the models other than
causal, vision-language and seq2seq LMs are refused by name before any work.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from optimum_wc.config.options import BY_NAME, RUN_OPTIONS
from optimum_wc.config.pipeline import PipelineCompressionConfig, each_config, is_pipeline_dict
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, NotYetSupportedError
from optimum_wc.hf.collection import collected_inputs
from optimum_wc.hf.modeling import OVModelForCausalLM
from optimum_wc.hf.visual_language import OVModelForVisualCausalLM

logger = logging.getLogger(__name__)

WEIGHT_CONFIGS = ("OVWeightQuantizationConfig", "WeightCompressionConfig")
PIPELINE_CONFIGS = ("OVPipelineQuantizationConfig", "PipelineCompressionConfig")
# optimum_wc's model classes the quantizer takes, each for its optimum-intel class (subclasses before their bases)
MODEL_CLASSES = (
    "OVModelForCausalLM",
    "OVModelForFeatureExtraction",
    "OVModelForSpeechSeq2Seq",
    "OVModelForSeq2SeqLM",
    "OVModelForVisualCausalLM",
)
TOKENIZER_KEYS = {"input_ids", "attention_mask", "token_type_ids", "labels"}  # what a tokenizer gives


class OVConfig:
    """optimum-intel's ``OVConfig`` as far as weight compression goes: a holder of the ``quantization_config``
    (a :class:`WeightCompressionConfig`, an optimum-intel ``OVWeightQuantizationConfig``, or a dict of either's keys).
    """

    def __init__(
        self,
        input_info: Any = None,
        save_onnx_model: bool = False,
        quantization_config: Any = None,
        dtype: str | None = None,
        **kwargs: Any,
    ) -> None:
        if input_info is not None and (isinstance(input_info, dict) or hasattr(input_info, "to_dict")):
            raise InvalidArgumentError(
                f"OVConfig's first argument is `input_info`, as in optimum-intel; got a {type(input_info).__name__}. "
                "Pass the config as OVConfig(quantization_config=...)."
            )
        self.input_info, self.save_onnx_model = input_info, save_onnx_model
        self.quantization_config = quantization_config
        self.dtype = dtype


class OVQuantizer:
    """Compresses the weights of a model of one of optimum_wc's classes (or of optimum-intel's of the same name) with
    optimum-wc."""

    def __init__(self, model: Any, task: str | None = None, seed: int = 42, trust_remote_code: bool = False, **kwargs):
        ours = _model_class_of(model)
        if ours is None:
            raise NotYetSupportedError(
                f"OVQuantizer takes a model of one of optimum-wc's classes ({', '.join(MODEL_CLASSES)}, the diffusion "
                f"pipelines) or of optimum-intel's of the same names; got {type(model).__name__}."
            )
        self.model = ours._adopt(model)  # optimum-intel's own class: our compression on top
        self.seed = seed
        self.trust_remote_code = trust_remote_code

    @classmethod
    def from_pretrained(cls, model: Any, trust_remote_code: bool = False, **kwargs: Any) -> OVQuantizer:
        return cls(model, trust_remote_code=trust_remote_code, **kwargs)

    def quantize(
        self,
        calibration_dataset: Any = None,
        save_directory: str | os.PathLike | None = None,
        ov_config: OVConfig | None = None,
        batch_size: int = 1,
        data_collator: Any = None,
        remove_unused_columns: bool = False,
        immediate_save: bool = False,
        **kwargs: Any,
    ) -> None:
        """Compresses the model's weights in place, then saves it to ``save_directory`` if given.

        Args:
            calibration_dataset: Used instead of the config's ``dataset``, ignored for 8-bit weights, as in
                optimum-intel: model inputs (an ``nncf.Dataset``, or a list of dicts of every model input), or
                tokenized text (a ``datasets.Dataset`` or a list of dicts of ``input_ids`` and ``attention_mask``)
                from which the model's inputs are recorded as optimum-intel records them.
            save_directory: Where to save the compressed model (``save_pretrained``).
            ov_config: An ``OVConfig`` (ours or optimum-intel's); without one, INT8_ASYM weights.
            batch_size, data_collator: How tokenized text is batched (one row per batch, transformers' default
                collator); remove_unused_columns: deprecated in optimum-intel, whose recording drops the columns
                that the model does not take in either case.
            immediate_save: Needs ``save_directory``; the model is saved there in either case.
            **kwargs: ``compress_weights`` arguments that override the config's (as optimum-intel hands them to
                nncf), and the run options ``num_workers``, ``progress``, ``scratch_dir``.

        Raises:
            NotYetSupportedError: Static or mixed quantization of activations, or a per-model config.
            InvalidArgumentError: A calibration dataset that is not model inputs, or options that need one.
        """
        if immediate_save and save_directory is None:
            raise InvalidArgumentError("`immediate_save=True` needs a `save_directory`.")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidArgumentError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        config = self._config(ov_config, calibration_dataset)
        run = {name: kwargs.pop(name) for name in RUN_OPTIONS if name in kwargs}
        overridden = _with_overrides(config, kwargs)
        visual = isinstance(self.model, OVModelForVisualCausalLM)
        records = not self.model.feeds_one_model  # an encoder-decoder: text rows, run through the model
        if (
            calibration_dataset is not None
            and not isinstance(self.model, OVModelForCausalLM)
            and not (visual or records)
        ):
            raise NotYetSupportedError(
                f"`calibration_dataset` for an {type(self.model).__name__}: optimum-wc's quantizer takes calibration "
                "data for causal, vision-language and seq2seq LMs only for now; put calibration text in the config's "
                "`dataset`."
            )
        if visual and calibration_dataset is not None and not hasattr(calibration_dataset, "column_names"):
            raise InvalidArgumentError(
                "`calibration_dataset` for a vision-language model must be a datasets.Dataset of images and prompts "
                "(an `image` column and a `question`, `instruction` or `text` one); got "
                f"{type(calibration_dataset).__name__}."
            )
        dataset, tokenized = (None, None) if visual or records else _calibration(calibration_dataset)
        if calibration_dataset is not None and config.dataset is not None:
            logger.info("Both the config's `dataset` and `calibration_dataset` were given: using calibration_dataset.")
        if not any(each.takes_data for each in each_config(overridden)):  # 8-bit integer weights: no data, as there
            dataset = tokenized = calibration_dataset = None
        if visual and calibration_dataset is not None:
            dataset = self.model._calibration_inputs(config, self.seed, self.trust_remote_code, calibration_dataset)
        elif records and calibration_dataset is not None:  # each OpenVINO model gets what it recorded
            dataset = self.model._recorded(config, self.seed, self.trust_remote_code, calibration_dataset)
        elif tokenized is not None:
            dataset = collected_inputs(
                self.model, tokenized, config.num_samples, self.seed, batch_size=batch_size, data_collator=data_collator
            )
        elif (
            isinstance(config, WeightCompressionConfig)
            and dataset is None
            and overridden.takes_data
            and (config.to_compress_kwargs()["dataset"] is not None)
        ):
            if not self.model.feeds_one_model and "subset_size" in kwargs:
                raise NotYetSupportedError(
                    f"quantize(subset_size=...) with calibration text for an {type(self.model).__name__}: its "
                    "OpenVINO models record the model's run on the config's `dataset`; set `num_samples` there."
                )
            if self.model.feeds_one_model:  # else compress() records the model's run on the config's text
                # the samples come from the config as it is; quantize()'s arguments reach nncf's call only
                dataset = self.model._calibration_inputs(config, self.seed, self.trust_remote_code)
        self.model.compress(overridden, dataset, seed=self.seed, trust_remote_code=self.trust_remote_code, **run)
        if save_directory is not None:
            self.model.save_pretrained(save_directory)

    def _config(self, ov_config: Any, calibration_dataset: Any) -> WeightCompressionConfig | PipelineCompressionConfig:
        """The weight compression config that ``ov_config`` holds (optimum-intel's defaults when it holds none)."""
        if ov_config is not None and type(ov_config).__name__ != "OVConfig":
            raise InvalidArgumentTypeError(f"`ov_config` must be an OVConfig, got {type(ov_config).__name__}.")
        wanted = None if ov_config is None else ov_config.quantization_config
        if wanted is None:
            if calibration_dataset is not None:
                raise NotYetSupportedError(
                    "A `calibration_dataset` without a `quantization_config` asks optimum-intel for static "
                    "quantization of activations, which optimum-wc does not do; pass "
                    "OVConfig(quantization_config=OVWeightQuantizationConfig(...)) to compress the weights."
                )
            logger.warning("`quantization_config` was not provided: compressing the weights to 8 bits.")
            return WeightCompressionConfig(bits=8)
        kind = type(wanted).__name__
        if not isinstance(wanted, dict) and kind not in WEIGHT_CONFIGS + PIPELINE_CONFIGS:
            raise NotYetSupportedError(
                f"optimum-wc compresses weights only; {kind} (static, mixed or per-model quantization) is not "
                "supported. Use an OVWeightQuantizationConfig."
            )
        if kind in PIPELINE_CONFIGS or is_pipeline_dict(wanted):
            return (
                wanted
                if isinstance(wanted, PipelineCompressionConfig)
                else PipelineCompressionConfig.from_optimum_intel(wanted)
            )
        if isinstance(wanted, dict) and "full_quantization_config" in wanted:
            raise NotYetSupportedError("Mixed quantization configs (activations too) are not supported by optimum-wc.")
        if isinstance(wanted, WeightCompressionConfig):
            return wanted
        if isinstance(wanted, dict):  # read as it is, as optimum-intel does here: no per-model default
            return WeightCompressionConfig.from_dict(wanted)
        return WeightCompressionConfig.from_optimum_intel(wanted)


def _model_class_of(model: Any) -> type | None:
    """optimum_wc's class for ``model`` (an instance of it, or of the optimum-intel class it wraps), or None."""
    import optimum_wc

    for name in MODEL_CLASSES:
        ours = getattr(optimum_wc, name)
        if isinstance(model, ours.wraps):
            return ours
    if type(model).__module__.startswith(("optimum.intel", "optimum_wc")) and hasattr(model, "vae_decoder"):
        from optimum_wc.hf.diffusion import PIPELINES  # the diffusion extra: only for a diffusion pipeline

        return PIPELINES.get(type(model).__name__)
    return None


def _with_overrides(
    config: WeightCompressionConfig | PipelineCompressionConfig, overrides: dict[str, Any]
) -> WeightCompressionConfig | PipelineCompressionConfig:
    """``config`` with ``compress_weights`` arguments replaced (optimum-intel lets quantize()'s kwargs win), in
    each config of a pipeline's."""
    if isinstance(config, PipelineCompressionConfig):
        default = None if config.default_config is None else _with_overrides(config.default_config, overrides)
        configs = {name: _with_overrides(each, overrides) for name, each in config.quantization_configs.items()}
        return PipelineCompressionConfig(configs, default)
    unknown = sorted(name for name in overrides if name not in BY_NAME or name == "dataset")
    if unknown:
        allowed = ", ".join(name for name in BY_NAME if name != "dataset")
        raise InvalidArgumentError(f"quantize() got unknown argument(s) {unknown}; it takes {allowed}.")
    if not overrides:
        return config
    logger.warning("quantize() arguments override the config's: %s", sorted(overrides))
    values = {**config.to_compress_kwargs(), **overrides}
    values.pop("dataset")
    merged = WeightCompressionConfig.from_compress_kwargs(**values)
    for key in ("dataset", "tokenizer", "processor", "dq_group_size"):  # the Hugging Face side's, kept as given
        setattr(merged, key, getattr(config, key))
    return merged


def _calibration(dataset: Any) -> tuple[Any, Any]:
    """``(model inputs, tokenized text)``, one of them ``dataset`` and the other None: model inputs are an
    nncf.Dataset or a list of dicts of more than a tokenizer gives; tokenized text is a ``datasets.Dataset`` or a
    list of dicts of a tokenizer's keys."""
    if dataset is None or hasattr(dataset, "get_inference_data"):
        return dataset, None
    if hasattr(dataset, "column_names"):
        return None, dataset
    items = None if isinstance(dataset, (str, bytes, dict)) else list(dataset)
    if items is None or not items or not all(isinstance(item, dict) for item in items):
        raise InvalidArgumentError(
            "`calibration_dataset` must be an nncf.Dataset, a datasets.Dataset of tokenized text, or a non-empty "
            f"list of input dicts (model inputs or tokenized text); got {type(dataset).__name__}. Text goes in the "
            "config's `dataset` (a list of strings, a file or a name)."
        )
    if all(set(item) <= TOKENIZER_KEYS for item in items):
        return None, items
    return items, None
