"""The one builder of the decompression subgraph, node for node the one nncf 3.4.0 inserts.

For a weight constant named ``n`` used on input port ``p``::

    Constant n (u8/i8/u4/i4/nf4/u3/u2/f4e2m1/f8e4m3, grouped shape) -> Convert(f16)
        [-> Subtract(Convert(f16) of Constant "n/zero_point"), named "n/zero_point/subtract"]   asymmetric modes,
                                                                                     INT3/INT2 (a scalar i8)
        -> Multiply(Constant "n/scale", f16), named "n/fq_weights_p"    MX: Convert(f16) of an f8e8m0 scale;
                NVFP4: Convert(f16) of Multiply(Convert(f32) of an f8e4m3 scale, Constant "n/second_order_scale")

A codebook weight starts with ``Gather(codebook, indices)`` instead of the Convert (:func:`_codebook_lookup`).
        [-> Reshape to the original shape]                                                      group-wise
        [-> Convert(original type), named "n/fq_weights_p/convert"]   when the weight was not f16 and some consumer
                                                                       of it was not a Convert

OpenVINO's CPU plugin recognises this pattern and runs the MatMul on the packed low-bit weight.

A SpQR weight (:func:`spqr_parts`, then :func:`dequantize`) has the same shape of subgraph, with its zero point
and scale computed from their own quantized codes (``Convert(codes) * step + minimum``, reshaped to
``[d_out, groups, 1]``):
OpenVINO folds those small subgraphs into constants when it compiles the model, and the pattern above remains.
Integer zero points pass through u4 at the end, so that they fold into a u4 constant and the CPU plugin picks its
integer-zero-point kernel (twice as fast as with a float zero point).
3-bit codes are stored as u3 and converted to u4 first (folded too), because the CPU plugin keeps u4 codes packed
but expands u3 codes into a float matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.algorithms.spqr_storage import SpQRStored, StoredStatistic
from optimum_wc.kernels.packing import PackedArray, StoredWeight
from optimum_wc.openvino.graph import new_constant

Hold = Callable[..., None]  # (constant, memory it shares or None)
STORAGE_TYPES = {
    "u8": ov.Type.u8,
    "i8": ov.Type.i8,
    "u4": ov.Type.u4,
    "i4": ov.Type.i4,
    "nf4": ov.Type.nf4,
    "u3": ov.Type.u3,
    "u2": ov.Type.u2,
    "f4e2m1": ov.Type.f4e2m1,
    "f8e4m3": ov.Type.f8e4m3,
    "f8e8m0": ov.Type.f8e8m0,
    "u16": ov.Type.u16,
    "i32": ov.Type.i32,
}


def packed_constant(packed: PackedArray, name: str, hold: Hold | None = None) -> ov.Node:
    """A named Constant of the packed bytes, in their OpenVINO element type. It shares their memory where a tensor
    owns it (``packed.owner``), or until ``hold`` maps it from disk (``hold`` keeps the array alive till then); it
    copies them otherwise."""
    if isinstance(packed.owner, ov.Tensor):
        constant = ov.op.Constant(packed.owner, shared_memory=True)
    else:
        tensor = ov.Tensor(packed.data, list(packed.shape), STORAGE_TYPES[packed.storage])
        constant = ov.op.Constant(tensor, shared_memory=hold is not None)
    constant.set_friendly_name(name)
    if hold is not None:
        hold(constant, packed.data)
    return constant


def needs_output_convert(constant: ov.Node) -> bool:
    """Whether the subgraph must end with a Convert back to the weight's type (nncf's rule)."""
    output = constant.output(0)
    if output.get_element_type() == ov.Type.f16:
        return False
    return any(t.get_node().get_type_name() != "Convert" for t in output.get_target_inputs())


def build_decompression(
    stored: StoredWeight, name: str, port: int, output_type: ov.Type | None, hold: Hold | None = None
) -> ov.Node:
    """Returns the last node of the decompression subgraph of a packed weight.

    Args:
        stored: The packed codes, zero point and float16 scale, in the grouped layout.
        name: Friendly name of the weight constant being replaced; the new nodes are named after it.
        port: Input port of the op that uses the weight (it appears in the Multiply's name).
        output_type: Element type of the final Convert, or None for no final Convert.
        hold: Called with each new low-bit Constant (codes, zero point), e.g.
            :meth:`~optimum_wc.openvino.scratch.ScratchIR.hold`, which moves them out of anonymous memory.
    """
    if stored.codebook is not None:
        node = _codebook_lookup(stored, name, hold)
    else:
        node = opset.convert(packed_constant(stored.codes, name, hold), ov.Type.f16)
    if stored.zero_point is not None:
        zero_point = opset.convert(packed_constant(stored.zero_point, f"{name}/zero_point", hold), ov.Type.f16)
        node = opset.subtract(node, zero_point, name=f"{name}/zero_point/subtract")
    node = opset.multiply(node, _scale(stored, name, port), name=f"{name}/fq_weights_{port}")
    if stored.group_size != -1:
        node = opset.reshape(node, output_shape=list(stored.original_shape), special_zero=False)
    if output_type is not None:
        node = opset.convert(node, output_type, name=f"{name}/fq_weights_{port}/convert")
    return node


def _codebook_lookup(stored: StoredWeight, name: str, hold: Hold | None) -> ov.Node:
    """``Gather(codebook, indices)`` in float16: the codebook Constant named ``n`` (converted to f16 unless it is),
    the indices ``n_nncf_codebook_idxs`` (u4 ones converted to u8), the Gather ``n_nncf_codebook``."""
    if isinstance(stored.codebook, PackedArray):
        codebook = packed_constant(stored.codebook, name)
    else:
        codebook = new_constant(stored.codebook, name)
    if codebook.get_output_element_type(0) != ov.Type.f16:
        codebook = opset.convert(codebook, ov.Type.f16)
    indices = packed_constant(stored.codes, f"{name}_nncf_codebook_idxs", hold)
    if stored.codes.storage == "u4":
        indices = opset.convert(indices, ov.Type.u8)
    return opset.gather(codebook, indices, 0, name=f"{name}_nncf_codebook")


def _scale(stored: StoredWeight, name: str, port: int) -> ov.Node:
    """The float16 scale: a constant, or a packed E8M0/E4M3 constant converted to float16, NVFP4's multiplied by its
    float32 global scale first (``n/second_order_scale``, product ``n/dequantized_scale_p``)."""
    if not isinstance(stored.scale, PackedArray):
        return new_constant(stored.scale, f"{name}/scale")
    scale = packed_constant(stored.scale, f"{name}/scale")
    if stored.global_scale is not None:
        second = new_constant(stored.global_scale, f"{name}/second_order_scale")
        scale = opset.multiply(opset.convert(scale, ov.Type.f32), second, name=f"{name}/dequantized_scale_{port}")
    return opset.convert(scale, ov.Type.f16)


def _statistic(statistic: StoredStatistic, name: str, groups_shape: list[int]) -> ov.Node:
    """``Convert(codes) * step + minimum``, reshaped to ``[d_out, groups, 1]``: computed in float32 and rounded to
    float16 once, as :meth:`~optimum_wc.algorithms.spqr.SecondLevel.values` computes it (OpenVINO may fold float16
    ops in float32: a statistic computed in float16 throughout would then differ, by up to 2^-8 of a small scale
    where ``step * code`` and ``minimum`` nearly cancel); an integer statistic (u8 step and minimum) is converted
    to u4 instead, so that the folded constant is u4."""
    integer = statistic.step.dtype == np.uint8
    node = opset.convert(packed_constant(statistic.codes, f"{name}/codes"), ov.Type.f32)
    step, minimum = new_constant(statistic.step, f"{name}/step"), new_constant(statistic.minimum, f"{name}/minimum")
    step, minimum = opset.convert(step, ov.Type.f32), opset.convert(minimum, ov.Type.f32)
    node = opset.add(opset.multiply(node, step), minimum, name=f"{name}/values")
    node = opset.reshape(node, output_shape=groups_shape, special_zero=False)
    return opset.convert(node, ov.Type.u4 if integer else ov.Type.f16)


@dataclass(frozen=True)
class DenseParts:
    """A SpQR weight's dense part before dequantization, each folded into a constant when OpenVINO compiles the
    model: u4 ``codes`` ``[d_out, groups, beta_1]``; ``zero_point`` (u4 when integer, else float16) and float16
    ``scale``, ``[d_out, groups, 1]``. Weights whose parts are concatenated by rows make one weight."""

    codes: ov.Node
    zero_point: ov.Node
    scale: ov.Node


def spqr_parts(stored: SpQRStored, name: str, hold: Hold | None = None) -> DenseParts:
    """The constants of a SpQR weight's dense part (in the permuted column order), named after ``name``."""
    rows, groups = stored.codes.shape[0], stored.codes.shape[1]
    codes = packed_constant(stored.codes, name, hold)
    if stored.codes.storage == "u3":
        codes = opset.convert(codes, ov.Type.u4, name=f"{name}/u4")
    return DenseParts(
        codes,
        _statistic(stored.zero_point, f"{name}/zero_point", [rows, groups, 1]),
        _statistic(stored.scale, f"{name}/scale", [rows, groups, 1]),
    )


def dequantize(parts: DenseParts, shape: list[int], name: str, port: int, output_type: ov.Type | None) -> ov.Node:
    """``(codes - zero_point) * scale`` in float16, reshaped to the weight's ``shape`` (the nncf pattern)."""
    zero_point = parts.zero_point
    if zero_point.get_output_element_type(0) != ov.Type.f16:
        zero_point = opset.convert(zero_point, ov.Type.f16)
    node = opset.subtract(opset.convert(parts.codes, ov.Type.f16), zero_point, name=f"{name}/zero_point/subtract")
    node = opset.multiply(node, parts.scale, name=f"{name}/fq_weights_{port}")
    node = opset.reshape(node, output_shape=shape, special_zero=False)
    if output_type is not None:
        node = opset.convert(node, output_type, name=f"{name}/fq_weights_{port}/convert")
    return node


def replace_constant(constant: ov.Node, replacement: ov.Node) -> None:
    """Points every consumer of ``constant`` to ``replacement``; a Convert that would be a no-op is bypassed."""
    new_type = replacement.get_element_type()
    for target in list(constant.output(0).get_target_inputs()):
        consumer = target.get_node()
        if consumer.get_type_name() == "Convert" and consumer.get_element_type() == new_type:
            replace_constant(consumer, replacement)
        else:
            target.replace_source_output(replacement.output(0))
