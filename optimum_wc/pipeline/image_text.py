"""Image-text calibration items for a vision-language model: (image, prompt) pairs from a Hub dataset by name, as
optimum-intel draws them, or from a local image folder.

A local folder is a ``datasets`` image folder: image files and a ``metadata.jsonl`` (or ``.csv``) whose rows name
each image (``file_name``) and its prompt (a ``question``, ``instruction`` or ``text`` column). Its rows are taken in
order; a Hub dataset's split is downloaded whole and shuffled with the quantizer's seed, as optimum-intel does (it
asks for no streaming there, so its order is that of ``datasets.Dataset.shuffle``).
"""

from __future__ import annotations

import pathlib
from typing import Any

from optimum_wc.config.datasets import IMAGE_TEXT_DATASETS
from optimum_wc.errors import InvalidArgumentError

TEXT_COLUMNS = ("question", "instruction", "text")  # a local folder's prompt column, the first found
MAX_IMAGE_SIZE = 600  # optimum-intel shrinks larger images to this longer side, keeping their aspect


def hub_image_text(name: str) -> Any:
    """The Hub dataset split that ``name`` (one of :data:`IMAGE_TEXT_DATASETS`) stands for (``datasets`` caches it on
    disk; called before an export to fail early when the Hub cannot be reached).

    Raises:
        InvalidArgumentError: The dataset can no longer be used, or the Hub could not be asked.
    """
    import datasets

    recipe = IMAGE_TEXT_DATASETS[name]
    if recipe.gone is not None:
        raise InvalidArgumentError(f"`dataset`={name!r} cannot be used: {recipe.gone}, or a local image folder.")
    try:
        return datasets.load_dataset(recipe.hub_id, split=recipe.split)
    except Exception as exc:
        raise InvalidArgumentError(
            f"`dataset`={name!r} is read from the Hugging Face Hub, which failed ({type(exc).__name__}). Pass a local "
            "image folder instead: images and a metadata.jsonl naming each `file_name` and its `question`."
        ) from exc


def _local_folder(path: pathlib.Path) -> tuple[Any, str]:
    """The rows of a local image folder and the name of its prompt column."""
    import datasets

    if not path.is_dir():
        raise InvalidArgumentError(
            f"`dataset` path {path} is not a folder: a vision-language model calibrates on an image folder (images "
            "and a metadata.jsonl naming each `file_name` and its `question`)."
        )
    try:
        rows = datasets.load_dataset("imagefolder", data_dir=str(path), split="train")
    except Exception as exc:
        raise InvalidArgumentError(
            f"`dataset` folder {path} is not an image folder datasets can read ({type(exc).__name__}: {exc})."
        ) from exc
    return rows, _text_column(rows.column_names, f"`dataset` folder {path}")


def _text_column(columns: list[str], where: str) -> str:
    text = next((column for column in TEXT_COLUMNS if column in columns), None)
    if "image" not in columns or text is None:
        raise InvalidArgumentError(
            f"{where} has the columns {columns}: it needs an `image` column and a prompt column "
            f"({' or '.join(TEXT_COLUMNS)}); give the prompts in a metadata.jsonl beside the images."
        )
    return text


def _shrunk(image: Any) -> Any:
    """``image`` in RGB, shrunk as optimum-intel shrinks it when its longer side is over :data:`MAX_IMAGE_SIZE`."""
    image = image.convert("RGB")
    factor = max(image.size[0] / MAX_IMAGE_SIZE, image.size[1] / MAX_IMAGE_SIZE)
    if factor > 1:
        image = image.resize((int(image.size[0] / factor), int(image.size[1] / factor)))
    return image


def check_image_folder(source: Any) -> None:
    """Refuses a local ``source`` that is not an image folder with an image and a prompt column (called before an
    export, so that bad data fails the run before any work)."""
    if isinstance(source, (str, pathlib.Path)) and pathlib.Path(source).exists():
        _local_folder(pathlib.Path(source))


def image_text_items(source: Any, count: int, seed: int) -> list[tuple[Any, str]]:
    """Up to ``count`` (RGB image, prompt) pairs from ``source``: a name of :data:`IMAGE_TEXT_DATASETS` (shuffled
    with ``seed``, as optimum-intel's quantizer does), a local image folder or a ``datasets.Dataset`` of images and
    prompts (in their order).

    Raises:
        InvalidArgumentError: The source cannot be read, lacks an image or prompt column, or holds no row.
    """
    if isinstance(source, str) and source in IMAGE_TEXT_DATASETS:
        rows, text = hub_image_text(source).shuffle(seed=seed), IMAGE_TEXT_DATASETS[source].text
    elif isinstance(source, (str, pathlib.Path)) and pathlib.Path(source).exists():
        rows, text = _local_folder(pathlib.Path(source))
    elif hasattr(source, "column_names"):
        rows, text = source, _text_column(list(source.column_names), "The calibration dataset")
    else:
        raise InvalidArgumentError(
            f"`dataset`={source!r}: a vision-language model calibrates on images and prompts, from "
            f"{', '.join(repr(name) for name in IMAGE_TEXT_DATASETS)} or a local image folder."
        )
    items = []
    for row in rows:
        if len(items) >= count:
            break
        items.append((_shrunk(row["image"]), row[text]))
    if not items:
        raise InvalidArgumentError(f"`dataset`={source!r} holds no image and prompt.")
    return items
