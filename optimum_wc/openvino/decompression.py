"""The one builder of the decompression subgraph, node for node the one nncf 3.4.0 inserts.

For a weight constant named ``n`` used on input port ``p``::

    Constant n (u8/i8/u4/i4/nf4, grouped shape) -> Convert(f16)
        [-> Subtract(Convert(f16) of Constant "n/zero_point"), named "n/zero_point/subtract"]   asymmetric modes
        -> Multiply(Constant "n/scale", f16), named "n/fq_weights_p"
        [-> Reshape to the original shape]                                                      group-wise
        [-> Convert(original type), named "n/fq_weights_p/convert"]   when the weight was not f16 and some consumer
                                                                       of it was not a Convert

OpenVINO's CPU plugin recognises this pattern and runs the MatMul on the packed low-bit weight.
"""

from __future__ import annotations

import openvino as ov
from openvino import opset13 as opset

from optimum_wc.kernels import KERNELS, CompressedWeight
from optimum_wc.kernels.nf4 import NF4_LEVELS

STORAGE_TYPES = {"u8": ov.Type.u8, "i8": ov.Type.i8, "u4": ov.Type.u4, "i4": ov.Type.i4, "nf4": ov.Type.nf4}


def _codes_constant(compressed: CompressedWeight, storage: str, name: str) -> ov.Node:
    if storage == "nf4":  # OpenVINO packs nf4 from the level values themselves
        return opset.constant(NF4_LEVELS[compressed.codes], dtype=ov.Type.nf4, name=name)
    return opset.constant(compressed.codes, dtype=STORAGE_TYPES[storage], name=name)


def needs_output_convert(constant: ov.Node) -> bool:
    """Whether the subgraph must end with a Convert back to the weight's type (nncf's rule)."""
    output = constant.output(0)
    if output.get_element_type() == ov.Type.f16:
        return False
    return any(t.get_node().get_type_name() != "Convert" for t in output.get_target_inputs())


def build_decompression(
    compressed: CompressedWeight,
    name: str,
    port: int,
    output_type: ov.Type | None,
) -> ov.Node:
    """Returns the last node of the decompression subgraph of ``compressed``.

    Args:
        compressed: The kernel's output, in the grouped layout.
        name: Friendly name of the weight constant being replaced; the new nodes are named after it.
        port: Input port of the op that uses the weight (it appears in the Multiply's name).
        output_type: Element type of the final Convert, or None for no final Convert.
    """
    kernel = KERNELS[compressed.mode]
    node = opset.convert(_codes_constant(compressed, kernel.storage, name), ov.Type.f16)
    if compressed.zero_point is not None:
        zero_point = opset.constant(compressed.zero_point, dtype=STORAGE_TYPES[kernel.storage], name=f"{name}/zero_point")
        node = opset.subtract(node, opset.convert(zero_point, ov.Type.f16), name=f"{name}/zero_point/subtract")
    scale = opset.constant(compressed.scale, dtype=ov.Type.f16, name=f"{name}/scale")
    node = opset.multiply(node, scale, name=f"{name}/fq_weights_{port}")
    if compressed.group_size != -1:
        node = opset.reshape(node, output_shape=list(compressed.original_shape), special_zero=False)
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
