"""LoRA correction's adapters in the graph: ``y = MatMul(x, W) + MatMul(MatMul(x, A^T), B^T)``, as nncf builds it.

INT8 adapters are INT8_ASYM decompression subgraphs named ``<matmul>_lora_A`` and ``<matmul>_lora_B`` (built by
the one builder, as weights of port 1), ending in the activation's type; float adapters are unnamed float32
Constants. The two MatMuls and the Add keep OpenVINO's generated names.
"""

from __future__ import annotations

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.algorithms.lora import StoredAdapters
from optimum_wc.openvino.decompression import Hold, build_decompression


def _adapter(values, name: str, output_type: ov.Type | None, hold: Hold | None) -> ov.Node:
    if isinstance(values, np.ndarray):
        return opset.constant(values)
    return build_decompression(values, name, 1, output_type, hold)


def insert_adapters(matmul: ov.Node, adapters: StoredAdapters, hold: Hold | None = None) -> None:
    """Adds the adapters' product to ``matmul``'s output, for every consumer of that output."""
    activation = matmul.input_value(0)
    activation_type = activation.get_element_type()
    output_type = None if activation_type == ov.Type.f16 else activation_type
    name = matmul.get_friendly_name()
    a = _adapter(adapters.a, f"{name}_lora_A", output_type, hold)
    b = _adapter(adapters.b, f"{name}_lora_B", output_type, hold)
    correction = opset.matmul(opset.matmul(activation, a, False, True), b, False, True)
    consumers = list(matmul.output(0).get_target_inputs())
    total = opset.add(matmul, correction)
    for consumer in consumers:
        consumer.replace_source_output(total.output(0))
