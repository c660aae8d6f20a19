"""Next-token negative log-likelihood and KL divergence from logits, in float64 numpy.

All functions take per-position rows: ``logits`` or log-probabilities of shape ``(positions, vocabulary)``.
"""

from __future__ import annotations

import numpy as np

from optimum_wc.errors import InvalidArgumentError


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log p = x - logsumexp(x)`` over the last axis, computed in float64 (max-shifted, so it never overflows)."""
    values = np.asarray(logits, dtype=np.float64)
    shifted = values - values.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def token_nll(log_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Negative log-likelihood ``-log p_i(t_i)`` of each target token.

    Args:
        log_probs: ``(positions, vocabulary)`` log-probabilities; row ``i`` is the prediction for ``targets[i]``.
        targets: ``(positions,)`` token ids.

    Returns:
        ``(positions,)`` float64 values.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if log_probs.ndim != 2 or targets.shape != log_probs.shape[:1]:
        raise InvalidArgumentError(
            f"`targets` must hold one id per row of `log_probs`; got shapes {targets.shape} and {log_probs.shape}."
        )
    if targets.size and (targets.min() < 0 or targets.max() >= log_probs.shape[1]):
        raise InvalidArgumentError(
            f"`targets` holds token id {int(targets.max())} but the model predicts only {log_probs.shape[1]} tokens; "
            "the tokenizer does not match the model."
        )
    return -np.take_along_axis(log_probs, targets[:, None], axis=1)[:, 0]


def kl_divergence(reference_log_probs: np.ndarray, log_probs: np.ndarray) -> np.ndarray:
    """``KL(P_ref || P) = sum_v P_ref(v) * (log P_ref(v) - log P(v))`` for each position.

    Args:
        reference_log_probs: ``(positions, vocabulary)`` log-probabilities of the reference model.
        log_probs: The same positions under the evaluated model.

    Returns:
        ``(positions,)`` float64 values (0 where the two distributions are equal).
    """
    if reference_log_probs.shape != log_probs.shape:
        raise InvalidArgumentError(
            "The `reference` and the model must predict the same positions over the same vocabulary; got "
            f"log-probabilities of shapes {reference_log_probs.shape} and {log_probs.shape}."
        )
    reference_probs = np.exp(reference_log_probs)
    with np.errstate(invalid="ignore"):  # tokens the reference rules out (log p = -inf) add 0, not NaN
        terms = np.where(reference_probs > 0, reference_probs * (reference_log_probs - log_probs), 0.0)
    return terms.sum(axis=-1)
