"""On-disk cache of activation statistics (``advanced_parameters.statistics_path``), reused by later runs.

Each kind of statistic is one ``.npz`` file named by a digest of what determines it: the kind, the activation
points, the model's graph (op names and types, not the weight values) and the calibration items. A run whose
inputs differ finds no file and collects (and saves) its own, so stale statistics are never used. The weights are
not hashed (that would read the whole model): after changing a model's weights in place, use a new folder.
Files are written to a temporary name and renamed, so an interrupted run leaves no partial file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import tempfile
from typing import Any, Callable

import numpy as np

import openvino as ov

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


def _update_with_item(digest: "hashlib._Hash", item: Any) -> None:
    values = (
        sorted(item.items())
        if isinstance(item, dict)
        else enumerate(item if isinstance(item, (list, tuple)) else [item])
    )
    for key, value in values:
        array = np.ascontiguousarray(np.asarray(value))
        digest.update(f"{key}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())


def fingerprint(kind: str, points: list[str], model: ov.Model, items: list[Any]) -> str:
    """A digest of a statistic's kind, its points, the model's graph and the calibration items."""
    digest = hashlib.sha256(f"{kind}\n{'|'.join(points)}\n".encode())
    for op in model.get_ordered_ops():
        digest.update(f"{op.get_friendly_name()}:{op.get_type_name()};".encode())
    for item in items:
        _update_with_item(digest, item)
    return digest.hexdigest()[:24]


class StatisticsCache:
    """``get(kind, points, compute)``: the arrays ``compute()`` returns, loaded from ``path`` when saved before."""

    def __init__(self, path: str | os.PathLike, model: ov.Model, items: list[Any]):
        self.path = pathlib.Path(path)
        self.model = model
        self.items = items

    def get(self, kind: str, points: list[str], compute: Callable[[], Arrays]) -> Arrays:
        file = self.path / f"{kind}-{fingerprint(kind, points, self.model, self.items)}.npz"
        if file.is_file():
            with np.load(file, allow_pickle=False) as data:
                logger.info("Activation statistics (%s) loaded from %s", kind, file)
                return {name: data[name] for name in data.files}
        arrays = compute()
        self.path.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path, prefix=f".{kind}-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **arrays)
            os.replace(temporary, file)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        logger.info("Activation statistics (%s) saved to %s", kind, file)
        return arrays


def cached(
    path: str | os.PathLike | None,
    model: ov.Model,
    items: list[Any],
    kind: str,
    points: list[str],
    compute: Callable[[], Arrays],
) -> Arrays:
    """``compute()``, through the cache in ``path`` when one is given (``statistics_path``)."""
    return StatisticsCache(path, model, items).get(kind, points, compute) if path else compute()
