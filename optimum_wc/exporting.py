"""What optimum-intel's exporter leaves on disk: its temporary export folders, named so that a later run can
remove those of killed processes, and the OpenVINO tokenizer models written beside a saved model."""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import tempfile
from typing import Any, Iterator

from optimum_wc.atomic import EXPORT_PREFIX, LOW_SPACE_BYTES, WRITE_ERRORS, remove_dead_exports

logger = logging.getLogger(__name__)


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
