"""Calibration inputs collected by running the model on tokenized text, as optimum-intel's quantizer collects them.

optimum-intel's ``OVQuantizer.quantize(calibration_dataset=...)`` takes a ``datasets.Dataset`` (or a list) of
tokenized text for a causal LM, and records what the model's own ``generate(..., max_new_tokens=1)`` hands to
OpenVINO for each batch: the input ids and mask with the position ids, beam indices and (for a stateless model)
empty caches that ``prepare_inputs`` adds. The batches come in a seeded random order, and recording stops once more
than ``num_samples`` inputs are kept. Each recorded input of a stateful model says, under nncf's reset key, whether
the state was reset before it. Done the same way here, the compressed model is optimum-intel's. For an
encoder-decoder, each of its OpenVINO models records what it is given while the model generates from the text.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

import openvino as ov
from optimum_wc.openvino.items import RESET_STATE_KEY

DEFAULT_SAMPLES = 200  # optimum-intel's count of recorded inputs when the config sets no num_samples


class _Recorder:
    """Stands in for the model's infer request: keeps a copy of every input it starts, then runs it."""

    def __init__(self, request: Any, stateful: bool) -> None:
        self.request = request
        self.stateful = stateful
        self.inputs: list[dict[str, Any]] = []
        self._reset = False

    def _keep(self, inputs: dict[str, Any]) -> None:
        kept = {name: np.array(value.data if isinstance(value, ov.Tensor) else value) for name, value in inputs.items()}
        if self.stateful:
            kept[RESET_STATE_KEY], self._reset = self._reset, False
        self.inputs.append(kept)

    def start_async(self, inputs: Any = None, userdata: Any = None, share_inputs: bool = False, **kwargs: Any):
        self._keep(inputs)
        return self.request.start_async(inputs, userdata, share_inputs)

    def infer(self, inputs: Any = None, share_inputs: bool = False, **kwargs: Any) -> Any:
        self._keep(inputs)
        return self.request.infer(inputs, share_inputs, **kwargs)

    def __call__(self, inputs: Any = None, *args: Any, **kwargs: Any) -> Any:  # a compiled model called directly
        self._keep(inputs)
        return self.request(inputs, *args, **kwargs)

    def reset_state(self) -> None:
        self.request.reset_state()
        self._reset = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.request, name)


def collected_inputs(
    model: Any, dataset: Any, num_samples: int | None, seed: int, batch_size: int = 1, data_collator: Any = None
) -> list[dict[str, Any]]:
    """The inputs ``model`` (an optimum-intel causal LM) gives OpenVINO while generating one token per batch of
    ``dataset`` (tokenized text: a ``datasets.Dataset`` or a list of dicts), batches drawn in a random order seeded
    by ``seed``, until more than ``num_samples`` (default 200) are kept."""
    from datasets import Dataset, IterableDataset
    import torch
    from torch.utils.data import DataLoader, RandomSampler
    from transformers import default_data_collator

    if isinstance(dataset, Dataset):  # the columns generate() does not take are dropped, as optimum-intel does
        taken = set(inspect.signature(model.forward).parameters)
        dataset = dataset.remove_columns([name for name in dataset.column_names if name not in taken])
    sampler = None
    if not isinstance(dataset, IterableDataset):
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    batches = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, collate_fn=data_collator or default_data_collator
    )
    limit = num_samples or DEFAULT_SAMPLES
    model.update_pkv_precision(True)  # a stateless model's cache inputs in float32, as they are recorded there
    model.compile()
    recorder = _Recorder(model.request, bool(model.stateful))
    model.request = recorder
    try:
        for batch in batches:
            if len(recorder.inputs) > limit:
                break
            model.generate(**batch, max_new_tokens=1)
    finally:
        model.request = recorder.request
    return recorder.inputs


def generation_inputs(model: Any, samples: list[dict[str, Any]], max_new_tokens: int) -> dict[str, list[dict]]:
    """The inputs each OpenVINO model of ``model`` (an optimum-intel encoder-decoder) is given while the model
    generates up to ``max_new_tokens`` tokens for each of ``samples`` (tokenized text), by component name, as
    optimum-intel's quantizer records them for a text-to-text model."""
    recorders = {}
    for name, component in model.components.items():
        component.compile()
        recorders[name] = _Recorder(component.request, len(component.request.query_state()) > 0)
        component.request = recorders[name]
    try:
        for sample in samples:
            model.generate(**sample, max_new_tokens=max_new_tokens)
    finally:
        for name, component in model.components.items():
            component.request = recorders[name].request
    return {name: recorder.inputs for name, recorder in recorders.items()}
