"""Ops on a MatMul's activation that let its weight stay packed: a column permutation, and sparse outliers.

OpenVINO folds any op applied to a weight constant into a dense float matrix when it compiles the model; these
act on the activation ``x`` (input ``1 - port``) or the output ``y`` instead, for a weight used as ``y = x W^T``:

- permutation (GPTQ act order, imported act-order checkpoints, SpQR): ``MatMul(Gather(x, perm, -1), W_perm)``;
- outliers (SpQR), a sparse matrix ``O`` stored row by row (CSR): ``y[..., r] += sum_k v_k x[..., c_k]`` over row
  ``r``'s outliers, added to the MatMul's output. MatMuls that share an activation (q, k and v; gate and up) share
  one computation, split back by rows, in one of two forms:
  - the ELL form, where slot ``k`` of row ``r`` holds the row's ``k``-th outlier (or a zero), for ``K`` slots, the
    most outliers of any row: ``Gather`` of the activation's channels ``[..., K * d_out]``, ``Multiply`` by the
    values, ``ReduceSum`` over the slots: three ops with fast CPU kernels, used up to ``ELL_MAX_SLOTS`` slots;
  - ``EmbeddingBagOffsets`` (sum) with the transposed activation as its table, one bag per row: a reference kernel
    on the CPU plugin (about twice the ELL form's time per generated token), but it does not hold ``K * d_out``
    values per token, which a prompt of many tokens would make large when rows have many outliers.
  (An ``If`` choosing the ELL form for one token and the bags for a prompt was slower still: the CPU plugin gives
  each ``If`` body its own memory and overhead.)
  Small constant subgraphs turn the stored CSR into both forms; OpenVINO folds them when it compiles the model, so
  the IR stays CSR-sized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openvino as ov
from openvino import opset15
from openvino import opset13 as opset

from optimum_wc.kernels.packing import PackedArray
from optimum_wc.kernels.spqr_storage import StoredOutliers
from optimum_wc.openvino.decompression import packed_constant

ELL_MAX_SLOTS = 8  # the ELL form holds slots * d_out values per token: at most 8 MatMul outputs' worth


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


@dataclass(frozen=True)
class _Stored:
    """One term's CSR constants in the graph: i32 offsets and columns, float16 values."""

    offsets: ov.Node
    columns: ov.Node
    values: ov.Node

    @classmethod
    def of(cls, term: OutlierTerm) -> _Stored:
        outliers, name = term.outliers, term.name
        values = ov.op.Constant(np.ascontiguousarray(outliers.values, dtype=np.float16))
        values.set_friendly_name(f"{name}/outliers/values")
        return cls(_indices(outliers.offsets, f"{name}/outliers/offsets"),
                   _indices(outliers.columns, f"{name}/outliers/columns"), values)  # fmt: skip


def _ell(term: OutlierTerm, stored: _Stored, slots: int) -> tuple[ov.Node, ov.Node]:
    """``[slots, d_out]`` column indices (i32) and float16 values from the stored CSR; slot ``k`` of row ``r`` is
    outlier ``offsets[r] + k`` when the row has more than ``k``, else an appended zero."""
    count = term.outliers.count
    ends = opset.concat([opset.slice(stored.offsets, [1], [term.rows], [1]), opset.constant([count], ov.Type.i32)], 0)
    slot = opset.unsqueeze(opset.range(0, slots, 1, ov.Type.i32), 1)  # [slots, 1]
    position = opset.add(opset.unsqueeze(stored.offsets, 0), slot)
    index = opset.select(opset.less(position, opset.unsqueeze(ends, 0)), position, np.int32(count))
    return (opset.gather(opset.concat([stored.columns, opset.constant([0], ov.Type.i32)], 0), index, np.int32(0)),
            opset.gather(opset.concat([stored.values, opset.constant([0], ov.Type.f16)], 0), index, np.int32(0)))  # fmt: skip


def _concat(nodes: list[ov.Node], axis: int) -> ov.Node:
    return nodes[0] if len(nodes) == 1 else opset.concat(nodes, axis)


def _in_type(values: ov.Node, x: ov.Output) -> ov.Node:
    return values if x.get_element_type() == ov.Type.f16 else opset.convert(values, x.get_element_type())


def _ell_sums(x: ov.Output, columns: ov.Output, values: ov.Output, slots: int, rows: int, label: str) -> ov.Node:
    """``[..., rows]``: ReduceSum over the slots of ``x[..., columns] * values``."""
    products = opset.multiply(opset.gather(x, columns, np.int32(-1), name=f"{label}/gather"), values)
    leading = [0] * (x.get_partial_shape().rank.get_length() - 1)
    by_slot = opset.reshape(products, leading + [slots, rows], special_zero=True)
    return opset.reduce_sum(by_slot, np.int32(-2), keep_dims=False, name=f"{label}/sum")


def _bag_sums(x: ov.Output, indices: ov.Output, offsets: ov.Output, weights: ov.Output, rows: int, label: str) -> ov.Node:
    """``[..., rows]``: one bag per row over the transposed activation ``[in, tokens]``."""
    channels = x.get_partial_shape()[-1].get_length()
    table = opset.transpose(opset.reshape(x, [-1, channels], special_zero=False), [1, 0])
    bags = opset15.embedding_bag_offsets(table, indices, offsets, per_sample_weights=weights, reduction="sum",
                                         name=f"{label}/bags")  # fmt: skip
    shape = opset.concat([opset.slice(opset.shape_of(x), [0], [-1], [1]), opset.constant([rows], ov.Type.i64)], 0)
    return opset.reshape(opset.transpose(bags, [1, 0]), shape, special_zero=False)


def _ell_form(terms: list[OutlierTerm], stored: list[_Stored], x: ov.Output, slots: int, label: str) -> ov.Node:
    ell = [_ell(term, csr, slots) for term, csr in zip(terms, stored)]
    columns = opset.reshape(_concat([columns for columns, _ in ell], 1), [-1], special_zero=False)
    values = _in_type(opset.reshape(_concat([values for _, values in ell], 1), [-1], special_zero=False), x)
    return _ell_sums(x, columns.output(0), values.output(0), slots, sum(term.rows for term in terms), label)


def _bag_form(terms: list[OutlierTerm], stored: list[_Stored], x: ov.Output, label: str) -> ov.Node:
    starts = np.cumsum([0] + [term.outliers.count for term in terms])  # each term's first outlier in the bags
    offsets = _concat([opset.add(csr.offsets, np.int32(start)) for csr, start in zip(stored, starts)], 0)
    zero = opset.constant([0], ov.Type.i32), opset.constant([0], ov.Type.f16)  # closes an empty last bag
    indices = opset.concat([csr.columns for csr in stored] + [zero[0]], 0)
    weights = _in_type(opset.concat([csr.values for csr in stored] + [zero[1]], 0), x)
    return _bag_sums(x, indices.output(0), offsets.output(0), weights.output(0), sum(term.rows for term in terms), label)


def insert_outliers(terms: list[OutlierTerm]) -> None:
    """Adds each term's sparse product ``x O^T`` to its MatMul's output; the terms share one activation ``x``, and
    their ``columns`` index its channels in their original order (before any permutation Gather).

    The ELL form (``Gather``, ``Multiply``, ``ReduceSum``: fast kernels) when no row has more than
    :data:`ELL_MAX_SLOTS` outliers; else ``EmbeddingBagOffsets`` over the transposed activation, which does not hold
    ``slots * d_out`` values per token (at 1% of outliers the ELL form would need 20 to 40 slots: for a 512-token
    prompt, about 3x the peak memory of INT4 on a 270M Llama)."""
    x = terms[0].activation
    label = f"{terms[0].name}/outliers"
    slots, rows = max(term.slots for term in terms), [term.rows for term in terms]
    stored = [_Stored.of(term) for term in terms]
    sums = (_ell_form(terms, stored, x, slots, label) if slots <= ELL_MAX_SLOTS else _bag_form(terms, stored, x, label)).output(0)
    parts = [sums] if len(terms) == 1 else list(opset.variadic_split(sums, np.int32(-1), rows).outputs())
    for term, part in zip(terms, parts):
        y = term.matmul.output(0)
        consumers = list(y.get_target_inputs())
        total = opset.add(y, part, name=f"{term.name}/outliers/add")
        for target in consumers:
            target.replace_source_output(total.output(0))
