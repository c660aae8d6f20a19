"""New weights moved out of anonymous memory while a model is being compressed: the compressed codes, and the float
weights the data-aware algorithms rewrite.

New Constants are collected; every :data:`CHUNK_BYTES` of them are saved to a temporary IR and read back
by OpenVINO, which memory-maps the ``.bin``; the originals are replaced by the mapped Constants and freed. The
pages of a mapped file can be dropped and re-read by the kernel, so the process's anonymous memory stays bounded by
a chunk plus the weights being worked on, not by the whole compressed model. OpenVINO owns the mappings (they live
as long as the Constants that use them); the temporary files are unlinked at once.

Used automatically from :data:`SCRATCH_MIN_BYTES` of weights to compress, and whenever ``scratch_dir`` is given.
The compressed model is the same, byte for byte.
"""

from __future__ import annotations

from typing import Callable
import os
import pathlib
import shutil
import tempfile

import openvino as ov
from openvino import opset13 as opset

SCRATCH_MIN_BYTES = 512 * 2**20  # weights to compress, in their float size
CHUNK_BYTES = 64 * 2**20


class ScratchIR:
    """``hold(constant)`` queues a new Constant; ``flush()`` maps the queued ones from disk, and calls ``on_mapped``
    with each queued Constant and the mapped one that replaced it (for those who keep references). Use as a
    context."""

    def __init__(
        self, directory: str | os.PathLike | None = None, chunk_bytes: int | None = None,
        on_mapped: Callable[[ov.Node, ov.Node], None] | None = None,
    ):  # fmt: skip
        self.on_mapped = on_mapped
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="optimum-wc-scratch-", dir=directory))
        self.chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
        self.pending: list[ov.Node] = []
        self.pending_bytes = 0
        self.chunks = 0
        self.core = ov.Core()

    def hold(self, constant: ov.Node) -> None:
        """Queues ``constant``; one queued under the same name before is superseded (a weight rewritten twice)."""
        name = constant.get_friendly_name()
        superseded = [c for c in self.pending if c.get_friendly_name() == name]
        if superseded:
            self.pending = [c for c in self.pending if c.get_friendly_name() != name]
            self.pending_bytes -= sum(c.get_byte_size() for c in superseded)
        self.pending.append(constant)
        self.pending_bytes += constant.get_byte_size()
        if self.pending_bytes >= self.chunk_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        xml = self.folder / f"chunk{self.chunks}.xml"
        self.chunks += 1
        ov.save_model(ov.Model([opset.result(c) for c in self.pending], []), xml, compress_to_fp16=False)
        mapped = {op.get_friendly_name(): op for op in self.core.read_model(xml).get_ops() if op.get_type_name() == "Constant"}
        for constant in self.pending:
            replacement = mapped[constant.get_friendly_name()]
            for target in list(constant.output(0).get_target_inputs()):
                if target.get_node().get_type_name() != "Result":
                    target.replace_source_output(replacement.output(0))
            if self.on_mapped is not None:
                self.on_mapped(constant, replacement)
        xml.unlink()
        xml.with_suffix(".bin").unlink()  # the mapping stays valid
        self.pending, self.pending_bytes = [], 0

    def __enter__(self) -> ScratchIR:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.flush()
        finally:
            self.pending = []
            shutil.rmtree(self.folder, ignore_errors=True)
