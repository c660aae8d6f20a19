"""Side-by-side runs of nncf and optimum-wc on one IR, and the comparison of what they write.

"Byte-identical" means: the same ``.bin`` bytes; the same graph (op types, friendly names, connections, element
types, shapes) once OpenVINO's auto-generated ``<Type>_<N>`` names (and their ``_compressed`` copies at an f16
save) are set aside and the counter in names made from one (``Transpose_10183/scale``: an exported weight's own auto
name) is ignored; the same ``nncf`` rt_info.
Used by the parity tests and by ``benchmarks/parity.py``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
import pathlib
import re

import numpy as np
import openvino.opset13 as opset

import openvino as ov

AUTO_NAME = re.compile(r"^[A-Za-z0-9]+_\d+(_compressed)?$")  # and its f16 copy at save
# A name OpenVINO made from its process-wide counter (``Transpose_10183``, ``Constant_137822_1_1``), which an export
# in another process (or later in this one) numbers differently, and names derived from one (``Transpose_10183/scale``)
COUNTED_NAME = re.compile(r"^(?P<type>[A-Z][A-Za-z0-9]*)_\d+(?P<copies>(?:_\d+)*)(?P<rest>/.*)?$")
# an unnamed input OpenVINO named after its consumer and its own counter (``w_nncf_codebook/Constant_25479``, the
# axis of a Gather)
COUNTED_SUFFIX = re.compile(r"^(?P<head>.+/)(?P<type>[A-Z][A-Za-z0-9]*)_\d+$")


@dataclass
class ParityReport:
    """Differences between two compressed IRs; empty lists mean identical."""

    bin_equal: bool
    graph_differences: list[str] = field(default_factory=list)
    rt_info_differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.bin_equal and not self.graph_differences and not self.rt_info_differences

    def describe(self) -> str:
        parts = [] if self.bin_equal else [".bin bytes differ"]
        return "; ".join(parts + self.graph_differences[:5] + self.rt_info_differences[:5]) or "identical"


def compress_and_save(xml: pathlib.Path, out_dir: pathlib.Path, library: str, **kwargs) -> pathlib.Path:
    """Reads ``xml``, compresses it with ``library`` ("nncf" or "optimum_wc") and saves it in ``out_dir``."""
    model = ov.Core().read_model(xml)
    if library == "nncf":
        import nncf

        model = nncf.compress_weights(model, **kwargs)
    else:
        import optimum_wc

        model = optimum_wc.compress_weights(model, progress=False, **kwargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "openvino_model.xml"
    ov.save_model(model, path, compress_to_fp16=False)
    return path


def assert_same_as_nncf(xml: pathlib.Path, tmp_path: pathlib.Path, **kwargs) -> None:
    """Compresses ``xml`` with both libraries (nncf gets its own enum members) and asserts identical IRs."""
    from helpers import nncf_kwargs

    reference = compress_and_save(xml, tmp_path / "nncf", "nncf", **nncf_kwargs(kwargs))
    ours = compress_and_save(xml, tmp_path / "ours", "optimum_wc", **kwargs)
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


def undo_int16_scales(model: ov.Model) -> list[str]:
    """Repairs, in place, the scales that nncf 3.4.0 writes as ``i16`` and returns their names.

    nncf builds each scale Constant from its numpy array with ``dtype=f16``; OpenVINO's Python API turns a
    non-contiguous float array given that way into an ``i16`` Constant holding the float16 bits, and nncf's
    ``Convert`` to f16 then reads those bits as integers (a scale of 0.0039 becomes 7186). nncf's arrays are
    non-contiguous after scale estimation on weights stored transposed (``transpose_b=False``) of at least 10000
    elements, such as gpt-oss's experts, so its model is broken there; ours stores the float16 scale. Each
    ``<weight>/scale`` i16 Constant and its Convert become the float16 Constant of the same bits, the graph ours
    writes, so that the rest can still be compared byte for byte.
    """
    repaired = []
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        if (
            op.get_type_name() != "Constant"
            or not name.endswith("/scale")
            or op.get_output_element_type(0) != ov.Type.i16
        ):
            continue
        for target in list(op.output(0).get_target_inputs()):
            convert = target.get_node()
            if convert.get_type_name() != "Convert" or convert.get_output_element_type(0) != ov.Type.f16:
                continue
            values = op.get_data().view(np.float16)
            fixed = opset.constant(values, dtype=ov.Type.f16, name=name)
            for consumer in list(convert.output(0).get_target_inputs()):
                consumer.replace_source_output(fixed.output(0))
            repaired.append(name)
    return repaired


def _graph_signature(model: ov.Model) -> list[tuple]:
    return _graph_signature_of(model.get_ordered_ops())


def _graph_signature_of(ops: list) -> list[tuple]:
    index = {op.get_instance_id(): i for i, op in enumerate(ops)}  # not by name: auto names can repeat
    signature = []
    for op in ops:
        name = op.get_friendly_name()
        shown = "<auto>" if AUTO_NAME.match(name) and name.startswith(op.get_type_name()) else name
        counted = COUNTED_NAME.match(shown)
        if counted:
            shown = f"{counted['type']}_<N>{counted['copies']}{counted['rest'] or ''}"
        suffix = COUNTED_SUFFIX.match(shown)
        if suffix and suffix["type"] == op.get_type_name():
            shown = f"{suffix['head']}{suffix['type']}_<N>"
        inputs = tuple((index[v.get_node().get_instance_id()], v.get_index()) for v in op.input_values())
        outputs = tuple((o.get_element_type().get_type_name(), str(o.get_partial_shape())) for o in op.outputs())
        signature.append((op.get_type_name(), shown, inputs, outputs))
    return signature


def _rt_info_entries(model: ov.Model, root: str) -> dict[str, str]:
    if not model.has_rt_info([root]):
        return {}
    entries: dict[str, str] = {}

    def walk(node, prefix):
        value = node.value if hasattr(node, "value") else node
        if isinstance(value, dict) or hasattr(value, "items"):
            for key, child in value.items():
                walk(child, f"{prefix}/{key}")
        else:
            entries[prefix] = str(value)

    walk(model.get_rt_info([root]), root)
    return entries


def compare_ir(
    reference_xml: pathlib.Path, candidate_xml: pathlib.Path, rt_roots: tuple[str, ...] = ("nncf",)
) -> ParityReport:
    """Compares two saved IRs (the reference is nncf's), and their rt_info under ``rt_roots``."""
    core = ov.Core()
    reference, candidate = core.read_model(reference_xml), core.read_model(candidate_xml)
    report = ParityReport(
        bin_equal=reference_xml.with_suffix(".bin").read_bytes() == candidate_xml.with_suffix(".bin").read_bytes()
    )
    ref_sig, cand_sig = _graph_signature(reference), _graph_signature(candidate)
    if len(ref_sig) != len(cand_sig):
        report.graph_differences.append(f"op count {len(ref_sig)} != {len(cand_sig)}")
    for i, (a, b) in enumerate(zip(ref_sig, cand_sig)):
        if a != b:
            report.graph_differences.append(f"op {i}: nncf {a} != ours {b}")
    ref_rt, cand_rt = {}, {}
    for root in rt_roots:
        ref_rt.update(_rt_info_entries(reference, root))
        cand_rt.update(_rt_info_entries(candidate, root))
    for key in sorted(set(ref_rt) | set(cand_rt)):
        if ref_rt.get(key) != cand_rt.get(key):
            report.rt_info_differences.append(f"rt_info {key}: nncf {ref_rt.get(key)!r} != ours {cand_rt.get(key)!r}")
    return report


def same_graph_in_any_order(reference_xml: pathlib.Path, candidate_xml: pathlib.Path) -> list[str]:
    """The differences between two saved IRs taken as sets: each op with its type, name, producers (by name) and
    outputs, and each Constant's bytes, whatever the order the IR lists them in (for exports that order the same
    graph differently from run to run). Empty when they are the same graph with the same weights."""

    def described(xml: pathlib.Path) -> collections.Counter:
        ops = ov.Core().read_model(xml).get_ordered_ops()
        signature = _graph_signature_of(ops)
        names = [entry[1] for entry in signature]
        rows = []
        for op, (kind, name, inputs, outputs) in zip(ops, signature):
            data = op.get_data().tobytes() if kind == "Constant" else b""
            rows.append((kind, name, tuple((names[i], port) for i, port in inputs), outputs, hash(data)))
        return collections.Counter(rows)

    reference, candidate = described(reference_xml), described(candidate_xml)
    return [f"nncf only: {row[:2]}" for row in reference - candidate] + [
        f"ours only: {row[:2]}" for row in candidate - reference
    ]


def _constants(xml) -> dict[str, np.ndarray]:
    model = ov.Core().read_model(xml)
    found = {}
    for op in model.get_ops():
        if op.get_type_name() == "Constant":
            real = op.get_output_element_type(0).is_real()
            found[op.get_friendly_name()] = op.get_data(dtype=np.float32) if real else op.get_data()
    return found


def differing_share(reference, ours) -> dict[str, float]:
    """Share of differing elements of each named constant (auto-named ones are compared by the graph check)."""
    a, b = _constants(reference), _constants(ours)
    shares = {}
    for name in sorted(set(a) & set(b)):
        if not name.startswith("Constant_") and a[name].shape == b[name].shape:
            shares[name] = float(np.mean(a[name] != b[name])) if a[name].size else 0.0
    return shares
