"""``optimum-wc export`` on a folder that holds an OpenVINO IR: compress it and write a model folder, with no
Hugging Face package (the Hugging Face path, ``OVModelForCausalLM.from_pretrained`` + ``save_pretrained``, writes
the same files for the same model)."""

from __future__ import annotations

import os
import pathlib
import shutil
from types import SimpleNamespace
from typing import Any, Callable

import openvino as ov
from optimum_wc._utils.atomic import atomic_directory, disk_errors
from optimum_wc.compress import compress_ir
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.errors import InvalidArgumentError, UnsupportedModelError
from optimum_wc.openvino.ir_files import check_ir_files
from optimum_wc.pipeline.rt_info import imported_origin
from optimum_wc.saving.folder import (
    AUTO_INT8_MIN_WEIGHTS,
    MODEL_CONFIG_FILES,
    copy_tokenizer,
    float_weight_elements,
    is_compressed,
    saved_config,
    set_runtime_options,
    write_records,
)

MODEL_XML = "openvino_model.xml"


def export_ir(
    source: pathlib.Path,
    output: pathlib.Path,
    config: WeightCompressionConfig | None,
    *,
    model_name: str,
    auto_int8: bool = False,
    compress_to_fp16: bool = False,
    convert_tokenizer: Callable[[pathlib.Path], None] | None = None,
    **run: Any,
) -> pathlib.Path:
    """Compresses the IR in ``source`` with ``config`` and writes the model folder ``output`` atomically.

    Args:
        source: A folder holding ``openvino_model.xml`` and, beside it, the model's Hugging Face files.
        output: The folder to write (replaced at the end, in one rename).
        config: What to do; None re-saves the IR as it is (``compress_to_fp16`` still applies).
        model_name: The base model named in the model card (the ``MODEL`` argument as given).
        auto_int8: With no config, compress models of 1e9 or more float weights to INT8_ASYM, as optimum-intel does
            when asked nothing.
        convert_tokenizer: Writes OpenVINO tokenizer models from a Hugging Face tokenizer (the ``hf`` extra's),
            used when ``source`` has none.
        **run: ``compress_weights``'s run options (``num_workers``, ``progress``, ``scratch_dir``).

    Raises:
        InvalidArgumentError: ``config`` has a calibration ``dataset`` (text needs the model's tokenizer: the
            Hugging Face path).
        UnsupportedModelError: Compression is asked of an IR whose weights are already compressed.
    """
    if config is not None and config.dataset is not None:
        raise InvalidArgumentError("A calibration `dataset` of text needs the Hugging Face path (optimum-wc[hf]).")
    xml = source / MODEL_XML
    check_ir_files(xml)
    model = ov.Core().read_model(xml)
    compressed = is_compressed(model)
    if config is None and auto_int8 and not compressed and float_weight_elements(model) >= AUTO_INT8_MIN_WEIGHTS:
        config = WeightCompressionConfig(bits=8)
    summary = None
    if config is not None:
        if compressed:
            raise UnsupportedModelError(
                f"The weights of {xml} are already compressed (its rt_info has an nncf section); load the original "
                "checkpoint to compress it differently."
            )
        del model  # compress_ir reads the IR itself, memory-mapped, with the codes leaving anonymous memory
        settings = CompressionSettings.from_arguments(**config.to_compress_kwargs())
        result = compress_ir(xml, settings, **run)
        model, summary = result.model, result.summary
        set_runtime_options(model, config.dq_group_size)
    else:
        config = saved_config(source)
    with atomic_directory(output) as staging, disk_errors(staging):
        ov.save_model(model, staging / MODEL_XML, compress_to_fp16=compress_to_fp16)
        for name in MODEL_CONFIG_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, staging / name)
        copy_tokenizer(source, staging, convert_tokenizer)
        # the base model as optimum-intel records it: a local folder's path joined with its (empty) subfolder
        name = os.path.join(model_name, "") if os.path.isdir(model_name) else model_name
        write_records(staging, model, config, summary, SimpleNamespace(_name_or_path=name), imported_origin(model))
    return output
