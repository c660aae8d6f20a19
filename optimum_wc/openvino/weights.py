"""Finding the weights to compress: the float constants of MatMul, embedding Gather and Convolution ops.

A weight is the Constant reached from an op's input that does not depend on the model's inputs, through Convert,
FakeQuantize and Reshape ops. Integer constants (weights compressed before) are not weights. The reduction axes
are the input-channel axes: the last axis of a MatMul weight with ``transpose_b``, axis -2 without it; every axis
but the first of an embedding table; every axis but the output channels and groups of a convolution kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
import math

import numpy as np

import openvino as ov
from optimum_wc.openvino.graph import ModelGraph, source_constant
from optimum_wc.openvino.pages import release

FLOAT_TYPES = ("f16", "bf16", "f32", "f64", "f8e4m3", "f8e5m2")
EMBEDDING_INPUT_TYPES = ("f16", "f32", "f64")
WIDENED_TYPES = ("bf16", "f8e4m3", "f8e5m2")  # numpy has no such dtype: read as float32
READ_DTYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64} | dict.fromkeys(WIDENED_TYPES, np.float32)

# Kernel layouts of the convolution family: which leading axes are output channels (kept) or groups (kept).
CONV_KEPT_AXES = {
    "Convolution": (0,),  # [C_OUT, C_IN, spatial...]
    "ConvolutionBackpropData": (1,),  # [C_IN, C_OUT, spatial...]
    "GroupConvolution": (0, 1),  # [GROUPS, C_OUT, C_IN, spatial...]
    "GroupConvolutionBackpropData": (0, 2),  # [GROUPS, C_IN, C_OUT, spatial...]
}


@dataclass(frozen=True)
class WeightTarget:
    """One weight constant and the op that uses it (the first such op in topological order)."""

    op_name: str
    op_type: str
    kind: str  # "matmul", "embedding" or "convolution"
    port: int
    constant: ov.Node
    constant_name: str
    element_type: str
    shape: tuple[int, ...]
    reduction_axes: tuple[int, ...]
    in_memory: bool = False  # the constant was built in this process (nothing of a mapped .bin to give back)

    @cached_property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def read_dtype(self) -> np.dtype:
        """The dtype of :meth:`read`'s array."""
        return np.dtype(READ_DTYPES[self.element_type])

    def read(self) -> np.ndarray:
        """The weight as a numpy array (a view of the constant for f16/f32/f64; bf16 and f8 are read as float32)."""
        if self.element_type in WIDENED_TYPES:
            return self.constant.get_data(dtype=np.float32)
        return self.constant.data

    def read_float32(self) -> np.ndarray:
        """A float32 copy of the weight; the pages of a memory-mapped ``.bin`` it was read from are given back."""
        copy = self.read().astype(np.float32)
        self.release_pages()
        return copy

    def release_pages(self) -> None:
        """Gives back the resident pages of the constant if it is read from a memory-mapped ``.bin`` (see
        :mod:`~optimum_wc.openvino.pages`); its values can still be read."""
        if not self.in_memory:
            release(self.constant.data)  # the raw bytes (bf16 and f8 show as another dtype of the same size)


def _kind(graph: ModelGraph, name: str) -> str | None:
    op = graph.by_name[name]
    op_type = op.get_type_name()
    if op_type == "MatMul":
        return "matmul"
    if op_type in CONV_KEPT_AXES:
        return "convolution"
    if op_type == "Gather" and not name.endswith("nncf_codebook"):
        if op.input_value(0).get_element_type().get_type_name() in EMBEDDING_INPUT_TYPES:
            if source_constant(op, 0) is not None:
                return "embedding"
    return None


def _reduction_axes(op: ov.Node, kind: str, port: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    rank = len(shape)
    if kind == "embedding":
        kept = [0]
    elif kind == "convolution":
        kept = list(CONV_KEPT_AXES[op.get_type_name()])
    else:  # MatMul: the input-channel axis is reduced; batch ("spatial") axes and output channels are kept
        transpose = op.get_attributes()["transpose_a" if port == 0 else "transpose_b"]
        kept = list(range(rank - 2))
        if rank > 1:
            c_in_first = (transpose and port == 0) or (not transpose and port == 1)
            kept.append(rank - 1 if c_in_first else rank - 2)
    return tuple(axis for axis in range(rank) if axis not in kept)


def find_weight_targets(graph: ModelGraph) -> list[WeightTarget]:
    """Returns every use of a weight, in nncf's topological order of the ops; a shared weight appears once per use."""
    found = []
    for name in graph.order:
        if name not in graph.reachable:
            continue
        kind = _kind(graph, name)
        if kind is None:
            continue
        op = graph.by_name[name]
        inputs = list(op.inputs())
        if op.get_type_name().endswith("BackpropData"):
            inputs = inputs[:2]
        for inp in inputs:
            port = inp.get_index()
            if inp.get_source_output().get_node().get_friendly_name() in graph.reachable:
                continue
            const = source_constant(op, port)
            if const is None:
                continue
            element_type = const.get_output_element_type(0)
            if element_type.is_integral():
                continue
            shape = tuple(const.get_output_shape(0))
            target = WeightTarget(
                op_name=name,
                op_type=op.get_type_name(),
                kind=kind,
                port=port,
                constant=const,
                constant_name=const.get_friendly_name(),
                element_type=element_type.get_type_name(),
                shape=shape,
                reduction_axes=_reduction_axes(op, kind, port, shape),
            )
            found.append(target)
    return found
