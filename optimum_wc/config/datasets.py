"""Calibration datasets by name: the Hub recipes ``WeightCompressionConfig(dataset=...)`` accepts, and their options."""

from __future__ import annotations

import dataclasses

from optimum_wc.errors import InvalidArgumentError

HUB_DATASETS = ("wikitext2", "c4", "c4-new", "gsm8k")  # optimum-intel's recipes over Hub datasets
GENERATED = "auto"  # text the model generates itself (nncf's recipe, which optimum-intel uses)
TEXT_DATASETS = (GENERATED, *HUB_DATASETS)  # what a language model calibrates on


@dataclasses.dataclass(frozen=True)
class ImageTextDataset:
    """A Hub dataset of images and questions that a vision-language model calibrates on (optimum-intel's names).

    Args:
        hub_id: The dataset's Hub id.
        split: Its split.
        text: The column of the prompt.
        gone: Why it can no longer be used (None: it can).
    """

    hub_id: str
    split: str
    text: str
    gone: str | None = None


IMAGE_TEXT_DATASETS = {
    "textvqa": ImageTextDataset("lmms-lab/textvqa", "validation", "question"),
    "contextual": ImageTextDataset(
        "ucla-contextual/contextual_test",
        "test",
        "instruction",
        gone="its images are URLs that no longer answer (optimum-intel deprecates it too); use 'textvqa'",
    ),
}
DATASET_NAMES = (*TEXT_DATASETS, *IMAGE_TEXT_DATASETS)


def parse_dataset_name(name: str) -> tuple[str, int | None]:
    """``"wikitext2:seq_len=64"`` -> ``("wikitext2", 64)``."""
    base, _, options = name.partition(":")
    if not options:
        return base, None
    key, _, value = options.partition("=")
    if key != "seq_len" or not value.isdigit() or int(value) <= 0:
        raise InvalidArgumentError(f"`dataset` option {options!r} is invalid: only `seq_len=N` (N > 0) is accepted.")
    return base, int(value)
