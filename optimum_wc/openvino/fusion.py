"""One MatMul for the SpQR projections that read the same activation (q, k and v; gate and up).

OpenVINO's CPU plugin runs each compressed MatMul as its own node, and each node costs a fixed overhead per
generated token; one MatMul over the projections' rows, split back by rows, costs less than three (on the 270M Llama
of ``benchmarks/spqr_runtime.py``, 8% of an INT4 model's next-token time). The projections' dense parts are
concatenated by rows before dequantization: the IR keeps each weight's own named constants (what the footprint
and rt_info describe), and OpenVINO folds the concatenated codes into one packed u4 constant when it compiles the
model. The sparse outliers are added to the fused output, before the split (``activation_side``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.openvino.activation_side import OutlierTerm, insert_outliers
from optimum_wc.openvino.decompression import DenseParts, dequantize


@dataclass(frozen=True)
class Projection:
    """A MatMul ``y = x W^T`` whose weight is a SpQR dense part."""

    matmul: ov.Node
    parts: DenseParts
    name: str  # the weight's
    output_type: ov.Type | None  # of the dequantized weight's final Convert, if any

    @property
    def rows(self) -> int:
        return self.parts.codes.get_output_partial_shape(0)[0].get_length()

    @property
    def layout(self) -> tuple:
        """What projections must share to be fused: their input, grouped shape and element types."""
        source = self.matmul.input(0).get_source_output()
        codes = self.parts.codes.get_output_partial_shape(0).to_shape()
        return (
            source.get_node().get_friendly_name(),
            source.get_index(),
            tuple(codes)[1:],
            self.parts.zero_point.get_output_element_type(0).get_type_name(),
            str(self.output_type),
        )

    @classmethod
    def of(cls, matmul: ov.Node, port: int, parts: DenseParts, name: str, output_type: ov.Type | None):
        """The projection, or None when the MatMul is not ``x W^T`` with the weight on port 1."""
        attributes = matmul.get_attributes()
        if port != 1 or attributes.get("transpose_a") or not attributes.get("transpose_b"):
            return None
        return cls(matmul, parts, name, output_type)


@dataclass(frozen=True)
class Fused:
    """Where a projection's rows are in a fused MatMul's output."""

    matmul: ov.Node
    first_row: int


def fuse(projections: list[Projection]) -> dict[str, Fused]:
    """Replaces projections that share a layout by one MatMul and a ``VariadicSplit`` of its output, in the given
    order; returns where each projection's rows went, by its MatMul's name."""
    first = projections[0]
    columns = first.matmul.input(0).get_partial_shape()[-1].get_length()
    rows = [projection.rows for projection in projections]
    parts = DenseParts(
        *(opset.concat([getattr(p.parts, field) for p in projections], 0) for field in ("codes", "zero_point", "scale"))
    )
    label = f"{first.name}/fused"
    weight = dequantize(parts, [sum(rows), columns], label, 1, first.output_type)
    matmul = opset.matmul(first.matmul.input(0).get_source_output(), weight, False, True, name=f"{label}/MatMul")
    split = opset.variadic_split(matmul, np.int32(-1), rows, name=f"{label}/split")
    for projection, output in zip(projections, split.outputs()):
        for target in list(projection.matmul.output(0).get_target_inputs()):
            target.replace_source_output(output)
    starts = np.cumsum([0] + rows)
    return {p.matmul.get_friendly_name(): Fused(matmul, int(start)) for p, start in zip(projections, starts)}


def fuse_all(projections: list[Projection]) -> dict[str, Fused]:
    """Fuses each set of two or more projections with the same layout (ordered by weight name: the same graph
    whatever the order they were compressed in)."""
    by_layout: dict[tuple, list[Projection]] = {}
    for projection in projections:
        by_layout.setdefault(projection.layout, []).append(projection)
    fused: dict[str, Fused] = {}
    for group in by_layout.values():
        if len(group) > 1:
            fused.update(fuse(sorted(group, key=lambda projection: projection.name)))
    return fused


def fuse_and_add_outliers(projections: list[Projection], outliers: list[list[OutlierTerm]]) -> None:
    """Fuses the projections (:func:`fuse_all`), then adds each list of outlier terms (terms that read one
    activation) to the MatMuls their weights ended in, fused or not."""
    fused = fuse_all(projections)
    for terms in outliers:
        moved = [
            replace(term, matmul=fused[key].matmul, first_row=fused[key].first_row)
            if (key := term.matmul.get_friendly_name()) in fused
            else term
            for term in terms
        ]
        insert_outliers(sorted(moved, key=lambda term: term.name))  # the same graph whatever the weights' order
