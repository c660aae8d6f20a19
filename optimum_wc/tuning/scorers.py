"""How ``tune`` measures a candidate against the reference: one scorer per budget metric, in a registry.

A scorer measures the reference once when it is built (its perplexity, or its greedy answers), then scores each
candidate with :mod:`optimum_wc.evaluation`, returning :class:`Scores`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from optimum_wc.evaluation import SimilarityScorer, evaluate, prompts_from_text


@dataclass(frozen=True)
class EvaluationOptions:
    """What the scorers read: the text, token windows (perplexity, KL) and prompts (similarity)."""

    dataset: Any
    window_length: int = 256
    num_windows: int = 32
    num_prompts: int = 8
    max_new_tokens: int = 32
    embedding_model: str | None = None


@dataclass(frozen=True)
class Scores:
    """A candidate's measurements; a metric the budget does not need is None."""

    perplexity: float | None = None
    perplexity_increase: float | None = None
    kl: float | None = None
    similarity: float | None = None

    def get(self, metric: str) -> float:
        return getattr(self, metric)

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


class PerplexityScorer:
    """Perplexity (and its increase over the reference's) and mean KL to the reference, on the same windows."""

    def __init__(self, reference: Any, tokenizer: Any, options: EvaluationOptions):
        self.reference, self.tokenizer, self.options = reference, tokenizer, options
        result = evaluate(
            reference, tokenizer, options.dataset, window_length=options.window_length, num_windows=options.num_windows
        )
        self.reference_scores = Scores(perplexity=result.perplexity, perplexity_increase=0.0, kl=0.0)

    def score(self, model: Any) -> Scores:
        options = self.options
        result = evaluate(
            model,
            self.tokenizer,
            options.dataset,
            reference=self.reference,
            window_length=options.window_length,
            num_windows=options.num_windows,
        )
        increase = result.perplexity / self.reference_scores.perplexity - 1.0
        return Scores(perplexity=result.perplexity, perplexity_increase=increase, kl=result.mean_kl)


class GreedySimilarityScorer:
    """Mean similarity of the candidate's greedy answers to the reference's (WhoWhatBench-style)."""

    def __init__(self, reference: Any, tokenizer: Any, options: EvaluationOptions):
        prompts = prompts_from_text(options.dataset, options.num_prompts)
        self.scorer = SimilarityScorer(
            reference,
            tokenizer,
            prompts,
            max_new_tokens=options.max_new_tokens,
            embedding_model=options.embedding_model,
        )
        self.reference_scores = Scores(similarity=1.0)

    def score(self, model: Any) -> Scores:
        return Scores(similarity=self.scorer.score(model).mean)


SCORERS: dict[str, Callable[[Any, Any, EvaluationOptions], Any]] = {
    "perplexity_increase": PerplexityScorer,
    "kl": PerplexityScorer,
    "similarity": GreedySimilarityScorer,
}
