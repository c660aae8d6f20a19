"""``OVModelForSeq2SeqLM``: optimum-intel's encoder-decoder for text2text generation (T5, BART and the like), with
the weights of its OpenVINO models (encoder, decoder) compressed by optimum-wc.

As in optimum-intel, one config applies to every OpenVINO model; a :class:`~optimum_wc.PipelineCompressionConfig`
(or optimum-intel's ``OVPipelineQuantizationConfig``) gives each its own.

Calibration text is turned into inputs as optimum-intel's quantizer turns it for a text-to-text model: the first
``num_samples`` (128) texts, each tokenized truncated to ``seq_len`` tokens (128, or ``wikitext2:seq_len=N``), and the
model generates up to ``seq_len`` tokens for each while every OpenVINO model records what it is given; each is then
compressed with all it recorded. The texts are a list of strings (as given), local files (ours), or ``wikitext2``'s
training split shuffled with the quantizer's seed.
"""

from __future__ import annotations

from typing import Any

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForSeq2SeqLM as _OptimumIntelSeq2SeqLM
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForSeq2SeqLM", "hf", missing.name) from missing

from optimum_wc.config.datasets import parse_dataset_name
from optimum_wc.config.pipeline import PipelineCompressionConfig, each_config
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from optimum_wc.hf.collection import generation_inputs
from optimum_wc.hf.compressed import compressed_model
from optimum_wc.hf.tokenizer import calibration_tokenizer
from optimum_wc.pipeline.calibration import hub_dataset, load_texts

__all__ = ["OVModelForSeq2SeqLM"]

SEQUENCE_LENGTH = 128  # optimum-intel's for a text-to-text model: the tokens kept of a text, and those generated
NUM_SAMPLES = 128


class OVModelForSeq2SeqLM(compressed_model(_OptimumIntelSeq2SeqLM)):
    """optimum-intel's ``OVModelForSeq2SeqLM`` whose weights are compressed by optimum-wc.

    Everything optimum-intel's class does (``generate``, the ``text2text-generation`` pipeline, reshape) works
    unchanged.
    """

    class_name = "OVModelForSeq2SeqLM"
    calibrates = True
    calibration_datasets = ("wikitext2", "c4")  # optimum-intel's names for a text-to-text model
    feeds_one_model = False

    @classmethod
    def _check_config(cls, config: WeightCompressionConfig | PipelineCompressionConfig) -> None:
        super()._check_config(config)
        for each in each_config(config):
            if isinstance(each.dataset, str) and parse_dataset_name(each.dataset)[0] == "c4":
                raise NotYetSupportedError(
                    f"{cls.class_name} does not take `dataset`='c4' yet (optimum-intel streams all of C4 for it); "
                    "pass 'wikitext2', a list of strings or local files."
                )

    def _calibration_set(self, name: str, config: Any, seed: int, trust_remote_code: bool, collected: dict) -> list:
        """What the OpenVINO model ``name`` recorded while the model generated for the config's texts (one run of
        the model per config feeds every OpenVINO model)."""
        if id(config) not in collected:
            collected[id(config)] = self._recorded(config, seed, trust_remote_code)
        return collected[id(config)][name]

    def _recorded(
        self, config: WeightCompressionConfig, seed: int, trust_remote_code: bool, rows: Any = None
    ) -> dict[str, list]:
        """What each OpenVINO model is given while the model generates for the config's texts (or for ``rows``, a
        ``datasets.Dataset`` with a ``text`` column given to the quantizer, taken in order), by model name."""
        tokenizer = calibration_tokenizer(self, config, trust_remote_code)
        count = config.num_samples or NUM_SAMPLES
        dataset = config.dataset
        seq_len = (parse_dataset_name(dataset)[1] if isinstance(dataset, str) else None) or SEQUENCE_LENGTH
        if rows is not None:
            if "text" not in getattr(rows, "column_names", ()):
                raise InvalidArgumentError(
                    f"`calibration_dataset` for an {type(self).__name__} must be a datasets.Dataset with a `text` "
                    f"column; got {getattr(rows, 'column_names', type(rows).__name__)}."
                )
            texts = rows.take(count)["text"]
        elif isinstance(dataset, str) and parse_dataset_name(dataset)[0] == "wikitext2":
            texts = hub_dataset(dataset).shuffle(seed=seed).take(count)["text"]  # blank lines too, as there
        else:
            texts = load_texts(dataset, count)
        samples = [tokenizer(text, truncation=True, max_length=seq_len, return_tensors="pt") for text in texts]
        return generation_inputs(self, samples, seq_len)
