"""nncf's OpenVINO ``log(x) / log(2)`` for the MX scales, registered with the kernels (see ``kernels/nncf_paths.py``).

nncf computes the E8M0 exponent of a large weight in a compiled OpenVINO model: ``Log(s) / Log(2)`` in float32 on
the CPU plugin, whose Log kernel is not numpy's. The same two ops, compiled once with a dynamic shape, give the same
values on the same machine.
"""

from __future__ import annotations

import threading

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.kernels.nncf_paths import register_openvino_log2

_LOCK = threading.Lock()
_COMPILED: list[ov.CompiledModel] = []


def _compiled() -> ov.CompiledModel:
    if not _COMPILED:
        scale = opset.parameter([-1], ov.Type.f32, name="scale")
        log2 = opset.divide(opset.log(scale), opset.log(opset.constant(2.0, ov.Type.f32)))
        model = ov.Model([log2], [scale], "nncf_log2")
        _COMPILED.append(ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}))
    return _COMPILED[0]


def openvino_log2(values: np.ndarray) -> np.ndarray:
    """float32 ``log(values) / log(2)`` computed by OpenVINO's CPU plugin, in the shape of ``values``."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if not flat.size:
        return flat.reshape(values.shape)
    with _LOCK:  # one compiled model for all worker threads
        result = _compiled()(flat)[0]
    return np.asarray(result, dtype=np.float32).reshape(values.shape)


register_openvino_log2(openvino_log2)
