"""Ops on a MatMul's activation that let its weight stay packed: a column permutation, and sparse outliers.

OpenVINO folds any op applied to a weight constant into a dense float matrix when it compiles the model; these
act on the activation ``x`` (input ``1 - port``) or the output ``y`` instead, for a weight used as ``y = x W^T``:

- permutation (GPTQ act-order checkpoints, SpQR): ``MatMul(Gather(x, perm, -1), W_perm)``;
- outliers (SpQR): ``y += ScatterElementsUpdate(0, rows, Gather(x, columns, -1) * values, -1, "sum")``, i.e.
  ``y[..., r_k] += x[..., c_k] v_k`` for each outlier ``k``; the indices are stored as u16 where they fit.
"""

from __future__ import annotations

import numpy as np
import openvino as ov
from openvino import opset13 as opset

from optimum_wc.kernels.packing import PackedArray
from optimum_wc.openvino.decompression import STORAGE_TYPES


def _indices(packed: PackedArray, name: str) -> ov.Node:
    constant = ov.op.Constant(ov.Tensor(packed.data, list(packed.shape), STORAGE_TYPES[packed.storage]), shared_memory=False)
    constant.set_friendly_name(name)
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
    matmul: ov.Node, port: int, rows: PackedArray, columns: PackedArray, values: np.ndarray, name: str
) -> None:
    """Adds ``x[..., columns] * values`` into ``y[..., rows]`` after the MatMul (before any permutation Gather is
    inserted, so that ``columns`` index the original input channels)."""
    x = matmul.input(1 - port).get_source_output()
    y = matmul.output(0)
    consumers = list(y.get_target_inputs())
    values_node = ov.op.Constant(np.ascontiguousarray(values, dtype=np.float16))
    values_node.set_friendly_name(f"{name}/outliers/values")
    if x.get_element_type() != ov.Type.f16:
        values_node = opset.convert(values_node, x.get_element_type())
    products = opset.multiply(opset.gather(x, _indices(columns, f"{name}/outliers/columns"), np.int32(-1)), values_node)
    row_indices = opset.broadcast(_indices(rows, f"{name}/outliers/rows"), opset.shape_of(products))
    zeros = opset.broadcast(opset.constant(np.zeros((), dtype=np.float32), y.get_element_type()), opset.shape_of(y))
    scattered = opset.scatter_elements_update(zeros, row_indices, products, np.int32(-1), "sum")
    total = opset.add(y, scattered, name=f"{name}/outliers/add")
    for target in consumers:
        target.replace_source_output(total.output(0))
