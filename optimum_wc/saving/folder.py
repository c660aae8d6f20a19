"""What a saved model folder holds besides the IR, written the same way by both writers of one.

``OVModelForCausalLM.save_pretrained`` (the ``hf`` extra) and ``optimum-wc export`` on an IR folder (no Hugging
Face package) write a model's folder with these functions, so the same model gives the same files either way.
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import shutil
from typing import Callable

import openvino as ov
from optimum_wc.config.pipeline import PipelineCompressionConfig, is_pipeline_dict
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.pipeline.rt_info import IMPORTED_KEY, read_layer_records
from optimum_wc.pipeline.summary import CompressionSummary
from optimum_wc.saving.model_card import write_model_card
from optimum_wc.version import __version__

logger = logging.getLogger(__name__)

OPENVINO_CONFIG = "openvino_config.json"
LAYERS_FILE = "compressed_weights.json"
MODEL_CONFIG_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "openvino_tokenizer.xml",
    "openvino_tokenizer.bin",
    "openvino_detokenizer.xml",
    "openvino_detokenizer.bin",
)
AUTO_INT8_MIN_WEIGHTS = 1_000_000_000  # optimum-intel compresses larger models to INT8_ASYM when asked nothing


def float_weight_elements(model: ov.Model) -> int:
    """Elements of the floating-point constants of ``model`` with two or more dimensions (optimum-intel's count)."""
    total = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_output_element_type(0).is_real():
            shape = op.get_output_shape(0)
            if len(shape) >= 2:
                total += math.prod(shape)
    return total


def is_compressed(model: ov.Model) -> bool:
    """Whether the weights of ``model`` are compressed already (by nncf, by us, or imported from a checkpoint)."""
    return any(
        model.has_rt_info(key) for key in (["nncf", "weight_compression"], ["nncf", "quantization"], IMPORTED_KEY)
    )


def set_runtime_options(model: ov.Model, dq_group_size: int | None) -> None:
    """The runtime options optimum-intel leaves on a model it has compressed: no ``KV_CACHE_PRECISION``, and the
    config's ``dq_group_size`` as ``DYNAMIC_QUANTIZATION_GROUP_SIZE``."""
    if model.has_rt_info(["runtime_options", "KV_CACHE_PRECISION"]):
        options = model.get_rt_info("runtime_options").value
        options.pop("KV_CACHE_PRECISION", None)
        model.set_rt_info(options, "runtime_options")
    if dq_group_size is not None:
        model.set_rt_info(str(dq_group_size), ["runtime_options", "DYNAMIC_QUANTIZATION_GROUP_SIZE"])


def saved_config(folder: pathlib.Path) -> WeightCompressionConfig | PipelineCompressionConfig | None:
    """The config a folder we saved records in its ``openvino_config.json`` (None for other folders)."""
    saved = folder / OPENVINO_CONFIG
    if saved.is_file():
        data = json.loads(saved.read_text())
        config = data.get("quantization_config") if data.get("library") == "optimum-wc" else None
        if is_pipeline_dict(config):
            return PipelineCompressionConfig.from_dict(config)
        if config:
            return WeightCompressionConfig.from_dict(config)
    return None


def copy_tokenizer(
    source: pathlib.Path | None,
    folder: pathlib.Path,
    convert: Callable[[pathlib.Path], None] | None,
    warn: bool = True,
) -> None:
    """Copies the tokenizer files of ``source``; ``convert`` writes the OpenVINO tokenizer models when the source
    has a Hugging Face tokenizer but not those (None: they are not written, and unless ``warn`` is False a warning
    says so)."""
    for name in TOKENIZER_FILES:
        if source is not None and (source / name).is_file() and not (folder / name).exists():
            shutil.copy2(source / name, folder / name)
    if (folder / "tokenizer_config.json").is_file() and not (folder / "openvino_tokenizer.xml").exists():
        if convert is None:
            if warn:
                logger.warning("OpenVINO tokenizer models were not written: converting them needs optimum-wc[hf].")
        else:
            convert(folder)


def write_records(
    folder: pathlib.Path,
    models: ov.Model | dict[str, ov.Model],
    config: WeightCompressionConfig | PipelineCompressionConfig | None,
    summary: CompressionSummary | None,
    base_model: object,
    origin: dict[str, str] | None,
    model_class: str = "OVModelForCausalLM",
) -> None:
    """Writes ``openvino_config.json``, ``compressed_weights.json`` (what was done to each weight) and the model
    card; ``base_model`` is the Hugging Face config (or any object) whose ``_name_or_path`` names the base model,
    ``model_class`` the optimum_wc class that loads the folder.

    ``models`` is the model, or the OpenVINO models of a pipeline by name: then ``compressed_weights.json`` has
    the records of each under its name.
    """
    info = {"library": "optimum-wc", "version": __version__, "quantization_config": None}
    if config is not None:
        info["quantization_config"] = config.to_dict()
        if isinstance(config, WeightCompressionConfig):
            info["dtype"] = config.mode.value
    (folder / OPENVINO_CONFIG).write_text(json.dumps(info, indent=2, sort_keys=True))
    if isinstance(models, ov.Model):
        records = flat = read_layer_records(models)
    else:
        records = {name: read_layer_records(model) for name, model in models.items()}
        records = {name: layers for name, layers in records.items() if layers}
        flat = {f"{name}/{layer}": record for name, layers in records.items() for layer, record in layers.items()}
    if records:
        (folder / LAYERS_FILE).write_text(json.dumps(records, indent=2, sort_keys=True))
    write_model_card(folder, base_model, config, summary, flat, origin, model_class)
