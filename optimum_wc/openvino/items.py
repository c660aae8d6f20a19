"""Calibration items checked against the model's inputs before any inference, so that a wrong item is named with
the input it gets wrong instead of failing deep inside OpenVINO (or, for token ids out of the vocabulary, silently
reading zeros: OpenVINO's Gather returns zeros for an index out of range)."""

from __future__ import annotations

from typing import Any

import numpy as np

import openvino as ov
from optimum_wc.errors import InvalidArgumentError
from optimum_wc.openvino.graph import ModelGraph

NUMERIC_KINDS = "biuf"  # bool, int, unsigned, float: what OpenVINO converts to an input's type
# nncf's dataset key (``nncf.definitions.NNCF_DATASET_RESET_STATE_KEY``): in a dict item, whether the state of a
# stateful model is reset before it (True) or carried on from the item before (False); without it, always reset.
RESET_STATE_KEY = "nncf_reset_state"


def continues_state(item: Any) -> bool:
    """Whether ``item`` carries on the state the item before it left (its reset key is present and false)."""
    return isinstance(item, dict) and RESET_STATE_KEY in item and not item[RESET_STATE_KEY]


def _vocabulary(graph: ModelGraph, parameter: ov.Node) -> int | None:
    """Rows of the embedding table that ``parameter`` (token ids) indexes: a Gather on axis 0 of a constant table
    reached from the ids through Converts; None if there is none."""
    frontier = [parameter.output(0)]
    while frontier:
        output = frontier.pop()
        for target in output.get_target_inputs():
            node = target.get_node()
            kind = node.get_type_name()
            if kind == "Convert":
                frontier.append(node.output(0))
            elif kind == "Gather" and target.get_index() == 1:
                table = node.input_value(0).get_partial_shape()
                if table.rank.is_static and table.rank.get_length() == 2 and table[0].is_static:
                    return table[0].get_length()
    return None


def check_calibration_items(model: ov.Model, graph: ModelGraph, items: list[Any]) -> None:
    """Raises :class:`~optimum_wc.errors.InvalidArgumentError` naming the item and the input, for an item that
    lacks a model input or has one the model does not take, a value whose rank or type the input cannot take,
    token ids outside the vocabulary, an attention mask of another length than the ids in an item that starts
    from a reset state (its mask covers its own tokens only), or a state reset asked of a model without state."""
    parameters = model.get_parameters()
    names = [sorted(p.output(0).get_names()) or [p.get_friendly_name()] for p in parameters]
    stateful = len(model.get_sinks()) > 0
    vocabulary = {i: _vocabulary(graph, p) for i, p in enumerate(parameters) if "input_ids" in names[i]}
    for index, item in enumerate(items):
        if not stateful and isinstance(item, dict) and item.get(RESET_STATE_KEY):
            raise InvalidArgumentError(
                f"`dataset` item {index} asks for a state reset ({RESET_STATE_KEY!r}: True), but the model has no "
                "state; leave the key out, or give it the stateful model."
            )
        values = _by_position(item, names, index)
        if values is None:
            continue
        for position, value in enumerate(values):
            _check_value(index, names[position][0], parameters[position], value, vocabulary.get(position))
        ids = next((v for p, v in enumerate(values) if "input_ids" in names[p]), None)
        mask = next((v for p, v in enumerate(values) if "attention_mask" in names[p]), None)
        if (
            stateful
            and not continues_state(item)
            and ids is not None
            and mask is not None
            and np.ndim(mask)
            and np.shape(mask)[-1] != np.shape(ids)[-1]
        ):
            raise InvalidArgumentError(
                f"`dataset` item {index}: `attention_mask` covers {np.shape(mask)[-1]} tokens, `input_ids` has "
                f"{np.shape(ids)[-1]}; the state is reset before the item, so they must be equal."
            )


def _by_position(item: Any, names: list[list[str]], index: int) -> list[Any] | None:
    """The item's values in input order; None for a form left to OpenVINO (a single array for a single input)."""
    if isinstance(item, dict):
        known = {name for group in names for name in group}
        unknown = sorted(str(key) for key in item if key not in known and key != RESET_STATE_KEY)
        if unknown:
            raise InvalidArgumentError(
                f"`dataset` item {index} has {unknown}, which the model does not take; its inputs are "
                f"{[group[0] for group in names]}."
            )
        values = [next((item[n] for n in group if n in item), None) for group in names]
        missing = [group[0] for group, value in zip(names, values) if value is None]
        if missing:
            raise InvalidArgumentError(f"`dataset` item {index} lacks the model input(s) {missing}.")
        return values
    if isinstance(item, (list, tuple)):
        if len(item) != len(names):
            raise InvalidArgumentError(
                f"`dataset` item {index} has {len(item)} values; the model takes {len(names)} inputs "
                f"{[group[0] for group in names]}."
            )
        return list(item)
    return [item] if len(names) == 1 else None


def _check_value(index: int, name: str, parameter: ov.Node, value: Any, vocabulary: int | None) -> None:
    array = np.asarray(value)
    if array.dtype.kind not in NUMERIC_KINDS:
        raise InvalidArgumentError(
            f"`dataset` item {index}: input {name!r} holds {array.dtype} values; it takes numbers "
            f"({parameter.get_element_type().get_type_name()})."
        )
    shape = parameter.get_partial_shape()
    if shape.rank.is_static and array.ndim != shape.rank.get_length():
        raise InvalidArgumentError(
            f"`dataset` item {index}: input {name!r} has shape {list(array.shape)}; the model takes rank "
            f"{shape.rank.get_length()} ({shape})."
        )
    if vocabulary is not None and array.size and (array.min() < 0 or array.max() >= vocabulary):
        raise InvalidArgumentError(
            f"`dataset` item {index}: input {name!r} holds token ids from {array.min()} to {array.max()}; the "
            f"model's vocabulary has {vocabulary} (ids 0 to {vocabulary - 1})."
        )
