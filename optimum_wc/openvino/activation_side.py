"""Ops on a MatMul's activation that let its weight stay packed: a column permutation, and sparse outliers.

OpenVINO folds any op applied to a weight constant into a dense float matrix when it compiles the model; these
act on the activation ``x`` (input ``1 - port``) or the output ``y`` instead, for a weight used as ``y = x W^T``:

- permutation (GPTQ act-order checkpoints, SpQR): ``MatMul(Gather(x, perm, -1), W_perm)``;
- outliers (SpQR), a sparse matrix ``O`` stored row by row (CSR): ``y[..., r] += sum_k v_k x[..., c_k]`` over row
  ``r``'s outliers. At run time it is in ELL form: slot ``k`` of row ``r`` holds the row's ``k``-th outlier (or a
  zero), for ``K`` slots, the most outliers of any row. A small constant subgraph turns the stored CSR into it (folded
  when OpenVINO compiles the model, so the IR stays CSR-sized), and three ops with fast CPU kernels compute it:
  ``Gather`` of the activation's channels ``[..., K * d_out]``, ``Multiply`` by the values, ``ReduceSum`` over the
  slots. MatMuls that share an activation (q, k and v; gate and up) share these ops, split back by rows.
  (``EmbeddingBagOffsets`` computes the same thing, but the CPU plugin runs it with a reference kernel and needs the
  activation transposed: it cost three to four times as much per token on a 270M Llama.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openvino as ov
from openvino import opset13 as opset

from optimum_wc.kernels.packing import PackedArray
from optimum_wc.kernels.spqr_storage import StoredOutliers
from optimum_wc.openvino.decompression import packed_constant


def _indices(packed: PackedArray, name: str) -> ov.Node:
    constant = packed_constant(packed, name)
    return constant if packed.storage == "i32" else opset.convert(constant, ov.Type.i32)


def insert_permutation(
    matmul: ov.Node,
    port: int,
    permutation: PackedArray,
    name: str,
    label: str = "permutation",
    shared: dict[tuple[str, int, bytes], ov.Output] | None = None,
) -> None:
    """Gathers the activation's input channels in ``permutation`` order before the MatMul (the Gather is named
    ``{name}/{label}``). MatMuls given the same ``shared`` dict share one Gather when they permute the same
    activation the same way."""
    activation = matmul.input(1 - port)
    source = activation.get_source_output()
    key = (source.get_node().get_friendly_name(), source.get_index(), permutation.data.tobytes())
    gathered = None if shared is None else shared.get(key)
    if gathered is None:
        indices = _indices(permutation, f"{name}/{label}/indices")
        gathered = opset.gather(source, indices, np.int32(-1), name=f"{name}/{label}").output(0)
        if shared is not None:
            shared[key] = gathered
    activation.replace_source_output(gathered)


@dataclass(frozen=True)
class OutlierTerm:
    """One MatMul's sparse part, to add to its output; ``activation`` is its input before any permutation."""

    matmul: ov.Node
    activation: ov.Output
    outliers: StoredOutliers
    name: str

    @classmethod
    def of(cls, matmul: ov.Node, port: int, outliers: StoredOutliers, name: str) -> OutlierTerm:
        return cls(matmul, matmul.input(1 - port).get_source_output(), outliers, name)

    @property
    def rows(self) -> int:
        return self.outliers.offsets.shape[0]

    @property
    def slots(self) -> int:
        """The most outliers in one row."""
        offsets = self.outliers.offsets.data.astype(np.int64)
        return int(np.diff(np.append(offsets, self.outliers.count)).max())


def _ell(term: OutlierTerm, slots: int) -> tuple[ov.Node, ov.Node]:
    """``[slots, d_out]`` column indices (i32) and float16 values from the stored CSR; slot ``k`` of row ``r`` is
    outlier ``offsets[r] + k`` when the row has more than ``k``, else an appended zero."""
    outliers, name = term.outliers, term.name
    offsets = _indices(outliers.offsets, f"{name}/outliers/offsets")
    ends = opset.concat([opset.slice(offsets, [1], [term.rows], [1]), opset.constant([outliers.count], ov.Type.i32)], 0)
    slot = opset.unsqueeze(opset.range(0, slots, 1, ov.Type.i32), 1)  # [slots, 1]
    position = opset.add(opset.unsqueeze(offsets, 0), slot)
    index = opset.select(opset.less(position, opset.unsqueeze(ends, 0)), position, np.int32(outliers.count))
    values = ov.op.Constant(np.ascontiguousarray(outliers.values, dtype=np.float16))
    values.set_friendly_name(f"{name}/outliers/values")
    columns = _indices(outliers.columns, f"{name}/outliers/columns")
    pad = opset.constant([0], ov.Type.i32), opset.constant([0], ov.Type.f16)
    return (opset.gather(opset.concat([columns, pad[0]], 0), index, np.int32(0)),
            opset.gather(opset.concat([values, pad[1]], 0), index, np.int32(0)))  # fmt: skip


def insert_outliers(terms: list[OutlierTerm]) -> None:
    """Adds each term's sparse product ``x O^T`` to its MatMul's output; the terms share one activation ``x``, and
    their ``columns`` index its channels in their original order (before any permutation Gather)."""
    x = terms[0].activation
    slots = max(term.slots for term in terms)
    columns, values = zip(*(_ell(term, slots) for term in terms))
    rows = [term.rows for term in terms]
    label = f"{terms[0].name}/outliers"
    if len(terms) > 1:
        columns, values = (opset.concat(list(part), 1) for part in (columns, values))
    else:
        columns, values = columns[0], values[0]
    values = opset.reshape(values, [-1], special_zero=False)
    if x.get_element_type() != ov.Type.f16:
        values = opset.convert(values, x.get_element_type())
    gathered = opset.gather(x, opset.reshape(columns, [-1], special_zero=False), np.int32(-1), name=f"{label}/gather")
    products = opset.multiply(gathered, values, name=f"{label}/multiply")
    leading = [0] * (x.get_partial_shape().rank.get_length() - 1)
    by_slot = opset.reshape(products, leading + [slots, sum(rows)], special_zero=True)
    sums = opset.reduce_sum(by_slot, np.int32(-2), keep_dims=False, name=f"{label}/sum")
    parts = [sums.output(0)] if len(terms) == 1 else list(opset.variadic_split(sums, np.int32(-1), rows).outputs())
    for term, part in zip(terms, parts):
        y = term.matmul.output(0)
        consumers = list(y.get_target_inputs())
        total = opset.add(y, part, name=f"{term.name}/outliers/add")
        for target in consumers:
            target.replace_source_output(total.output(0))
