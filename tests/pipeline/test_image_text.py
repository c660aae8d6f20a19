"""A VLM's image-text calibration items: from a local image folder in order, from a dataset's rows, shrunk as
optimum-intel shrinks large images, and refused with the columns named when they cannot be read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from optimum_wc.errors import InvalidArgumentError
from optimum_wc.pipeline.image_text import check_image_folder, image_text_items


def _folder(tmp_path, sizes, column="question"):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rows = []
    for index, (width, height) in enumerate(sizes):
        Image.fromarray(np.full((height, width, 3), index, dtype=np.uint8)).save(folder / f"{index}.png")
        rows.append({"file_name": f"{index}.png", column: f"prompt {index}"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def test_a_folder_gives_its_rows_in_order_up_to_the_count_with_large_images_shrunk(tmp_path):
    folder = _folder(tmp_path, [(1200, 300), (500, 500), (20, 900)])
    items = image_text_items(str(folder), 2, seed=0)
    assert [text for _, text in items] == ["prompt 0", "prompt 1"]
    assert [image.size for image, _ in items] == [(600, 150), (500, 500)]
    assert all(image.mode == "RGB" for image, _ in items)
    (image, _), *_ = image_text_items(str(folder), 3, seed=0)[2:]
    assert image.size == (13, 600)  # 20 / 1.5, truncated as optimum-intel truncates


def test_a_dataset_of_rows_takes_its_first_prompt_column(tmp_path):
    import datasets

    rows = datasets.load_dataset("imagefolder", data_dir=str(_folder(tmp_path, [(8, 8)], "text")), split="train")
    assert [text for _, text in image_text_items(rows, 5, seed=0)] == ["prompt 0"]


def test_what_cannot_be_read_is_refused_with_what_is_needed(tmp_path):
    folder = _folder(tmp_path, [(8, 8)], column="caption")
    with pytest.raises(InvalidArgumentError, match=r"\['image', 'caption'\].*question or instruction or text"):
        check_image_folder(str(folder))
    file = tmp_path / "prompts.txt"
    file.write_text("a prompt\n")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        image_text_items(str(file), 1, seed=0)
    with pytest.raises(InvalidArgumentError, match="'textvqa' or a local image folder|'textvqa', 'contextual'"):
        image_text_items(["a prompt"], 1, seed=0)
    with pytest.raises(InvalidArgumentError, match="no longer answer"):
        image_text_items("contextual", 1, seed=0)
