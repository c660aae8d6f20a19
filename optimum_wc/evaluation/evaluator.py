"""Perplexity of a causal LM, and its mean KL divergence to a reference model, over fixed-length token windows."""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from typing import Any

from tqdm.auto import tqdm

from optimum_wc.errors import InvalidArgumentError
from optimum_wc.evaluation.adapters import logits_function
from optimum_wc.evaluation.metrics import kl_divergence, log_softmax, token_nll
from optimum_wc.evaluation.windows import (
    DEFAULT_NUM_WINDOWS,
    DEFAULT_WINDOW_LENGTH,
    TextSource,
    check_window_arguments,
    token_windows,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` measured.

    Attributes:
        perplexity: ``exp`` of the mean next-token negative log-likelihood over all predicted positions.
        mean_kl: Mean over the same positions of ``KL(P_reference || P_model)`` in nats; None without a reference.
        num_windows: Windows evaluated.
        num_tokens: Predicted positions, ``num_windows * (window_length - 1)`` (a window's first token has no
            prediction).
        window_length: Tokens per window.
    """

    perplexity: float
    mean_kl: float | None
    num_windows: int
    num_tokens: int
    window_length: int


def _check_vocabulary(model: Any, argument: str, largest_id: int) -> None:
    """Refuses token ids beyond ``model.config.vocab_size`` (where the model has one) before running it."""
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(vocab_size, int) and largest_id >= vocab_size:
        raise InvalidArgumentError(
            f"The `tokenizer` produced token id {largest_id}, but `{argument}` has a vocabulary of {vocab_size}: "
            "the tokenizer does not match the model."
        )


def evaluate(
    model: Any,
    tokenizer: Any,
    text: TextSource,
    *,
    reference: Any = None,
    window_length: int = DEFAULT_WINDOW_LENGTH,
    num_windows: int | None = DEFAULT_NUM_WINDOWS,
    progress: bool = False,
) -> EvaluationResult:
    """Measures the perplexity of ``model`` on ``text``, and its mean KL divergence to ``reference``.

    The text is tokenized once (no special tokens) and cut into non-overlapping windows of ``window_length`` tokens.
    Each window is an independent sequence: the model (and the reference) run on it alone, one window at a time, so
    memory does not grow with ``num_windows``. Position ``i`` of a window predicts token ``i + 1``; log-softmax, the
    negative log-likelihood and the KL divergence are computed in float64 numpy from the raw logits.

    Args:
        model: An OpenVINO causal LM (optimum-intel's ``OVModelForCausalLM`` or ``optimum_wc.OVModelForCausalLM``;
            it runs with the ``ov_config`` it was loaded with, e.g. ``{"INFERENCE_PRECISION_HINT": "f32"}``), or a
            PyTorch causal LM from ``transformers`` (run under ``torch.no_grad()`` with ``use_cache=False``).
        tokenizer: The model's tokenizer (a Hugging Face tokenizer, or any callable
            ``tokenizer(text, add_special_tokens=False)`` that returns ``{"input_ids": [...]}``).
        text: A path to a text file, a list of strings, or a ``datasets.Dataset`` with a ``text`` column; lines or
            rows are joined with ``"\\n"``.
        reference: A model of either kind, with the same vocabulary, to compare against (e.g. the FP32 model).
        window_length: Tokens per window.
        num_windows: How many windows from the start of the text; None for all complete windows.
        progress: Show a progress bar over the windows.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        InvalidArgumentTypeError: ``model`` or ``reference`` is not a supported model, or an argument has the wrong
            type.
        InvalidArgumentError: The text is too short for one window or for ``num_windows`` windows, or the models
            and the tokenizer do not agree on the vocabulary.

    Example:

    ```python
    >>> from optimum_wc.evaluation import evaluate
    >>> result = evaluate(int4_model, tokenizer, "valid.txt", reference=fp32_model, num_windows=100)
    >>> result.perplexity, result.mean_kl
    ```
    """
    check_window_arguments(window_length, num_windows)
    run_model = logits_function(model, "model")
    run_reference = logits_function(reference, "reference") if reference is not None else None
    windows = token_windows(text, tokenizer, window_length, num_windows)
    for argument, candidate in (("model", model), ("reference", reference)):
        _check_vocabulary(candidate, argument, int(windows.max()))

    nll_sum, kl_sum = 0.0, 0.0
    for index, ids in enumerate(tqdm(windows, desc="Evaluating", unit="window", disable=not progress)):
        log_probs = log_softmax(run_model(ids)[:-1])
        nll_sum += float(token_nll(log_probs, ids[1:]).sum())
        if run_reference is not None:
            kl_sum += float(kl_divergence(log_softmax(run_reference(ids)[:-1]), log_probs).sum())
        logger.debug("Window %d/%d done", index + 1, len(windows))

    num_tokens = len(windows) * (window_length - 1)
    result = EvaluationResult(
        perplexity=math.exp(nll_sum / num_tokens),
        mean_kl=kl_sum / num_tokens if run_reference is not None else None,
        num_windows=len(windows),
        num_tokens=num_tokens,
        window_length=int(window_length),
    )
    logger.info(
        "Perplexity %.4f%s over %d windows of %d tokens",
        result.perplexity,
        "" if result.mean_kl is None else f", mean KL to the reference {result.mean_kl:.6g}",
        result.num_windows,
        result.window_length,
    )
    return result
