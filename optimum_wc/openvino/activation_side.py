"""Ops on a MatMul's activation that let its weight stay packed: a column permutation, and sparse outliers.

OpenVINO folds any op applied to a weight constant into a dense float matrix when it compiles the model; these
act on the activation ``x`` (input ``1 - port``) or the output ``y`` instead, for a weight used as ``y = x W^T``:

- permutation (GPTQ act order, imported act-order checkpoints, SpQR): ``MatMul(Gather(x, perm, -1), W_perm)``;
- outliers (SpQR), a sparse matrix ``O`` stored row by row (CSR): ``y[..., r] += sum_k v_k x[..., c_k]`` over row
  ``r``'s outliers, added to the MatMul's output. MatMuls that share an activation (q, k and v; gate and up, which
  ``fusion`` makes one MatMul) share one sparse product, in one of two forms:
  - the ELL form over the rows that have outliers, where slot ``k`` of such a row holds its ``k``-th outlier (or a
    zero), for ``K`` slots, the most outliers of any row: ``Gather`` of the activation's channels, ``Multiply`` by
    the values, ``ReduceSum`` over the slots (ops with fast CPU kernels, used up to ``ELL_MAX_SLOTS`` slots), then
    one ``Gather`` spreads the sums over the MatMul's rows (zero for the rows without outliers);
  - ``EmbeddingBagOffsets`` (sum) with the transposed activation as its table, one bag per row of the MatMuls
    (empty for the rows without outliers, so the sums are in the order of the MatMul's rows): a slower reference
    kernel, but it does not hold ``K`` values per row and token, which a long prompt would make large when rows
    have many outliers.
  The sums are added to the MatMul's output (a ``VariadicSplit`` first when several MatMuls read the activation).
  The CPU plugin's cost per op dominates a generated token when few rows have outliers, so the graph has as few
  ops per activation as it can. Small constant subgraphs turn the stored CSR into both forms; OpenVINO folds them
  when it compiles the model, so the IR stays CSR-sized. Why these forms and not others: benchmarks/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from openvino import opset15
from optimum_wc.algorithms.spqr_storage import StoredOutliers
from optimum_wc.kernels.packing import PackedArray
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
    first_row: int = 0  # of the weight's rows in the MatMul's output (a fused MatMul holds several weights)

    @classmethod
    def of(cls, matmul: ov.Node, port: int, outliers: StoredOutliers, name: str) -> OutlierTerm:
        return cls(matmul, matmul.input(1 - port).get_source_output(), outliers, name)

    @property
    def rows(self) -> int:
        return self.outliers.offsets.shape[0]

    @property
    def counts(self) -> np.ndarray:
        """Outliers in each row."""
        return np.diff(np.append(self.outliers.offsets.data.astype(np.int64), self.outliers.count))

    @property
    def kept_rows(self) -> int:
        """Rows with at least one outlier."""
        return int(np.count_nonzero(self.counts))

    @property
    def slots(self) -> int:
        """The most outliers in one row."""
        return int(self.counts.max())


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
        return cls(
            _indices(outliers.offsets, f"{name}/outliers/offsets"),
            _indices(outliers.columns, f"{name}/outliers/columns"),
            values,
        )


def _ends(term: OutlierTerm, stored: _Stored) -> ov.Node:
    """Where each row's outliers end: the next row's offset, and the count for the last row."""
    count = term.outliers.count
    return opset.concat([opset.slice(stored.offsets, [1], [term.rows], [1]), opset.constant([count], ov.Type.i32)], 0)


@dataclass(frozen=True)
class _Span:
    """Consecutive rows of the sparse product: one term's rows, or rows without outliers (``term`` None)."""

    term: OutlierTerm | None
    rows: int


@dataclass(frozen=True)
class _Targets:
    """The MatMuls the terms add to, in order, and the rows of the sparse product: all of each MatMul's rows."""

    matmuls: list[tuple[ov.Node, str]]  # and the name of the first weight in it (what the Add is named after)
    sizes: list[int]  # rows of each MatMul's output
    spans: list[_Span]

    @classmethod
    def of(cls, terms: list[OutlierTerm]) -> _Targets:
        by_matmul: dict[str, list[OutlierTerm]] = {}
        for term in terms:
            by_matmul.setdefault(term.matmul.get_friendly_name(), []).append(term)
        matmuls, sizes, spans = [], [], []
        for placed in by_matmul.values():
            matmul, rows, row = placed[0].matmul, placed[0].matmul.get_output_partial_shape(0)[-1].get_length(), 0
            for term in sorted(placed, key=lambda term: term.first_row):
                spans += [_Span(None, term.first_row - row)] if term.first_row > row else []
                spans.append(_Span(term, term.rows))
                row = term.first_row + term.rows
            spans += [_Span(None, rows - row)] if rows > row else []
            matmuls.append((matmul, placed[0].name))
            sizes.append(rows)
        return cls(matmuls, sizes, spans)


def _ell(term: OutlierTerm, stored: _Stored, ends: ov.Node, has: ov.Node, slots: int) -> tuple[ov.Node, ov.Node]:
    """``[slots, rows']`` column indices (i32) and float16 values over the ``rows'`` rows that have outliers
    (``has``), from the stored CSR; slot ``k`` of such a row is its outlier ``offsets[r] + k`` when it has more than
    ``k``, else an appended zero."""
    count = term.outliers.count
    kept = opset.squeeze(opset.non_zero(has, ov.Type.i32), [0])
    starts, ends = opset.gather(stored.offsets, kept, np.int32(0)), opset.gather(ends, kept, np.int32(0))
    slot = opset.unsqueeze(opset.range(0, slots, 1, ov.Type.i32), 1)  # [slots, 1]
    position = opset.add(opset.unsqueeze(starts, 0), slot)
    index = opset.select(opset.less(position, opset.unsqueeze(ends, 0)), position, np.int32(count))
    return (
        opset.gather(opset.concat([stored.columns, opset.constant([0], ov.Type.i32)], 0), index, np.int32(0)),
        opset.gather(opset.concat([stored.values, opset.constant([0], ov.Type.f16)], 0), index, np.int32(0)),
    )


def _row_map(has: ov.Node, first: int, zero: int) -> ov.Node:
    """``[rows]``: where each row's sum is among the kept rows of all terms (this term's start at ``first``), or
    ``zero`` (a row that sums to zero) for a row without outliers (``has`` false)."""
    # 1 for the first kept row; in float32 (exact below 2^24 rows), the type OpenVINO folds a CumSum of
    rank = opset.convert(opset.cumsum(opset.convert(has, ov.Type.f32), np.int32(0)), ov.Type.i32)
    return opset.select(has, opset.add(rank, np.int32(first - 1)), np.int32(zero))


def _concat(nodes: list[ov.Node], axis: int) -> ov.Node:
    return nodes[0] if len(nodes) == 1 else opset.concat(nodes, axis)


def _in_type(values: ov.Node, x: ov.Output) -> ov.Node:
    return values if x.get_element_type() == ov.Type.f16 else opset.convert(values, x.get_element_type())


def _ell_form(targets: _Targets, stored: dict[str, _Stored], x: ov.Output, slots: int, label: str) -> ov.Node:
    """``[..., rows]``: the ELL form over the rows that have outliers (``ReduceSum`` over the slots of
    ``x[..., columns] * values``) and one row that sums to zero, then a ``Gather`` of each MatMul row's sum."""
    zero = sum(span.term.kept_rows for span in targets.spans if span.term is not None)  # the row that sums to zero
    columns, values, maps, first = [], [], [], 0
    for span in targets.spans:
        if span.term is None:
            maps.append(opset.constant(np.full(span.rows, zero, np.int32)))
            continue
        csr = stored[span.term.name]
        ends = _ends(span.term, csr)
        has = opset.greater(ends, csr.offsets)  # rows with outliers
        pair = _ell(span.term, csr, ends, has, slots)
        columns.append(pair[0])
        values.append(pair[1])
        maps.append(_row_map(has, first, zero))
        first += span.term.kept_rows
    columns.append(opset.constant(np.zeros((slots, 1), np.int32)))
    values.append(opset.constant(np.zeros((slots, 1), np.float16)))
    columns = opset.reshape(opset.concat(columns, 1), [-1], special_zero=False)
    values = _in_type(opset.reshape(opset.concat(values, 1), [-1], special_zero=False), x)
    sums = opset.multiply(opset.gather(x, columns, np.int32(-1), name=f"{label}/gather"), values)
    if slots > 1:
        leading = [0] * (x.get_partial_shape().rank.get_length() - 1)
        by_slot = opset.reshape(sums, leading + [slots, zero + 1], special_zero=True)
        sums = opset.reduce_sum(by_slot, np.int32(-2), keep_dims=False, name=f"{label}/sum")
    return opset.gather(sums, _concat(maps, 0), np.int32(-1), name=f"{label}/rows")


def _bag_form(targets: _Targets, stored: dict[str, _Stored], x: ov.Output, label: str) -> ov.Node:
    """``[..., rows]``: one bag per row (empty for rows without outliers) over the transposed activation
    ``[in, tokens]``; the last bag also holds an entry of weight zero (a bag's offset must index an entry)."""
    offsets, indices, weights, start = [], [], [], 0
    for span in targets.spans:
        if span.term is None:
            offsets.append(opset.constant(np.full(span.rows, start, np.int32)))
            continue
        csr = stored[span.term.name]
        offsets.append(opset.add(csr.offsets, np.int32(start)))
        indices.append(csr.columns)
        weights.append(csr.values)
        start += span.term.outliers.count
    indices.append(opset.constant([0], ov.Type.i32))
    weights.append(opset.constant([0], ov.Type.f16))
    channels = x.get_partial_shape()[-1].get_length()
    table = opset.transpose(opset.reshape(x, [-1, channels], special_zero=False), [1, 0])
    bags = opset15.embedding_bag_offsets(
        table,
        _concat(indices, 0),
        _concat(offsets, 0),
        per_sample_weights=_in_type(_concat(weights, 0), x),
        reduction="sum",
        name=f"{label}/bags",
    )
    shape = opset.concat(
        [opset.slice(opset.shape_of(x), [0], [-1], [1]), opset.constant([sum(targets.sizes)], ov.Type.i64)], 0
    )
    return opset.reshape(opset.transpose(bags, [1, 0]), shape, special_zero=False)


def _add_to_outputs(targets: _Targets, sums: ov.Node, label: str) -> None:
    """Adds to each MatMul's output its rows of ``sums`` (split by MatMul when there are several)."""
    parts = (
        [sums.output(0)]
        if len(targets.sizes) == 1
        else opset.variadic_split(sums, np.int32(-1), targets.sizes, name=f"{label}/split").outputs()
    )
    for (matmul, name), part in zip(targets.matmuls, parts):
        y = matmul.output(0)
        consumers = list(y.get_target_inputs())
        total = opset.add(y, part, name=f"{name}/outliers/add")
        for target in consumers:
            target.replace_source_output(total.output(0))


def insert_outliers(terms: list[OutlierTerm]) -> None:
    """Adds each term's sparse product ``x O^T`` to its rows of its MatMul's output; the terms share one activation
    ``x``, and their ``columns`` index its channels in their original order (before any permutation Gather).

    One sparse product for all terms, in the ELL form (``Gather``, ``Multiply``, ``ReduceSum``: fast kernels) over
    the rows that have outliers, spread over the MatMuls' rows by one ``Gather``, when no row has more than
    :data:`ELL_MAX_SLOTS` outliers; else ``EmbeddingBagOffsets`` over the transposed activation, one bag per row,
    which does not hold ``slots`` values per row and token (at 1% of outliers the ELL form would need 20 to 40
    slots: for a 512-token prompt, about 3x the peak memory of INT4 on a 270M Llama); then a ``VariadicSplit`` by
    MatMul when there are several, and an ``Add`` to each."""
    x = terms[0].activation
    label = f"{terms[0].name}/outliers"
    slots = max(term.slots for term in terms)
    targets = _Targets.of(terms)
    stored = {term.name: _Stored.of(term) for term in terms}
    sums = (
        _ell_form(targets, stored, x, slots, label) if slots <= ELL_MAX_SLOTS else _bag_form(targets, stored, x, label)
    )
    _add_to_outputs(targets, sums, label)
