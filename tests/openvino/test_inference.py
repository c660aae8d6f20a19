"""Calibration inference with several requests in flight: items handled in order, each output what one request
alone computes."""

from __future__ import annotations

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.openvino import inference


def _model() -> ov.Model:
    rng = np.random.default_rng(0)
    x = opset.parameter([1, -1, 32], np.float32, name="x")
    hidden = opset.matmul(x, opset.constant(rng.standard_normal((64, 32)).astype(np.float32)), False, True)
    hidden = opset.relu(hidden)
    out = opset.matmul(hidden, opset.constant(rng.standard_normal((16, 64)).astype(np.float32)), False, True)
    return ov.Model([opset.result(opset.reduce_mean(out, [1], keep_dims=False)), opset.result(out)], [x])


def test_items_are_handled_in_order_with_the_outputs_of_a_single_request():
    rng = np.random.default_rng(1)
    lengths = [int(n) for n in rng.integers(1, 200, 37)]  # short and long items: requests finish out of order
    items = [{"x": rng.standard_normal((1, n, 32)).astype(np.float32)} for n in lengths]
    model = _model()
    seen = []

    def handle(index: int, outputs: list[np.ndarray]) -> None:
        seen.append((index, [output.copy() for output in outputs]))  # views are valid during the call only

    inference.infer_in_order(model, items, handle)
    assert [index for index, _ in seen] == list(range(len(items)))

    compiled = ov.Core().compile_model(model, "CPU", {**inference.F32, "PERFORMANCE_HINT": "THROUGHPUT"})
    assert compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") + 1 < len(items)  # more items than requests
    request = compiled.create_infer_request()
    for (_, outputs), item, n in zip(seen, items, lengths):
        expected = request.infer(item)
        assert outputs[1].shape == (1, n, 16)
        for output, value in zip(outputs, expected.values()):
            assert np.array_equal(output, value)


def test_items_by_position_are_converted_to_the_input_types_and_give_what_the_dispatcher_gives():
    """Positional items set their tensors directly: an int64 value for an int32 input and a float64 value for a
    float32 one are converted as OpenVINO's own dispatcher converts them; a non-contiguous view is read right."""
    rng = np.random.default_rng(2)
    x = opset.parameter([-1, 8], np.float32, name="x")
    index = opset.parameter([-1], np.int32, name="index")
    model = ov.Model([opset.result(opset.gather(x, index, 0))], [x, index])
    items = []
    for n in (3, 9, 5, 12, 7):
        values = rng.standard_normal((8, n))  # float64, transposed below: not contiguous
        items.append([values.T, rng.integers(0, n, 4).astype(np.int64)])
    seen = {}
    inference.infer_in_order(model, items, lambda i, outputs: seen.setdefault(i, outputs[0].copy()))
    request = ov.Core().compile_model(model, "CPU", inference.F32).create_infer_request()
    for i, item in enumerate(items):
        expected = request.infer({"x": item[0], "index": item[1]})[0]
        assert np.array_equal(seen[i], expected)
        assert np.array_equal(seen[i], item[0].astype(np.float32)[item[1]])
