"""Ops on a MatMul's activation that let its weight stay packed: a column permutation, and sparse outliers.

OpenVINO folds any op applied to a weight constant into a dense float matrix when it compiles the model; these
act on the activation ``x`` (input ``1 - port``) or the output ``y`` instead, for a weight used as ``y = x W^T``:

- permutation (GPTQ act-order checkpoints, SpQR): ``MatMul(Gather(x, perm, -1), W_perm)``;
- outliers (SpQR), a sparse matrix in CSR form: ``y[..., r] += sum_k v_k x[..., c_k]`` over row ``r``'s outliers,
  computed by ``EmbeddingBagOffsets`` (sum) with the transposed activation as its table (one bag per output row, the
  outliers' columns as indices, their values as weights); indices and offsets are stored as u16 where they fit.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
from openvino import opset13 as opset
from openvino import opset15

from optimum_wc.kernels.packing import PackedArray
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


def insert_outliers(
    matmul: ov.Node, port: int, offsets: PackedArray, columns: PackedArray, values: np.ndarray, name: str
) -> None:
    """Adds the sparse product ``x O^T`` after the MatMul, ``O`` given row by row (``offsets``, ``columns``,
    ``values``); insert it before any permutation Gather, so that ``columns`` index the original input channels."""
    x = matmul.input(1 - port).get_source_output()
    y = matmul.output(0)
    consumers = list(y.get_target_inputs())
    channels = x.get_partial_shape()[-1].get_length()
    table = opset.transpose(opset.reshape(x, [-1, channels], special_zero=False), [1, 0])  # [in, tokens]
    values_node = ov.op.Constant(np.ascontiguousarray(values, dtype=np.float16))
    values_node.set_friendly_name(f"{name}/outliers/values")
    if x.get_element_type() != ov.Type.f16:
        values_node = opset.convert(values_node, x.get_element_type())
    offsets_node = _indices(offsets, f"{name}/outliers/offsets")
    rows = opset15.embedding_bag_offsets(table, _indices(columns, f"{name}/outliers/columns"), offsets_node,
                                         per_sample_weights=values_node, reduction="sum")  # [out, tokens]  # fmt: skip
    sparse = opset.reshape(opset.transpose(rows, [1, 0]), opset.shape_of(y), special_zero=False)
    total = opset.add(y, sparse, name=f"{name}/outliers/add")
    for target in consumers:
        target.replace_source_output(total.output(0))
