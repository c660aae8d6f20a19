"""``OVModelForCausalLM``: optimum-intel's causal LM, with weights compressed by optimum-wc (never by nncf).

The shared machinery (export with optimum-intel's compression off, our core, atomic save, reload, push) is
:func:`~optimum_wc.hf.compressed.compressed_model`; a causal LM adds calibration text turned into its inputs and
the import of GPTQ/AWQ checkpoints.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForCausalLM as _OptimumIntelCausalLM
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForCausalLM", "hf", missing.name) from missing

from optimum_wc.checkpoints.importer import import_checkpoint, prequantized_spec
from optimum_wc.config.datasets import GENERATED, parse_dataset_name
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, OptimumWCError
from optimum_wc.hf.compressed import compressed_model
from optimum_wc.hf.generated import generated_texts
from optimum_wc.hf.tokenizer import calibration_tokenizer
from optimum_wc.pipeline.calibration import check_token_samples, token_samples
from optimum_wc.pipeline.rt_info import imported_origin

__all__ = ["OVModelForCausalLM"]


def _prequantized_checkpoint(
    model_id: str | os.PathLike, export: bool, kwargs: dict
) -> tuple[pathlib.Path, Any] | None:
    """(folder, spec) when ``model_id`` is a GPTQ/AWQ checkpoint to import (a local folder, or a Hub id whose
    ``config.json`` says so, downloaded); None otherwise, including when the Hub cannot be asked."""
    folder = pathlib.Path(str(model_id))
    if folder.is_dir():
        if (folder / "openvino_model.xml").is_file() and not export:
            return None
        spec = prequantized_spec(folder)
        return None if spec is None else (folder, spec)
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        options = {k: kwargs[k] for k in ("revision", "token", "cache_dir") if kwargs.get(k) is not None}
        spec = prequantized_spec(pathlib.Path(hf_hub_download(str(model_id), "config.json", **options)).parent)
        if spec is None:
            return None
        patterns = ["*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.jinja"]
        return pathlib.Path(snapshot_download(str(model_id), allow_patterns=patterns, **options)), spec
    except Exception as exc:
        if isinstance(exc, OptimumWCError):
            raise
        return None  # the usual path below reports what is wrong with the id


class OVModelForCausalLM(compressed_model(_OptimumIntelCausalLM)):
    """optimum-intel's ``OVModelForCausalLM`` whose weights are compressed by optimum-wc.

    Everything optimum-intel's class does (generate, pipelines, reshape, compile) works unchanged.
    """

    class_name = "OVModelForCausalLM"
    calibrates = True

    @classmethod
    def _import_model(cls, model_id: str | os.PathLike, export: bool, compression_asked: bool, kwargs: dict) -> Any:
        """A GPTQ/AWQ checkpoint, imported with its own codes into an exported skeleton; None for others."""
        prequantized = _prequantized_checkpoint(model_id, export, kwargs)
        if prequantized is None:
            return None
        if compression_asked:
            raise InvalidArgumentError(
                f"`model_id` {model_id!r} is already quantized ({prequantized[1].label}); it is imported with its "
                "own codes and scales: drop `quantization_config`, `load_in_8bit` and `load_in_4bit`."
            )

        def export_float(skeleton: pathlib.Path) -> Any:
            return cls.from_pretrained(skeleton, export=True, load_in_8bit=False, compile=False, **kwargs)

        model = cls._adopt(import_checkpoint(prequantized[0], prequantized[1], str(model_id), export_float))
        model._wc_origin = imported_origin(model.model)
        return model

    def _calibration_inputs(self, config: WeightCompressionConfig, seed: int, trust_remote_code: bool) -> list[dict]:
        """Tokenizes the config's calibration texts into this model's inputs (optimum-intel's recipe)."""
        tokenizer = calibration_tokenizer(self, config, trust_remote_code)
        count = config.spqr.num_samples if config.spqr is not None else config.num_samples or 128
        dataset = config.dataset
        if isinstance(dataset, str) and parse_dataset_name(dataset)[0] == GENERATED:  # its seq_len unused there too
            dataset = generated_texts(self, tokenizer, count)
        samples = token_samples(dataset, tokenizer, count, seed)
        check_token_samples(samples, self.config)
        return [self.prepare_inputs(**sample) for sample in samples]
