"""Model adapters: one window of token ids in, its logits out, whatever runs the model.

A registry of :class:`ModelAdapter` entries (tried in order) instead of if/elif on model types. Each entry matches
models without importing their library: a model of a library that is not imported yet cannot be an instance of it.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import sys
from typing import Any, Callable

import numpy as np

from optimum_wc.errors import InvalidArgumentTypeError

logger = logging.getLogger(__name__)

LogitsFunction = Callable[[np.ndarray], np.ndarray]
"""``(window_length,)`` int64 token ids -> ``(window_length, vocabulary)`` logits of one independent window."""


@dataclass(frozen=True)
class ModelAdapter:
    """How to run one kind of model on a window.

    Attributes:
        name: Shown in logs and errors.
        matches: ``matches(model)`` is True for the models this adapter runs.
        logits_function: ``logits_function(model)`` returns the :data:`LogitsFunction` for that model.
    """

    name: str
    matches: Callable[[Any], bool]
    logits_function: Callable[[Any], LogitsFunction]


def _is_instance(model: Any, module: str, class_name: str) -> bool:
    loaded = sys.modules.get(module)
    cls = getattr(loaded, class_name, None) if loaded is not None else None
    return cls is not None and isinstance(model, cls)


def _openvino_logits(model: Any) -> LogitsFunction:
    """optimum-intel's ``OVModelForCausalLM`` (and subclasses such as ``optimum_wc.OVModelForCausalLM``).

    Every call passes ``past_key_values=None``: optimum-intel then starts a new sequence, which resets the state of
    stateful models (``request.reset_state()``) and gives stateless ones an empty cache, so no window sees another.
    """
    import torch

    def run(ids: np.ndarray) -> np.ndarray:
        input_ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)[None])
        output = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), past_key_values=None)
        return output.logits[0].float().numpy()

    return run


def _torch_logits(model: Any) -> LogitsFunction:
    """A PyTorch causal LM (``transformers`` ``*ForCausalLM``): no gradients, no cache, on the model's device."""
    import torch

    if model.training:
        logger.warning("The PyTorch model is in training mode (dropout active); call model.eval() before evaluating.")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")

    def run(ids: np.ndarray) -> np.ndarray:
        input_ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)[None]).to(device)
        with torch.no_grad():
            output = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False)
        logits = output.logits if hasattr(output, "logits") else output[0]
        return logits[0].float().cpu().numpy()

    return run


ADAPTERS: list[ModelAdapter] = [
    ModelAdapter(
        "openvino",
        lambda model: _is_instance(model, "optimum.intel.openvino.modeling_decoder", "OVModelForCausalLM"),
        _openvino_logits,
    ),
    ModelAdapter("torch", lambda model: _is_instance(model, "torch.nn", "Module"), _torch_logits),
]


def register_adapter(adapter: ModelAdapter) -> None:
    """Adds ``adapter`` in front of the registry, so that it wins over the built-in ones for the models it matches."""
    if not isinstance(adapter, ModelAdapter):
        raise InvalidArgumentTypeError(f"`adapter` must be a ModelAdapter; got {type(adapter).__name__}.")
    ADAPTERS.insert(0, adapter)


def logits_function(model: Any, argument: str = "model") -> LogitsFunction:
    """The :data:`LogitsFunction` of the first registered adapter that matches ``model``.

    Args:
        model: The model to run.
        argument: The argument name used in the error message.

    Raises:
        InvalidArgumentTypeError: No adapter matches ``model``.
    """
    for adapter in ADAPTERS:
        if adapter.matches(model):
            logger.debug("Running `%s` with the %s adapter", argument, adapter.name)
            return adapter.logits_function(model)
    raise InvalidArgumentTypeError(
        f"`{argument}` must be an OpenVINO causal LM (optimum-intel's or optimum_wc's OVModelForCausalLM) or a "
        f"PyTorch causal LM (transformers); got {type(model).__name__}. "
        "Other kinds can be added with optimum_wc.evaluation.register_adapter."
    )
