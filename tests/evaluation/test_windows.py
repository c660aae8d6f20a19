"""Token windows: text sources, exact windows for a toy tokenizer, and the errors for too little text."""

from __future__ import annotations

import pathlib

import datasets
import numpy as np
import pytest
from transformers import AutoTokenizer

import optimum_wc
from optimum_wc.evaluation import load_text, split_windows, token_windows

REPO = pathlib.Path(__file__).resolve().parents[2]
TOKENIZER = REPO / "models" / "tiny-llama-pydoc"
LINES = ["abc", "", "de", "fghij"]
TEXT = "abc\n\nde\nfghij"  # 13 characters


class ByteTokenizer:
    """One token per UTF-8 byte; id 1 is a BOS token that only ``add_special_tokens=True`` adds."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        return {"input_ids": ([1] if add_special_tokens else []) + list(text.encode("utf-8"))}


def _ids(text: str) -> list[int]:
    return list(text.encode("utf-8"))


@pytest.mark.parametrize("kind", ["list", "tuple", "dataset", "str_path", "pathlib_path"])
def test_every_source_gives_the_lines_joined_with_newlines(tmp_path, kind):
    file = tmp_path / "text.txt"
    file.write_text(TEXT + "\n")  # the final newline ends the last line
    source = {
        "list": LINES,
        "tuple": tuple(LINES),
        "dataset": datasets.Dataset.from_dict({"text": LINES}),
        "str_path": str(file),
        "pathlib_path": file,
    }[kind]
    assert load_text(source) == TEXT


def test_crlf_file_reads_as_newlines(tmp_path):
    file = tmp_path / "text.txt"
    file.write_bytes(TEXT.replace("\n", "\r\n").encode() + b"\r\n")
    assert load_text(file) == TEXT


def test_exact_windows_without_special_tokens():
    windows = token_windows(LINES, ByteTokenizer(), window_length=4, num_windows=None)
    expected = np.array(_ids(TEXT)[:12]).reshape(3, 4)  # 13 tokens -> 3 complete windows, the 13th token dropped
    assert windows.dtype == np.int64
    np.testing.assert_array_equal(windows, expected)
    np.testing.assert_array_equal(token_windows(LINES, ByteTokenizer(), window_length=4, num_windows=2), expected[:2])
    np.testing.assert_array_equal(token_windows(LINES, ByteTokenizer(), window_length=13, num_windows=1), [_ids(TEXT)])


def test_hugging_face_tokenizer_tokenizes_the_whole_text_once():
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    lines = ["The module provides functions.", "", "    def f(x):", "        return x + 1"] * 5
    ids = tokenizer("\n".join(lines), add_special_tokens=False)["input_ids"]
    windows = token_windows(lines, tokenizer, window_length=8, num_windows=None)
    assert windows.shape == (len(ids) // 8, 8)
    np.testing.assert_array_equal(windows.ravel(), ids[: windows.size])


def test_too_short_text_names_window_length_and_the_token_count():
    with pytest.raises(optimum_wc.InvalidArgumentError, match=r"13 tokens.*`window_length`=14"):
        token_windows(LINES, ByteTokenizer(), window_length=14, num_windows=None)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="too short"):
        token_windows([], ByteTokenizer(), window_length=2)


def test_fewer_windows_than_asked_says_how_many_there_are():
    with pytest.raises(optimum_wc.InvalidArgumentError, match=r"`num_windows`=4 asked.*only 3 windows.*<= 3"):
        token_windows(LINES, ByteTokenizer(), window_length=4, num_windows=4)


@pytest.mark.parametrize(
    ("window_length", "num_windows", "error", "match"),
    [
        (1, None, optimum_wc.InvalidArgumentError, "`window_length` must be at least 2"),
        (0, None, optimum_wc.InvalidArgumentError, "`window_length`"),
        (4.0, None, optimum_wc.InvalidArgumentTypeError, "`window_length` must be an int"),
        (True, None, optimum_wc.InvalidArgumentTypeError, "`window_length` must be an int"),
        (4, 0, optimum_wc.InvalidArgumentError, "`num_windows` must be at least 1"),
        (4, -2, optimum_wc.InvalidArgumentError, "`num_windows`"),
        (4, "all", optimum_wc.InvalidArgumentTypeError, "`num_windows` must be an int or None"),
    ],
    ids=["length_1", "length_0", "length_float", "length_bool", "windows_0", "windows_negative", "windows_str"],
)
def test_bad_window_arguments(window_length, num_windows, error, match):
    with pytest.raises(error, match=match):
        token_windows(LINES, ByteTokenizer(), window_length=window_length, num_windows=num_windows)
    with pytest.raises(error, match=match):
        split_windows(np.arange(100), window_length, num_windows)


def test_bad_text_sources(tmp_path):
    with pytest.raises(optimum_wc.InvalidArgumentError, match=r"not an existing file.*in a list"):
        load_text("just some words")
    with pytest.raises(optimum_wc.InvalidArgumentError, match="not an existing file"):
        load_text(tmp_path)  # a folder
    with pytest.raises(optimum_wc.InvalidArgumentError, match="'text' column"):
        load_text(datasets.Dataset.from_dict({"body": ["x"]}))
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="strings only"):
        load_text(["a", 3])
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="`text` must be"):
        load_text(42)
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="`tokenizer`"):
        token_windows(LINES, "not a tokenizer", window_length=4)
