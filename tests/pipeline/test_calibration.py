"""Calibration data: texts from lists, datasets and local files; Hub names fail clearly offline."""

from __future__ import annotations

import pathlib

import datasets
import pytest
from transformers import AutoTokenizer

from helpers import PYDOC_CALIBRATION
import optimum_wc
from optimum_wc.config.datasets import parse_dataset_name
from optimum_wc.pipeline.calibration import load_texts, token_samples

REPO = pathlib.Path(__file__).resolve().parents[2]
PYDOC = PYDOC_CALIBRATION
TOKENIZER = REPO / "models" / "tiny-llama-pydoc"


def _lines(count: int) -> list[str]:
    return [line for line in PYDOC.read_text().splitlines() if line.strip()][:count]


def test_local_text_file_and_folder_give_the_first_non_empty_lines(tmp_path):
    assert load_texts(str(PYDOC), 5) == _lines(5)
    (tmp_path / "a.txt").write_text("\n".join(_lines(3)))
    assert load_texts(tmp_path, 10) == _lines(3)


def test_datasets_dataset_and_json_files(tmp_path):
    data = datasets.Dataset.from_dict({"text": ["", "first", "second"]})
    assert load_texts(data, 1) == ["first"]
    data.to_json(tmp_path / "d.jsonl")
    assert load_texts(str(tmp_path / "d.jsonl"), 5) == ["first", "second"]
    with pytest.raises(optimum_wc.InvalidArgumentError, match="'text' column"):
        load_texts(datasets.Dataset.from_dict({"body": ["x"]}), 1)


def test_token_samples_tokenize_each_text_as_it_is():
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    samples = token_samples(_lines(4), tokenizer, 3)
    assert len(samples) == 3
    assert samples[0]["input_ids"].tolist() == tokenizer(_lines(1)[0], return_tensors="pt")["input_ids"].tolist()


def test_seq_len_option_and_bad_names():
    assert parse_dataset_name("wikitext2:seq_len=64") == ("wikitext2", 64)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="seq_len"):
        parse_dataset_name("c4:len=3")
    with pytest.raises(optimum_wc.InvalidArgumentError, match="neither an existing path"):
        optimum_wc.WeightCompressionConfig(bits=4, ratio=0.5, dataset="no-such-dataset")
    with pytest.raises(optimum_wc.InvalidArgumentError, match="empty"):
        load_texts([], 4)
    assert load_texts(["", "  ", "a"], 2) == ["", "  "]  # a list as given, as optimum-intel tokenizes it


def test_hub_dataset_without_network_says_how_to_pass_local_data(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="Pass local data instead"):
        token_samples("wikitext2", tokenizer, 4)
