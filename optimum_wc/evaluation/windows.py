"""Text -> fixed-length token windows, the unit that perplexity and KL divergence are measured on.

The text is read once, its lines (or rows) joined with ``"\\n"``, tokenized once without special tokens, and cut into
non-overlapping windows of ``window_length`` tokens; the last, incomplete window is dropped.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Sequence, Union

import numpy as np

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError

TextSource = Union[str, os.PathLike, Sequence[str], Any]
"""A path to a text file, a list of strings, or a ``datasets.Dataset`` with a ``text`` column."""

DEFAULT_WINDOW_LENGTH = 256
DEFAULT_NUM_WINDOWS = 100


def check_window_arguments(window_length: object, num_windows: object) -> None:
    """Checks ``window_length`` (an int >= 2: one window must predict at least one token) and ``num_windows``.

    Raises:
        InvalidArgumentTypeError: ``window_length`` is not an int, or ``num_windows`` is neither an int nor None.
        InvalidArgumentError: ``window_length`` < 2 or ``num_windows`` < 1.
    """
    if not isinstance(window_length, (int, np.integer)) or isinstance(window_length, bool):
        raise InvalidArgumentTypeError(f"`window_length` must be an int; got {type(window_length).__name__}.")
    if window_length < 2:
        raise InvalidArgumentError(
            f"`window_length` must be at least 2 (a window predicts window_length - 1 tokens); got {window_length}."
        )
    if num_windows is None:
        return
    if not isinstance(num_windows, (int, np.integer)) or isinstance(num_windows, bool):
        raise InvalidArgumentTypeError(f"`num_windows` must be an int or None (all); got {type(num_windows).__name__}.")
    if num_windows < 1:
        raise InvalidArgumentError(f"`num_windows` must be at least 1, or None for all windows; got {num_windows}.")


LOCAL_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
HUB_TEXTS = {"wikitext2": ("Salesforce/wikitext", "wikitext-2-raw-v1", "test")}


def _dataset_rows(data: Any) -> list:
    if "text" not in data.column_names:
        raise InvalidArgumentError(f"The `text` dataset has no 'text' column; its columns are {data.column_names}.")
    return data["text"]


def _hub_rows(name: str) -> list:
    import datasets

    repo, config, split = HUB_TEXTS[name]
    try:
        return _dataset_rows(datasets.load_dataset(repo, config, split=split))
    except InvalidArgumentError:
        raise
    except Exception as exc:
        msg = (
            f"`text`={name!r} must be downloaded from the Hugging Face Hub ({repo}), which failed "
            f"({type(exc).__name__}). Pass local text instead: a path to a .txt/.json/.parquet/.csv file, a list "
            "of strings or a datasets.Dataset."
        )
        raise InvalidArgumentError(msg) from exc


def load_rows(source: TextSource) -> list[str]:
    """Returns the lines (text files) or rows (datasets) of ``source``, in order.

    Args:
        source: A path (``str`` or ``os.PathLike``) to a UTF-8 text file (its lines, empty ones included; the final
            newline ends the last line) or to a .json/.jsonl/.parquet/.csv file with a ``text`` column (read with
            ``datasets``), the name ``"wikitext2"`` (its test split, from the Hub), a list of strings, or a
            ``datasets.Dataset`` with a ``text`` column.

    Raises:
        InvalidArgumentError: The path is not a file, a dataset has no ``text`` column, or a Hub name cannot be
            downloaded (the message says how to pass local text).
        InvalidArgumentTypeError: ``source`` is none of the above, or a list holds something other than strings.
    """
    if isinstance(source, str) and source in HUB_TEXTS and not pathlib.Path(source).exists():
        rows = _hub_rows(source)
    elif isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.is_file():
            hint = " To evaluate a string itself, pass it in a list: [text]." if isinstance(source, str) else ""
            raise InvalidArgumentError(f"`text` path {str(source)!r} is not an existing file.{hint}")
        if path.suffix.lower() in LOCAL_BUILDERS:
            import datasets

            rows = _dataset_rows(
                datasets.load_dataset(LOCAL_BUILDERS[path.suffix.lower()], data_files=str(path), split="train")
            )
        else:
            content = path.read_text(encoding="utf-8")  # universal newlines: "\r\n" reads as "\n"
            rows = (content[:-1] if content.endswith("\n") else content).split("\n")
    elif hasattr(source, "column_names"):  # datasets.Dataset, without importing datasets
        rows = _dataset_rows(source)
    elif isinstance(source, (list, tuple)):
        rows = source
    else:
        raise InvalidArgumentTypeError(
            "`text` must be a path to a text file, a list of strings, or a datasets.Dataset with a 'text' column; "
            f"got {type(source).__name__}."
        )
    bad = next((row for row in rows if not isinstance(row, str)), None)
    if bad is not None:
        raise InvalidArgumentTypeError(f"`text` must hold strings only; found a {type(bad).__name__}.")
    return list(rows)


def load_text(source: TextSource) -> str:
    """Returns the text of ``source`` (see :func:`load_rows`) as one string, its lines or rows joined with
    ``"\\n"``."""
    return "\n".join(load_rows(source))


def tokenize(text: str, tokenizer: Any) -> np.ndarray:
    """Token ids of ``text`` (no special tokens added) as a 1-D ``int64`` array.

    Args:
        tokenizer: A Hugging Face tokenizer, or any callable ``tokenizer(text, add_special_tokens=False)`` that
            returns a mapping with ``input_ids`` (a flat list of ints).
    """
    if not callable(tokenizer):
        raise InvalidArgumentTypeError(
            f"`tokenizer` must be a Hugging Face tokenizer (a callable); got {type(tokenizer).__name__}."
        )
    ids = np.asarray(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=np.int64)
    if ids.ndim != 1:
        raise InvalidArgumentError(
            f"`tokenizer` must return a flat list of input_ids for one text; got shape {ids.shape}."
        )
    return ids


def split_windows(token_ids: np.ndarray, window_length: int, num_windows: int | None) -> np.ndarray:
    """Cuts ``token_ids`` into the first ``num_windows`` non-overlapping windows of ``window_length`` tokens.

    Returns:
        An ``int64`` array of shape ``(num_windows, window_length)`` (all complete windows when ``num_windows`` is
        None).

    Raises:
        InvalidArgumentError: The text holds fewer than one window, or fewer windows than ``num_windows``.
    """
    check_window_arguments(window_length, num_windows)
    available = len(token_ids) // window_length
    if available == 0:
        raise InvalidArgumentError(
            f"`text` is too short: it holds {len(token_ids)} tokens, fewer than one window of "
            f"`window_length`={window_length} tokens. Pass more text or a smaller window_length."
        )
    if num_windows is not None and num_windows > available:
        raise InvalidArgumentError(
            f"`num_windows`={num_windows} asked, but `text` holds only {available} windows of {window_length} tokens "
            f"({len(token_ids)} tokens). Pass num_windows <= {available}, or None for all of them."
        )
    count = available if num_windows is None else int(num_windows)
    return np.asarray(token_ids[: count * window_length], dtype=np.int64).reshape(count, window_length)


def token_windows(
    text: TextSource,
    tokenizer: Any,
    window_length: int = DEFAULT_WINDOW_LENGTH,
    num_windows: int | None = DEFAULT_NUM_WINDOWS,
) -> np.ndarray:
    """Reads ``text``, tokenizes it once and returns its first ``num_windows`` windows of ``window_length`` tokens.

    Args:
        text: A path to a text file, a list of strings, or a ``datasets.Dataset`` with a ``text`` column
            (see :func:`load_text`).
        tokenizer: The model's tokenizer (see :func:`tokenize`); no special tokens are added.
        window_length: Tokens per window.
        num_windows: How many windows, from the start of the text; None for all complete windows.

    Returns:
        An ``int64`` array of shape ``(num_windows, window_length)``.

    Example:

    ```python
    >>> windows = token_windows(["def f():", "    return 1"], tokenizer, window_length=4, num_windows=None)
    ```
    """
    check_window_arguments(window_length, num_windows)
    return split_windows(tokenize(load_text(text), tokenizer), window_length, num_windows)
