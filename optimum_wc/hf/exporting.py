"""What optimum-intel's exporter reads and leaves on disk: a checkpoint folder's files checked before it reads them,
its temporary export folders, named so that a later run can remove those of killed processes, and the OpenVINO
tokenizer models written beside a saved model."""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import tempfile
from typing import Any, Iterator

from optimum_wc._utils.atomic import EXPORT_PREFIX, LOW_SPACE_BYTES, WRITE_ERRORS, remove_dead_exports
from optimum_wc.errors import CorruptModelError, InvalidArgumentError

JSON_FILES = ("config.json", "openvino_config.json", "generation_config.json")

logger = logging.getLogger(__name__)

# accelerate's placement options: OpenVINO's exporter refuses models whose modules accelerate offloads (its input
# check and TorchScript tracing fail), and OpenVINO models are placed with ``device``; refused up front, not ignored.
OFFLOAD_ARGUMENTS = ("device_map", "max_memory", "offload_folder", "offload_state_dict", "offload_buffers")


def check_no_offload(kwargs: dict) -> None:
    """Refuses accelerate's placement arguments among ``from_pretrained``'s keyword arguments."""
    given = [name for name in OFFLOAD_ARGUMENTS if name in kwargs]
    if given:
        raise InvalidArgumentError(
            f"{', '.join(f'`{name}`' for name in given)}: accelerate's placement and disk offload are not available "
            "here. OpenVINO's exporter cannot trace a model whose modules accelerate offloads, and it does not need "
            "to: transformers reads safetensors checkpoints memory-mapped, so export holds little of the checkpoint "
            "in anonymous memory (benchmarks/results/export_memory.md). Drop these arguments; choose where the "
            "OpenVINO model runs with `device=` (e.g. 'CPU', 'GPU')."
        )


def check_checkpoint_files(folder: pathlib.Path) -> None:
    """Raises :class:`~optimum_wc.errors.CorruptModelError` naming the file when a JSON config of ``folder`` does
    not parse or a ``.safetensors`` file's header cannot be read (a truncated or damaged download), before
    transformers or optimum-intel fail on it with a message that names neither."""
    import json

    for name in JSON_FILES:
        path = folder / name
        if path.is_file():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise CorruptModelError(f"{path} is damaged: it is not valid JSON ({exc}).") from exc
    for path in sorted(folder.glob("*.safetensors")):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as handle:
                handle.keys()
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise CorruptModelError(f"{path} is damaged or truncated: {exc}.") from exc


@contextlib.contextmanager
def export_folders_the_next_run_can_repair() -> Iterator[None]:
    """optimum-intel exports into a ``TemporaryDirectory`` that holds the whole float IR for the model's life, and a
    killed process leaves it behind for good. Inside this block its temporary folders are named
    ``optimum-wc-export-<pid>-*``, which the next export removes once that process is gone (not thread-safe:
    it swaps optimum-intel's module-level ``TemporaryDirectory`` for the block's duration)."""
    from optimum.intel.openvino import modeling_base, modeling_decoder

    remove_dead_exports()
    modules = (modeling_base, modeling_decoder)
    originals = [module.TemporaryDirectory for module in modules]

    def named(*args: Any, **kwargs: Any) -> tempfile.TemporaryDirectory:
        return tempfile.TemporaryDirectory(*args, **{"prefix": f"{EXPORT_PREFIX}{os.getpid()}-", **kwargs})

    for module in modules:
        module.TemporaryDirectory = named
    try:
        yield
    finally:
        for module, original in zip(modules, originals):
            module.TemporaryDirectory = original


def convert_tokenizer(folder: pathlib.Path) -> None:
    """Writes OpenVINO tokenizer/detokenizer IRs (for openvino_genai) from the Hugging Face tokenizer in ``folder``."""
    try:
        from optimum.exporters.openvino.convert import export_tokenizer
        from transformers import AutoTokenizer

        export_tokenizer(AutoTokenizer.from_pretrained(folder), folder, task="text-generation")
    except Exception as exc:  # a missing or placeholder tokenizer must not fail the save; a failed write must
        if shutil.disk_usage(folder).free < LOW_SPACE_BYTES or getattr(exc, "errno", None) in WRITE_ERRORS:
            raise
        logger.warning("OpenVINO tokenizer models were not written: %s", exc)


@contextlib.contextmanager
def size_based_compression_off() -> Iterator[None]:
    """optimum-intel's exporter without its INT8 compression of OpenVINO models of 1e9 or more weights (done with
    nncf when no compression is asked for): the model class applies that rule with optimum-wc."""
    from optimum.exporters.openvino import __main__ as exporter

    original = exporter._apply_model_size_based_quantization
    exporter._apply_model_size_based_quantization = lambda *args, **kwargs: None
    try:
        yield
    finally:
        exporter._apply_model_size_based_quantization = original
