"""Calibration inference: every item through a compiled model, two or more at a time, handled in item order.

The CPU plugin runs the requests in parallel streams (its throughput mode), which keeps both cores busy on the
small matrices of one calibration sample; each request computes exactly what a single request would, so the
results do not depend on the number of streams. Requests are used round-robin: item ``i`` is handled when its
request is needed again, so at most one item per request is in flight and ``handle`` sees the items in order.
A few requests beyond the plugin's optimal number (:data:`EXTRA_REQUESTS`) are kept queued, so a stream whose
item is short picks up the next one while the item to handle next is still running (items differ in length; 1.17 s
-> 1.02 s for 128 items on 2 cores); only a few, since each request holds its output tensors (GPTQ's raw layer
inputs).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

import openvino as ov
from optimum_wc.openvino.items import RESET_STATE_KEY, continues_state

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
EXTRA_REQUESTS = 2


def _input_dtypes(compiled: ov.CompiledModel) -> list[np.dtype] | None:
    """The numpy types of the inputs; None when one has no numpy type (the dispatcher then converts)."""
    try:
        return [np.dtype(port.get_element_type().to_dtype()) for port in compiled.inputs]
    except (RuntimeError, TypeError, ValueError):
        return None


def _positional(item: Any, dtypes: list[np.dtype] | None) -> list[np.ndarray] | None:
    """A positional item's values as contiguous arrays of the input types (converted as OpenVINO's dispatcher
    would, which costs twice as much per call), or None where the dispatcher must take it: a dict, another
    number of values, or a read-only array (a memory-mapped cached activation), which a shared tensor refuses."""
    if dtypes is None or not isinstance(item, (list, tuple)) or len(item) != len(dtypes):
        return None
    arrays = [np.asarray(value, dtype=dtype, order="C") for value, dtype in zip(item, dtypes)]  # 0-d stays 0-d
    return arrays if all(a.flags.writeable for a in arrays) else None


def _without_reset_key(item: Any) -> Any:
    if isinstance(item, dict) and RESET_STATE_KEY in item:
        return {key: value for key, value in item.items() if key != RESET_STATE_KEY}
    return item


def infer_in_order(model: ov.Model, items: list[Any], handle: Callable[[int, list[np.ndarray]], None]) -> None:
    """Infers ``model`` on each item in float32 and calls ``handle(index, outputs)`` in item order.

    The state of a stateful model is reset before every item, except an item whose nncf reset key is false: it
    carries on the state of the item before, so then all items run one after another on one request. The outputs
    given to ``handle`` are views of the request's tensors, valid during the call only.

    Args:
        model: The model to run; its outputs, in order, are what ``handle`` gets.
        items: Inputs accepted by ``InferRequest.infer`` (dicts by input name, or lists by position).
        handle: Called once per item, in the order of ``items``.
    """
    compiled = ov.Core().compile_model(model, "CPU", {**F32, "PERFORMANCE_HINT": "THROUGHPUT"})
    optimal = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    stateful = len(model.get_sinks()) > 0
    resets = [stateful and not continues_state(item) for item in items]
    items = [_without_reset_key(item) for item in items]
    in_sequence = stateful and not all(resets)
    count = 1 if in_sequence else max(1, min(len(items), optimal + min(optimal, EXTRA_REQUESTS)))
    requests = [compiled.create_infer_request() for _ in range(count)]
    dtypes = _input_dtypes(compiled)
    held: list[list[np.ndarray]] = [[] for _ in range(count)]
    outputs = len(model.outputs)

    def finish(index: int) -> None:
        request = requests[index % count]
        request.wait()
        handle(index, [request.get_output_tensor(i).data for i in range(outputs)])

    for index, item in enumerate(items):
        if index >= count:
            finish(index - count)
        request = requests[index % count]
        if resets[index]:
            request.reset_state()
        arrays = _positional(item, dtypes)
        if arrays is None:
            request.start_async(item, share_inputs=True)
            continue
        held[index % count] = arrays  # alive until the request is used again: its tensors only point at them
        for position, value in enumerate(arrays):
            request.set_input_tensor(position, ov.Tensor(value, shared_memory=True))
        request.start_async()
    for index in range(max(0, len(items) - count), len(items)):
        finish(index)
