"""``OVModelForVisualCausalLM``: optimum-intel's vision-language models (LLaVA, Qwen2-VL, ...), with the weights of
their OpenVINO models (language model, text embeddings, vision embeddings, ...) compressed by optimum-wc.

As in optimum-intel, a plain config applies to the language model (and a multi-token-prediction head, which is as
large), and every other OpenVINO model is compressed to INT8_SYM per channel; a
:class:`~optimum_wc.PipelineCompressionConfig` gives each its own.

Data-aware compression calibrates the language model on images and prompts (``dataset="textvqa"`` from the Hub, or
a local image folder): the config's ``processor`` (default: the model's checkpoint) turns each pair into the
model's inputs, the vision and text embedding models turn those into the language model's, as optimum-intel does.
"""

from __future__ import annotations

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForVisualCausalLM as _OptimumIntelVisualCausalLM
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForVisualCausalLM", "hf", missing.name) from missing

import copy
from typing import Any

from optimum_wc.config.datasets import IMAGE_TEXT_DATASETS
from optimum_wc.config.pipeline import PipelineCompressionConfig
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from optimum_wc.hf.compressed import compressed_model
from optimum_wc.pipeline.image_text import check_image_folder, image_text_items

__all__ = ["OVModelForVisualCausalLM"]

LANGUAGE_MODELS = ("lm_model", "mtp_model")  # the OpenVINO models that take the config asked for
CALIBRATED = "lm_model"  # the only OpenVINO model the image-text items calibrate
NUM_SAMPLES = 32  # optimum-intel's for a VLM


class OVModelForVisualCausalLM(compressed_model(_OptimumIntelVisualCausalLM)):
    """optimum-intel's ``OVModelForVisualCausalLM`` whose weights are compressed by optimum-wc.

    Everything optimum-intel's class does (``generate`` with a processor's inputs, the ``image-text-to-text``
    pipeline) works unchanged.
    """

    class_name = "OVModelForVisualCausalLM"
    # optimum-intel exports a VLM it compresses as it exports one it leaves alone (a 16-bit checkpoint in 16 bits),
    # and in fp32 only when told no compression follows
    export_load_in_8bit = None
    calibrates = True
    calibration_datasets = tuple(IMAGE_TEXT_DATASETS)

    @classmethod
    def _check_config(cls, config: WeightCompressionConfig | PipelineCompressionConfig) -> None:
        super()._check_config(config)
        configs = config.quantization_configs if isinstance(config, PipelineCompressionConfig) else {CALIBRATED: config}
        for name, each in configs.items():
            if each.dataset is None or not each.takes_data:
                continue
            if isinstance(each.dataset, list):
                raise InvalidArgumentError(
                    f"{cls.class_name} calibrates on images and prompts, not a list of texts: pass `dataset`="
                    f"{' or '.join(repr(name) for name in IMAGE_TEXT_DATASETS)}, or a local image folder."
                )
            if name != CALIBRATED:
                raise NotYetSupportedError(
                    f"A calibration `dataset` for {name!r}: only the language model ({CALIBRATED!r}) is calibrated "
                    "for now; compress the others data-free."
                )
            check_image_folder(each.dataset)
        if isinstance(config, PipelineCompressionConfig) and config.default_config is not None:
            if config.default_config.dataset is not None and config.default_config.takes_data:
                raise NotYetSupportedError(
                    "A calibration `dataset` in `default_config`: only the language model is calibrated for now; "
                    f"set it in the config of {CALIBRATED!r}."
                )

    def _model_configs(
        self, config: WeightCompressionConfig | PipelineCompressionConfig
    ) -> dict[str, WeightCompressionConfig]:
        if isinstance(config, PipelineCompressionConfig):
            return super()._model_configs(config)
        others = WeightCompressionConfig(bits=8, sym=True)
        data_free = copy.deepcopy(config)  # optimum-intel collects no data for a multi-token-prediction head
        data_free.dataset = None
        chosen = {CALIBRATED: config, "mtp_model": data_free}
        return {name: chosen.get(name, others) for name in self._wc_models()}

    def _calibration_inputs(
        self, config: WeightCompressionConfig, seed: int, trust_remote_code: bool, rows: Any = None
    ) -> list[dict]:
        """The language model's inputs for the config's image-text items (or ``rows``, a ``datasets.Dataset`` of
        images and prompts given to the quantizer): each pair through the processor, then the vision and text
        embedding models (uncompressed yet), as optimum-intel's quantizer collects them."""
        from transformers import AutoProcessor, AutoTokenizer

        checkpoint = getattr(self.config, "_name_or_path", None) or str(self.model_save_dir)
        trust = trust_remote_code
        try:
            processor = AutoProcessor.from_pretrained(config.processor or checkpoint, trust_remote_code=trust)
        except Exception as exc:
            raise InvalidArgumentError(
                f"Cannot load a processor from {config.processor or checkpoint!r} for the calibration images; pass "
                f"`processor=` in the quantization config ({type(exc).__name__}: {exc})."
            ) from exc
        try:  # optional, as there: the processor of most models tokenizes on its own
            tokenizer = AutoTokenizer.from_pretrained(config.tokenizer or checkpoint, trust_remote_code=trust)
        except Exception:
            tokenizer = None
        inputs = []
        source = config.dataset if rows is None else rows
        for image, text in image_text_items(source, config.num_samples or NUM_SAMPLES, seed):
            given = self.preprocess_inputs(
                text=text, image=image, processor=processor, tokenizer=tokenizer, config=self.config
            )
            embeds, attention_mask, position_ids, *extra = self.get_multimodal_embeddings(**given)
            language: dict[str, Any] = {
                "input_ids": None,
                "attention_mask": attention_mask,
                "position_ids": position_ids,
                "inputs_embeds": embeds,
            }
            if self.language_model.config.model_type == "gemma4":
                language["per_layer_inputs"] = extra[0]
            inputs.append(self.language_model.prepare_inputs(**language))
        return inputs
