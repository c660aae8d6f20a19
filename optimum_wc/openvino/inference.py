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

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
EXTRA_REQUESTS = 2


def infer_in_order(model: ov.Model, items: list[Any], handle: Callable[[int, list[np.ndarray]], None]) -> None:
    """Infers ``model`` on each item in float32 and calls ``handle(index, outputs)`` in item order.

    The state of a stateful model is reset before every item. The outputs given to ``handle`` are views of the
    request's tensors, valid during the call only.

    Args:
        model: The model to run; its outputs, in order, are what ``handle`` gets.
        items: Inputs accepted by ``InferRequest.infer`` (dicts by input name, or lists by position).
        handle: Called once per item, in the order of ``items``.
    """
    compiled = ov.Core().compile_model(model, "CPU", {**F32, "PERFORMANCE_HINT": "THROUGHPUT"})
    optimal = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    count = max(1, min(len(items), optimal + min(optimal, EXTRA_REQUESTS)))
    requests = [compiled.create_infer_request() for _ in range(count)]
    stateful = len(model.get_sinks()) > 0
    outputs = len(model.outputs)

    def finish(index: int) -> None:
        request = requests[index % count]
        request.wait()
        handle(index, [request.get_output_tensor(i).data for i in range(outputs)])

    for index, item in enumerate(items):
        if index >= count:
            finish(index - count)
        request = requests[index % count]
        if stateful:
            request.reset_state()
        request.start_async(item, share_inputs=True)
    for index in range(max(0, len(items) - count), len(items)):
        finish(index)
