"""Calibration data as model inputs: what ``compress_weights(dataset=...)`` feeds the model.

Accepted: an ``nncf.Dataset`` (its ``get_inference_data()`` items, transform applied, matched by shape), or any
iterable of model inputs (dicts of arrays or tensors). The first ``subset_size`` items are used, in order.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Iterable

import numpy as np

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError


def _as_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):  # torch tensors, without importing torch
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (str, bytes)):
        return np.asarray(value)
    return value


def inference_items(dataset: object, subset_size: int) -> list[Any]:
    """Returns up to ``subset_size`` model inputs from ``dataset``, tensors converted to numpy arrays.

    Raises:
        InvalidArgumentTypeError: ``dataset`` is text, or not iterable.
        InvalidArgumentError: ``dataset`` yields no item.
    """
    if hasattr(dataset, "get_inference_data"):
        items: Iterable[Any] = dataset.get_inference_data()
    elif isinstance(dataset, (str, bytes)) or not hasattr(dataset, "__iter__"):
        msg = (
            "`dataset` must be an nncf.Dataset or an iterable of model inputs (dicts of arrays); "
            f"got {type(dataset).__name__}. Text datasets go through OVModelForCausalLM with a tokenizer."
        )
        raise InvalidArgumentTypeError(msg)
    else:
        items = dataset
    chosen = []
    for item in islice(items, subset_size):
        if isinstance(item, dict):
            item = {key: _as_numpy(value) for key, value in item.items()}
        elif isinstance(item, (list, tuple)):
            item = [_as_numpy(value) for value in item]
        else:
            item = _as_numpy(item)
        chosen.append(item)
    if not chosen:
        raise InvalidArgumentError("`dataset` is empty: it yielded no calibration sample.")
    return chosen
