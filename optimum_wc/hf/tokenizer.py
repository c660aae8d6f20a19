"""The tokenizer that turns a config's calibration text into a model's inputs."""

from __future__ import annotations

from typing import Any

from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError


def calibration_tokenizer(model: Any, config: WeightCompressionConfig, trust_remote_code: bool) -> Any:
    """The config's ``tokenizer``, else the one of the model's checkpoint (its ``_name_or_path``, else the folder it
    was loaded from), as optimum-intel picks it."""
    from transformers import AutoTokenizer

    source = config.tokenizer or getattr(model.config, "_name_or_path", None) or str(model.model_save_dir)
    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise InvalidArgumentError(
            f"Cannot load a tokenizer from {source!r} for the calibration `dataset`; pass `tokenizer=` in the "
            f"quantization config ({type(exc).__name__}: {exc})."
        ) from exc
