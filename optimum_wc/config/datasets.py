"""Calibration datasets by name: the Hub recipes ``WeightCompressionConfig(dataset=...)`` accepts, and their options."""

from __future__ import annotations

from optimum_wc.errors import InvalidArgumentError

HUB_DATASETS = ("wikitext2", "c4", "c4-new", "gsm8k")  # optimum-intel's recipes over Hub datasets
GENERATED = "auto"  # text the model generates itself (nncf's recipe, which optimum-intel uses)
DATASET_NAMES = (GENERATED, *HUB_DATASETS)


def parse_dataset_name(name: str) -> tuple[str, int | None]:
    """``"wikitext2:seq_len=64"`` -> ``("wikitext2", 64)``."""
    base, _, options = name.partition(":")
    if not options:
        return base, None
    key, _, value = options.partition("=")
    if key != "seq_len" or not value.isdigit() or int(value) <= 0:
        raise InvalidArgumentError(f"`dataset` option {options!r} is invalid: only `seq_len=N` (N > 0) is accepted.")
    return base, int(value)
