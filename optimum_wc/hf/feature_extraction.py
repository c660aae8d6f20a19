"""``OVModelForFeatureExtraction``: optimum-intel's encoder for embeddings (BERT and the like), with weights
compressed by optimum-wc.

Calibration text becomes inputs as optimum-intel's quantizer makes them for a text encoder: each text tokenized
truncated to ``seq_len`` tokens (128, or the dataset's ``:seq_len=N``, at most the model's positions), the texts
shorter than that skipped, until ``num_samples`` (default 128) are taken; the compression then uses as many
samples as were taken. The texts are a list of strings (as optimum-intel takes them) or local files (ours); the
Hub recipes are refused before the export for now.
"""

from __future__ import annotations

from typing import Any

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForFeatureExtraction as _OptimumIntelFeatureExtraction
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForFeatureExtraction", "hf", missing.name) from missing

from optimum_wc.config.datasets import DATASET_NAMES, parse_dataset_name
from optimum_wc.config.pipeline import PipelineCompressionConfig, each_config
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from optimum_wc.hf.compressed import compressed_model
from optimum_wc.hf.tokenizer import calibration_tokenizer
from optimum_wc.pipeline.calibration import load_texts

__all__ = ["OVModelForFeatureExtraction"]

SEQUENCE_LENGTH = 128  # optimum-intel's for text encoders
NUM_SAMPLES = 128


class OVModelForFeatureExtraction(compressed_model(_OptimumIntelFeatureExtraction)):
    """optimum-intel's ``OVModelForFeatureExtraction`` whose weights are compressed by optimum-wc.

    Everything optimum-intel's class does (the ``feature-extraction`` pipeline, reshape, compile) works unchanged.
    """

    class_name = "OVModelForFeatureExtraction"
    calibrates = True

    @classmethod
    def _check_config(cls, config: WeightCompressionConfig | PipelineCompressionConfig) -> None:
        super()._check_config(config)
        for each in each_config(config):
            if isinstance(each.dataset, str) and parse_dataset_name(each.dataset)[0] in DATASET_NAMES:
                raise NotYetSupportedError(
                    f"{cls.class_name} takes calibration text as a list of strings or local files for now, not "
                    f"`dataset`={each.dataset!r}."
                )

    def _calibration_inputs(self, config: WeightCompressionConfig, seed: int, trust_remote_code: bool) -> list[dict]:
        tokenizer = calibration_tokenizer(self, config, trust_remote_code)
        seq_len = SEQUENCE_LENGTH
        if isinstance(config.dataset, str):
            seq_len = parse_dataset_name(config.dataset)[1] or seq_len
        positions = getattr(self.config, "max_position_embeddings", None)
        if positions is not None and positions > 0:
            seq_len = min(seq_len, positions)
        wanted = config.num_samples or NUM_SAMPLES
        texts = config.dataset if isinstance(config.dataset, list) else load_texts(config.dataset, 2**62)
        inputs: list[dict[str, Any]] = []
        for text in texts:
            tokens = tokenizer(text, truncation=True, max_length=seq_len, return_tensors="np")
            if tokens["input_ids"].shape[1] < seq_len:
                continue  # optimum-intel takes only texts that fill seq_len
            inputs.append(self._model_inputs(tokens))
            if len(inputs) >= wanted:
                break
        if not inputs:
            raise InvalidArgumentError(
                f"No calibration text has {seq_len} tokens or more (shorter ones are skipped, as optimum-intel "
                "skips them): pass longer texts."
            )
        return inputs

    def _model_inputs(self, tokens: Any) -> dict[str, Any]:
        """The inputs this model's forward hands its OpenVINO model for ``tokens``, as optimum-intel records them."""
        inputs = {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}
        if "token_type_ids" in self.input_names:
            given = tokens.get("token_type_ids")
            inputs["token_type_ids"] = given if given is not None else tokens["input_ids"] * 0
        return inputs
