"""Weights as the data-aware algorithms read them, ``[out, in]``, and their results back in the stored layout.

A MatMul may store its weight ``[out, in]`` (``transpose_b``) or ``[in, out]``; fused experts add a leading
experts axis. The algorithms take a transposed *view*, not a copy: the memory order decides how some sums round,
as it does in nncf (see ``kernels/nncf_paths.py``).
"""

from __future__ import annotations

import numpy as np

import openvino as ov
from optimum_wc.pipeline.planning import WeightPlan


def oriented(weight: WeightPlan) -> tuple[np.ndarray, bool]:
    """The weight as float32 ``[out, in]`` (``[experts, out, in]`` for fused experts), and whether it was transposed
    (a view) to get there."""
    data = weight.target.read_float32()
    transposed = weight.target.reduction_axes[0] == data.ndim - 2
    return (np.swapaxes(data, -1, -2) if transposed else data), transposed


def constant_values(constant: ov.Node) -> np.ndarray:
    """A float constant's values (bf16 read as float32, which numpy lacks)."""
    if constant.get_output_element_type(0) == ov.Type.bf16:
        return constant.get_data(dtype=np.float32)
    return constant.get_data()


def to_stored_layout(values: np.ndarray | None, transposed: bool, per_channel: bool) -> np.ndarray | None:
    """Moves parameters from the ``[..., out, groups, 1]`` / ``[..., out, 1]`` layout to the weight's own grouped
    layout."""
    if values is None or not transposed:
        return values
    return np.swapaxes(values, -1, -2) if per_channel else np.moveaxis(values, -3, -1)
