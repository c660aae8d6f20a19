"""New weights moved out of anonymous memory while a model is being compressed: the compressed codes, and the float
weights the data-aware algorithms rewrite.

New Constants are collected; every :data:`CHUNK_BYTES` of them are written to a temporary IR and read back by
OpenVINO, which memory-maps the ``.bin``; the originals are replaced by the mapped Constants and freed. The pages
of a mapped file can be dropped and re-read by the kernel, so the process's anonymous memory stays bounded by a
chunk plus the weights being worked on, not by the whole compressed model. OpenVINO owns the mappings (they live
as long as the Constants that use them); the temporary files are unlinked at once.

The chunk IRs are written here, not by ``openvino.save_model``: a chunk is only Constants and Results, so its
``.xml`` is a few lines per Constant and its ``.bin`` is the Constants' bytes, written as they are (no temporary
``ov.Model``, and none of the serializer's hashing of every byte to share equal Constants, wasted on data that is
read back at once). The final model is saved by OpenVINO as usual.

Used automatically when the weights to compress take half the memory the system has available or more (see
:func:`spill_threshold`: writing to disk costs time, and below that the codes fit in memory with room to spare), and
whenever ``scratch_dir`` is given. The compressed model is the same, byte for byte.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from typing import Callable
from xml.sax.saxutils import quoteattr

import numpy as np
import openvino.opset13 as opset

import openvino as ov
from optimum_wc.openvino.pages import mappings_of

SCRATCH_MIN_BYTES = 512 * 2**20  # weights to compress, in their float size: never less than this
CHUNK_BYTES = 64 * 2**20
ALIGNMENT = 64  # bytes: each Constant's data starts on a cache line of the mapped file
PRECISIONS = {"f16": "FP16", "f32": "FP32", "f64": "FP64", "u1": "BIN", "boolean": "BOOL"}  # the others: upper case


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (``MemAvailable``), None where it cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def spill_threshold() -> int:
    """Float bytes of weights to compress from which their codes (and the data-aware algorithms' caches) go to
    scratch files: half the available memory, at least :data:`SCRATCH_MIN_BYTES` (just that where the available
    memory is unknown)."""
    available = available_memory()
    return SCRATCH_MIN_BYTES if available is None else max(SCRATCH_MIN_BYTES, available // 2)


def write_constants_ir(constants: list[ov.Node], xml: pathlib.Path) -> None:
    """Writes an IR (version 11) whose outputs are ``constants``, each under its friendly name (unique here)."""
    layers, edges = [], []
    offset = 0
    with open(xml.with_suffix(".bin"), "wb") as weights:
        for index, constant in enumerate(constants):
            data = np.ascontiguousarray(constant.data).reshape(-1).view(np.uint8)  # the stored bytes, packed
            padding = -offset % ALIGNMENT
            weights.write(bytes(padding))
            offset += padding
            weights.write(memoryview(data))
            shape = [int(d) for d in constant.get_output_shape(0)]
            dims = "".join(f"<dim>{d}</dim>" for d in shape)
            name = constant.get_friendly_name()
            element = constant.get_output_element_type(0).get_type_name()
            port = f'<port id="0" precision="{PRECISIONS.get(element, element.upper())}">{dims}</port>'
            layers.append(
                f'<layer id="{2 * index}" name={quoteattr(name)} type="Const" version="opset1">'
                f'<data element_type="{element}" shape="{",".join(map(str, shape))}" offset="{offset}" '
                f'size="{data.size}" /><output>{port}</output></layer>'
                f'<layer id="{2 * index + 1}" name={quoteattr(name + "/result")} type="Result" version="opset1">'
                f"<input>{port}</input></layer>"
            )
            edges.append(f'<edge from-layer="{2 * index}" from-port="0" to-layer="{2 * index + 1}" to-port="0" />')
            offset += data.size
    xml.write_text(
        f'<?xml version="1.0"?>\n<net name="scratch" version="11"><layers>{"".join(layers)}</layers>'
        f"<edges>{''.join(edges)}</edges></net>\n",
        encoding="utf-8",
    )


class ScratchIR:
    """``hold(constant)`` queues a new Constant; ``flush()`` maps the queued ones from disk, and calls ``on_mapped``
    with each queued Constant and the mapped one that replaced it (for those who keep references). Use as a
    context."""

    def __init__(
        self,
        directory: str | os.PathLike | None = None,
        chunk_bytes: int | None = None,
        on_mapped: Callable[[ov.Node, ov.Node], None] | None = None,
    ):
        self.on_mapped = on_mapped
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="optimum-wc-scratch-", dir=directory))
        self.chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
        self.pending: list[tuple[ov.Node, np.ndarray | None]] = []
        self.pending_bytes = 0
        self.chunks = 0
        self.core = ov.Core()

    def hold(self, constant: ov.Node, shared: np.ndarray | None = None) -> None:
        """Queues ``constant``; one queued under the same name before is superseded (a weight rewritten twice).
        ``shared``: the array whose memory the Constant shares, kept alive until the Constant is mapped from disk.

        A full queue is flushed first, before ``constant`` joins it: a flush rewires the consumers a queued
        Constant has, and one just built may have none yet."""
        if self.pending_bytes >= self.chunk_bytes:
            self.flush()
        if len(
            constant.get_rt_info()
        ):  # the chunk IRs carry no rt_info: such a Constant stays in memory (ours have none)
            return
        name = constant.get_friendly_name()
        superseded = [c for c, _ in self.pending if c.get_friendly_name() == name]
        if superseded:
            self.pending = [(c, s) for c, s in self.pending if c.get_friendly_name() != name]
            self.pending_bytes -= sum(c.get_byte_size() for c in superseded)
        self.pending.append((constant, shared))
        self.pending_bytes += constant.get_byte_size()

    def flush(self) -> None:
        if not self.pending:
            return
        xml = self.folder / f"chunk{self.chunks}.xml"
        self.chunks += 1
        write_constants_ir([c for c, _ in self.pending], xml)
        mapped = {
            op.get_friendly_name(): op for op in self.core.read_model(xml).get_ops() if op.get_type_name() == "Constant"
        }
        for constant, _ in self.pending:
            replacement = mapped[constant.get_friendly_name()]
            for target in list(constant.output(0).get_target_inputs()):
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


def detach_from_file(
    model: ov.Model, weights_file: str | os.PathLike, directory: str | os.PathLike | None = None
) -> int:
    """Moves the Constants of ``model`` that are still read from the memory-mapped ``weights_file`` (those left as
    they were: norms, biases, ignored layers) into a temporary IR of their own, mapped back and unlinked; returns
    how many moved.

    Then the model no longer reads the file, so it can be saved over that very file: writing it truncates the file,
    and a model still mapping it would be killed by SIGBUS (as plain OpenVINO and nncf are). These Constants are
    written by OpenVINO's serializer, which keeps their rt_info; the saved model is the same, byte for byte.
    """
    regions = mappings_of(weights_file)
    if not regions:
        return 0
    mapped = []
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_byte_size():
            address = op.get_tensor_view().data.ctypes.data
            if any(low <= address < high for low, high in regions):
                mapped.append(op)
    if not mapped:
        return 0
    folder = pathlib.Path(tempfile.mkdtemp(prefix="optimum-wc-detach-", dir=directory))
    names = [op.output(0).get_names() for op in mapped]  # the serializer names the outputs of the Results below
    try:
        results = [opset.result(op.output(0)) for op in mapped]
        ov.save_model(ov.Model(results, [], "detached"), folder / "detached.xml", compress_to_fp16=False)
        copies = [result.input_value(0) for result in ov.Core().read_model(folder / "detached.xml").get_results()]
        for op, result, copy, own in zip(mapped, results, copies, names):
            copy.set_names(own)
            result.input(0).replace_source_output(copy)  # the temporary Result lets go of the original
            for target in list(op.output(0).get_target_inputs()):
                target.replace_source_output(copy)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the new mapping stays valid
    return len(mapped)
