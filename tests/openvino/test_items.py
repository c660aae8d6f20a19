"""Calibration items checked against the model's inputs before any work, naming the item and the input."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import calibration_items
import openvino as ov
import optimum_wc


def _bad(kind: str) -> list:
    items = calibration_items(4)
    item = items[2]
    if kind == "unknown-input":
        item["token_type_ids"] = np.zeros_like(item["input_ids"])
    elif kind == "missing-input":
        del item["attention_mask"]
    elif kind == "rank":
        item["input_ids"] = item["input_ids"][0]
    elif kind == "dtype":
        item["input_ids"] = item["input_ids"].astype(str)
    elif kind == "vocabulary":
        item["input_ids"] = item["input_ids"] + 512
    elif kind == "mask-length":
        item["attention_mask"] = np.ones((1, item["input_ids"].shape[1] + 3), dtype=np.int64)
    elif kind == "positional-count":
        items[2] = [item["input_ids"], item["attention_mask"]]
    return items


@pytest.mark.parametrize(
    "kind, text",
    [
        ("unknown-input", r"item 2 has \['token_type_ids'\], which the model does not take"),
        ("missing-input", r"item 2 lacks the model input\(s\) \['attention_mask'\]"),
        ("rank", r"item 2: input 'input_ids' has shape \[\d+\]; the model takes rank 2"),
        ("dtype", r"item 2: input 'input_ids' holds <U\d+ values; it takes numbers \(i64\)"),
        ("vocabulary", r"item 2: input 'input_ids' holds token ids from \d+ to \d+; the model's vocabulary has 512"),
        ("mask-length", r"item 2: `attention_mask` covers \d+ tokens, `input_ids` has \d+"),
        ("positional-count", r"item 2 has 2 values; the model takes 4 inputs"),
    ],
)
@pytest.mark.parametrize("options", [{"ratio": 0.8}, {"awq": True}], ids=["mixed-precision", "awq"])
def test_a_wrong_item_is_named_before_any_work(kind, text, options, tiny_ir):
    model = ov.Core().read_model(tiny_ir("llama"))
    with pytest.raises(optimum_wc.InvalidArgumentError, match=text):
        optimum_wc.compress_weights(model, mode="int4_sym", dataset=_bad(kind), progress=False, **options)
    assert not model.has_rt_info(["nncf", "weight_compression"])


def _stateless_model() -> ov.Model:
    from openvino import opset13 as opset

    x = opset.parameter([1, -1, 64], np.float32, name="x")
    weight = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    return ov.Model([opset.result(opset.matmul(x, opset.constant(weight), False, True))], [x])


def test_nncfs_reset_key_is_taken_and_a_reset_of_a_model_without_state_is_refused():
    rng = np.random.default_rng(1)
    items = [{"x": rng.standard_normal((1, 5, 64)).astype(np.float32), "nncf_reset_state": False} for _ in range(3)]
    model = optimum_wc.compress_weights(_stateless_model(), mode="int4_sym", group_size=16, awq=True, dataset=items)
    assert model.has_rt_info(["nncf", "weight_compression"])  # the key is no model input: it is left out

    items[1]["nncf_reset_state"] = True
    model = _stateless_model()
    with pytest.raises(optimum_wc.InvalidArgumentError, match=r"item 1 asks for a state reset .* has no state"):
        optimum_wc.compress_weights(model, mode="int4_sym", group_size=16, awq=True, dataset=items)
    assert not model.has_rt_info(["nncf", "weight_compression"])
