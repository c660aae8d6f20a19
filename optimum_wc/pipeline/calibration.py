"""Calibration data: texts -> token samples (the Hugging Face side) and model inputs (what the core feeds).

``compress_weights(dataset=...)`` takes an ``nncf.Dataset`` (its ``get_inference_data()`` items, transform applied,
matched by shape) or any iterable of model inputs; the first ``subset_size`` items are used, in order.

``WeightCompressionConfig(dataset=...)`` takes text, as optimum-intel does: a list of strings (the first
``num_samples``, tokenized as they are), a ``datasets.Dataset`` with a ``text`` column, a path to local text, JSON,
JSON-lines, CSV or parquet files (read with ``datasets.load_dataset``), or optimum-intel's names: ``wikitext2``,
``c4`` and ``c4-new`` (random 32-token windows, seed 0), ``gsm8k`` (question and answer pairs, shuffled with seed
42, cut at 256 tokens), where ``name:seq_len=N`` sets the length, and ``auto`` (text the model writes itself: the
model class generates it).
"""

from __future__ import annotations

from itertools import islice
import pathlib
import random
from typing import Any, Iterable

import numpy as np

from optimum_wc.config.datasets import DATASET_NAMES, HUB_DATASETS, IMAGE_TEXT_DATASETS, parse_dataset_name
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError
from optimum_wc.pipeline.image_text import hub_image_text


def _as_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):  # torch tensors, without importing torch
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (str, bytes)):
        return np.asarray(value)
    return value


def inference_items(dataset: object, subset_size: int) -> list[Any]:
    """Returns up to ``subset_size`` model inputs from ``dataset``, tensors converted to numpy arrays.

    Raises:
        InvalidArgumentTypeError: ``dataset`` is text, or not iterable.
        InvalidArgumentError: ``dataset`` yields no item.
    """
    if hasattr(dataset, "get_inference_data"):
        items: Iterable[Any] = dataset.get_inference_data()
    elif isinstance(dataset, (str, bytes)) or not hasattr(dataset, "__iter__"):
        msg = (
            "`dataset` must be an nncf.Dataset or an iterable of model inputs (dicts of arrays); "
            f"got {type(dataset).__name__}. Text datasets go through OVModelForCausalLM with a tokenizer."
        )
        raise InvalidArgumentTypeError(msg)
    else:
        items = dataset
    chosen = []
    for item in islice(items, subset_size):
        if isinstance(item, (str, bytes)):
            msg = (
                "`dataset` holds text; compress_weights needs model inputs. Tokenize it first, or use "
                "OVModelForCausalLM with WeightCompressionConfig(dataset=..., tokenizer=...)."
            )
            raise InvalidArgumentTypeError(msg)
        if isinstance(item, dict):
            item = {key: _as_numpy(value) for key, value in item.items()}
        elif isinstance(item, (list, tuple)):
            item = [_as_numpy(value) for value in item]
        else:
            item = _as_numpy(item)
        chosen.append(item)
    if not chosen:
        raise InvalidArgumentError("`dataset` is empty: it yielded no calibration sample.")
    return chosen


SEED = 42  # optimum-intel's default quantizer seed
LOCAL_BUILDERS = {".txt": "text", ".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def load_texts(source: object, num_samples: int) -> list[str]:
    """The first ``num_samples`` texts of a list (as they are, empty ones too, as optimum-intel takes them), or the
    first non-empty ones of a ``datasets.Dataset`` or local files."""
    if isinstance(source, list):
        if not all(isinstance(text, str) for text in source):
            raise InvalidArgumentTypeError("A `dataset` list must hold strings only.")
        texts = source
    elif isinstance(source, (str, pathlib.Path)) and pathlib.Path(source).exists():
        texts = _local_texts(pathlib.Path(source))
    elif hasattr(source, "column_names"):  # datasets.Dataset
        if "text" not in source.column_names:
            raise InvalidArgumentError(f"The `dataset` has no 'text' column; its columns are {source.column_names}.")
        texts = source["text"]
    else:
        msg = (
            f"`dataset`={source!r} is not a list of strings, a datasets.Dataset, an existing path, or one of "
            f"{', '.join(DATASET_NAMES)}."
        )
        raise InvalidArgumentError(msg)
    if isinstance(source, list):
        chosen = source[:num_samples]
    else:
        chosen = [text for text in texts if text and text.strip()][:num_samples]
    if not chosen:
        raise InvalidArgumentError("`dataset` is empty: it holds no non-empty text.")
    return chosen


def _local_texts(path: pathlib.Path) -> list[str]:
    import datasets

    files = sorted(p for p in path.rglob("*") if p.suffix in LOCAL_BUILDERS) if path.is_dir() else [path]
    builders = {LOCAL_BUILDERS.get(p.suffix) for p in files}
    if not files or None in builders or len(builders) != 1:
        raise InvalidArgumentError(
            f"`dataset` path {path} must hold files of one kind among {', '.join(LOCAL_BUILDERS)}."
        )
    data = datasets.load_dataset(builders.pop(), data_files=[str(p) for p in files], split="train")
    if "text" not in data.column_names:
        raise InvalidArgumentError(f"The `dataset` files have no 'text' column; their columns are {data.column_names}.")
    return data["text"]


def token_samples(source: object, tokenizer: Any, num_samples: int, seed: int = SEED) -> list[dict[str, Any]]:
    """Tokenized calibration samples (``input_ids``, ``attention_mask``), one per text or Hub window; ``seed`` is
    optimum-intel's quantizer seed, which draws the Hub samples."""
    if isinstance(source, str) and parse_dataset_name(source)[0] == "gsm8k":
        return _question_answers(source, tokenizer, num_samples, seed)
    if isinstance(source, str) and parse_dataset_name(source)[0] in HUB_DATASETS:
        return _hub_windows(source, tokenizer, num_samples, seed)
    return [tokenizer(text, return_tensors="pt") for text in load_texts(source, num_samples)]


CONTEXT_ATTRIBUTES = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def context_length(model_config: Any) -> int | None:
    """The context length in a ``transformers`` config (the first of ``CONTEXT_ATTRIBUTES`` it has), if any."""
    values = (getattr(model_config, name, None) for name in CONTEXT_ATTRIBUTES)
    return next((value for value in values if isinstance(value, int) and value > 0), None)


def check_token_samples(samples: list[dict[str, Any]], model_config: Any) -> None:
    """Refuses calibration samples that the model cannot run on, before any weight is touched.

    Args:
        samples: Tokenized samples (``input_ids`` of shape ``[1, length]``).
        model_config: The model's ``transformers`` config; its ``vocab_size`` and context length (the first of
            ``max_position_embeddings``, ``n_positions``, ``max_sequence_length``, ``seq_length`` it has) are checked.

    Raises:
        InvalidArgumentError: A token id is outside the model's vocabulary (the tokenizer does not match the model),
            or a sample is longer than the model's context.
    """
    vocab_size = getattr(model_config, "vocab_size", None)
    context = context_length(model_config)
    for index, sample in enumerate(samples):
        ids = np.asarray(_as_numpy(sample["input_ids"]))
        if ids.size == 0:
            raise InvalidArgumentError(f"Calibration sample {index} of the `dataset` has no token.")
        largest = int(ids.max())
        if isinstance(vocab_size, int) and (largest >= vocab_size or int(ids.min()) < 0):
            msg = (
                f"The `tokenizer` does not match the model: calibration sample {index} holds token id {largest}, "
                f"but the model's vocabulary has {vocab_size} entries. Pass the model's own tokenizer."
            )
            raise InvalidArgumentError(msg)
        if isinstance(context, int) and ids.shape[-1] > context:
            msg = (
                f"Calibration sample {index} of the `dataset` has {ids.shape[-1]} tokens, more than the model's "
                f"context of {context}. Pass shorter texts (or `name:seq_len=N` with N <= {context} for a Hub dataset)."
            )
            raise InvalidArgumentError(msg)


def hub_dataset(name: str) -> Any:
    """The Hub dataset behind one of :data:`HUB_DATASETS` (``datasets`` caches it on disk; called before an export
    to fail early when the Hub cannot be reached).

    Raises:
        InvalidArgumentError: The download failed; the message says what to pass instead.
    """
    import datasets

    base, _ = parse_dataset_name(name)
    try:
        if base == "wikitext2":
            return datasets.load_dataset("Salesforce/wikitext", "wikitext-2-raw-v1", split="train")
        if base == "gsm8k":
            return datasets.load_dataset("openai/gsm8k", name="main", split="train")
        shard = {"train": "en/c4-train.00000-of-01024.json.gz"}
        return datasets.load_dataset("allenai/c4", split="train", data_files=shard)
    except Exception as exc:
        msg = (
            f"`dataset`={name!r} must be downloaded from the Hugging Face Hub, which failed ({type(exc).__name__}). "
            "Pass local data instead: a list of strings, a datasets.Dataset, or a path to .txt/.json/.parquet files."
        )
        raise InvalidArgumentError(msg) from exc


def check_hub_dataset(dataset: object) -> None:
    """Downloads (or finds cached) the Hub dataset that ``dataset`` names, if it names one: called before an export,
    so that a Hub that cannot be reached fails the run before any work rather than after."""
    if isinstance(dataset, str) and parse_dataset_name(dataset)[0] in HUB_DATASETS:
        hub_dataset(dataset)
    elif isinstance(dataset, str) and dataset in IMAGE_TEXT_DATASETS:
        hub_image_text(dataset)


def _question_answers(name: str, tokenizer: Any, num_samples: int, seed: int) -> list[dict[str, Any]]:
    """optimum-intel's gsm8k recipe: ``num_samples`` rows of the shuffled training split (``seed``), each
    ``"Question: ...\nAnswer: ..."``, tokenized and cut at ``seq_len`` tokens (256 by default)."""
    _, seq_len = parse_dataset_name(name)
    rows = hub_dataset(name).shuffle(seed=seed).take(num_samples)
    texts = [f"Question: {question}\nAnswer: {answer}" for question, answer in zip(rows["question"], rows["answer"])]
    return [tokenizer(text, return_tensors="pt", truncation=True, max_length=seq_len or 256) for text in texts]


def _hub_windows(name: str, tokenizer: Any, num_samples: int, seed: int) -> list[dict[str, Any]]:
    """optimum-intel's recipes for its named datasets: random windows from wikitext-2 or one C4 shard."""
    base, seq_len = parse_dataset_name(name)
    seq_len = seq_len or 32
    data = hub_dataset(name)
    rng = random.Random(seed - SEED)  # optimum-intel seeds Python's generator with the quantizer's seed - 42
    samples = []
    if base == "wikitext2":
        text = "".join(" \n" if line == "" else line for line in data["text"][: num_samples * seq_len // 4])
        ids = tokenizer(text, return_tensors="pt").input_ids
        for _ in range(num_samples):
            start = rng.randint(0, ids.shape[1] - seq_len - 1)
            window = ids[:, start : start + seq_len]
            samples.append({"input_ids": window, "attention_mask": window.new_ones(window.shape)})
        return samples
    for _ in range(num_samples):
        while True:
            ids = tokenizer(data[rng.randint(0, len(data) - 1)]["text"], return_tensors="pt").input_ids
            if ids.shape[1] > seq_len:
                break
        start = rng.randint(0, ids.shape[1] - seq_len - 1)
        window = ids[:, start : start + seq_len]
        samples.append({"input_ids": window, "attention_mask": window.new_ones(window.shape)})
    return samples
