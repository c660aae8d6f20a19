"""Perplexity of a whole text with a sliding window, token- and word-level, and LAMBADA-style last-word scoring.

Sliding window (the Hugging Face recipe for fixed-length models): the text is tokenized once (no special tokens);
windows of ``window_length`` tokens start every ``stride`` tokens, and each window scores only the tokens that no
earlier window scored, with the rest of the window as context. ``stride == window_length`` gives non-overlapping
windows (each window's first token, without context, is not scored: the windows of :func:`evaluate`); a smaller
stride scores every token but the text's first, with more context. Then

    perplexity      = exp(NLL / scored tokens)
    word perplexity = exp(NLL / words)      (words: the whitespace-separated words of the text)

and the word-level figure compares models with different tokenizers.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError
from optimum_wc.evaluation.adapters import logits_function
from optimum_wc.evaluation.metrics import log_softmax, token_nll
from optimum_wc.evaluation.windows import DEFAULT_WINDOW_LENGTH, TextSource, check_window_arguments, load_rows, tokenize
from optimum_wc.pipeline.calibration import context_length

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerplexityResult:
    """What :func:`perplexity` measured.

    Attributes:
        perplexity: Token-level, ``exp(NLL / num_tokens)``.
        word_perplexity: ``exp(NLL / num_words)`` over the same text.
        num_tokens: Scored tokens: every token but the text's first with ``stride < window_length``; with
            non-overlapping windows, every token but each window's first (which has no context).
        num_words: Whitespace-separated words of the evaluated text (0, and ``word_perplexity`` NaN, when
            ``max_tokens`` cuts the text and the tokenizer cannot decode).
        window_length: Tokens per window.
        stride: Tokens between window starts.
    """

    perplexity: float
    word_perplexity: float
    num_tokens: int
    num_words: int
    window_length: int
    stride: int


@dataclass(frozen=True)
class LastWordResult:
    """What :func:`last_word` measured.

    Attributes:
        accuracy: Share of examples whose last word the model predicts exactly (greedy, every token).
        perplexity: ``exp`` of the mean NLL per last-word token.
        num_examples: Examples scored.
    """

    accuracy: float
    perplexity: float
    num_examples: int


def model_context(model: Any) -> int | None:
    """The model's context length from its config (``max_position_embeddings`` or the like), if it has one."""
    return context_length(getattr(model, "config", None))


def _check_context(model: Any, length: int, what: str) -> None:
    context = model_context(model)
    if context is not None and length > context:
        raise InvalidArgumentError(f"{what} is {length} tokens, longer than the model's context of {context} tokens.")


def _check_stride(stride: object, window_length: int) -> int:
    if stride is None:
        return window_length
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool):
        raise InvalidArgumentTypeError(f"`stride` must be an int or None; got {type(stride).__name__}.")
    if not 1 <= stride <= window_length:
        raise InvalidArgumentError(f"`stride` must be between 1 and `window_length`={window_length}; got {stride}.")
    return int(stride)


def perplexity(
    model: Any,
    tokenizer: Any,
    text: TextSource,
    *,
    window_length: int = DEFAULT_WINDOW_LENGTH,
    stride: int | None = None,
    max_tokens: int | None = None,
    progress: bool = False,
) -> PerplexityResult:
    """Token-level and word-level perplexity of ``model`` on the whole of ``text``, with a sliding window.

    Args:
        model: An OpenVINO or PyTorch causal LM (see :func:`optimum_wc.evaluation.evaluate`).
        tokenizer: The model's tokenizer.
        text: A path to a text, JSON, parquet or CSV file, ``"wikitext2"``, a list of strings or a
            ``datasets.Dataset`` with a ``text`` column; lines or rows are joined with ``"\\n"``.
        window_length: Tokens per window (at most the model's context).
        stride: Tokens between window starts, 1 to ``window_length`` (default: ``window_length``).
        max_tokens: Evaluate only the first ``max_tokens`` tokens (and the words they cover); None for all.
        progress: Show a progress bar over the windows.

    Raises:
        InvalidArgumentError: Empty text, a window longer than the model's context, or a bad ``stride``.

    Example:

    ```python
    >>> result = perplexity(model, tokenizer, "valid.txt", window_length=512, stride=256)
    >>> result.perplexity, result.word_perplexity
    ```
    """
    check_window_arguments(window_length, None)
    stride = _check_stride(stride, window_length)
    _check_context(model, window_length, "`window_length`")
    run = logits_function(model, "model")
    rows = load_rows(text)
    ids = tokenize("\n".join(rows), tokenizer)
    if max_tokens is not None:
        ids = ids[: int(max_tokens)]
    if len(ids) < 2:
        raise InvalidArgumentError(f"`text` holds {len(ids)} token(s); perplexity needs at least 2.")
    if max_tokens is None:
        words = len("\n".join(rows).split())
    else:  # the words of the evaluated tokens, where the tokenizer can decode them
        words = len(tokenizer.decode(ids.tolist()).split()) if hasattr(tokenizer, "decode") else 0

    nll, tokens, scored_until = 0.0, 0, 1  # the text's first token is never scored: nothing predicts it
    starts = range(0, max(len(ids) - window_length, 0) + stride, stride)
    for begin in tqdm(starts, desc="Perplexity", unit="window", disable=not progress):
        end = min(begin + window_length, len(ids))
        window = ids[begin:end]
        # the first position not scored yet; a window's own first token has no context in it (stride == length)
        first = max(scored_until - begin, 1)
        if first < len(window):
            log_probs = log_softmax(run(window)[first - 1 : -1])
            nll += float(token_nll(log_probs, window[first:]).sum())
            tokens += len(window) - first
        scored_until = end
        if end == len(ids):
            break
    word_perplexity = math.exp(nll / words) if words else float("nan")
    result = PerplexityResult(math.exp(nll / tokens), word_perplexity, tokens, words, window_length, stride)
    logger.info("Perplexity %.4f (word level %.4f) over %d tokens", result.perplexity, result.word_perplexity, tokens)
    return result


def last_word(model: Any, tokenizer: Any, examples: TextSource, *, max_examples: int | None = None) -> LastWordResult:
    """LAMBADA-style scoring: for each example (a line or row), how well the model predicts its last word.

    The context is the example up to its last space; the target is the tokens that the last word (with its leading
    space) adds to the tokenized context. An example counts as correct when the greedy prediction of every target
    token is right.

    Raises:
        InvalidArgumentError: No example with at least two words, or an example longer than the model's context.
    """
    run = logits_function(model, "model")
    rows = [row for row in load_rows(examples) if len(row.split()) >= 2]
    rows = rows[:max_examples] if max_examples is not None else rows
    if not rows:
        raise InvalidArgumentError("`examples` holds no example of at least two words.")
    nll, target_tokens, correct = 0.0, 0, 0
    for row in rows:
        context = row.rstrip()[: row.rstrip().rindex(" ")]
        whole, prefix = tokenize(row.rstrip(), tokenizer), tokenize(context, tokenizer)
        start = len(prefix) if np.array_equal(whole[: len(prefix)], prefix) else len(whole) - 1
        start = max(start, 1)
        _check_context(model, len(whole), "An example")
        log_probs = log_softmax(run(whole)[start - 1 : -1])
        targets = whole[start:]
        nll += float(token_nll(log_probs, targets).sum())
        target_tokens += len(targets)
        correct += bool(np.array_equal(log_probs.argmax(axis=-1), targets))
    return LastWordResult(correct / len(rows), math.exp(nll / target_tokens), len(rows))
