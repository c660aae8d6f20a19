"""The accuracy budget ``tune`` must meet: one metric, a limit, and which side of it passes.

Three budgets, one registry entry each:

- ``max_perplexity_increase``: ``perplexity / reference perplexity - 1`` at most the limit (``"5%"`` or ``0.05``).
- ``min_similarity``: mean WhoWhatBench-style similarity to the reference's answers at least the limit.
- ``max_kl``: mean per-token KL divergence from the reference's next-token distribution at most the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import numbers

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError


@dataclass(frozen=True)
class BudgetKind:
    """How one budget reads: the metric it limits, whether lower is better, and how to print it."""

    metric: str
    lower_is_better: bool
    label: str
    percent: bool = False
    upper: float | None = None

    def describe(self, value: float) -> str:
        return f"{value:.2%}" if self.percent else f"{value:.4g}"


BUDGETS = {
    "max_perplexity_increase": BudgetKind("perplexity_increase", True, "perplexity increase", percent=True),
    "min_similarity": BudgetKind("similarity", False, "similarity", upper=1.0),
    "max_kl": BudgetKind("kl", True, "KL to the reference"),
}


def parse_limit(value: object, argument: str, percent: bool) -> float:
    """A limit from a number or, for percentages, a string such as ``"5%"`` (= 0.05)."""
    if isinstance(value, str):
        text = value.strip()
        scale = 1.0
        if text.endswith("%") and percent:
            text, scale = text[:-1], 0.01
        try:
            number = float(text) * scale
        except ValueError:
            allowed = "a number or a percentage such as '5%'" if percent else "a number"
            raise InvalidArgumentError(f"`{argument}` must be {allowed}, got {value!r}.") from None
        if percent and scale == 1.0 and number >= 1:
            raise InvalidArgumentError(
                f"`{argument}`={value!r} is ambiguous: write '{value}%' or a fraction such as 0.05."
            )
        return number
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentTypeError(f"`{argument}` must be a number, got {type(value).__name__} ({value!r}).")
    return float(value)


@dataclass(frozen=True)
class Budget:
    """``name`` (a key of :data:`BUDGETS`) and its limit.

    Raises:
        InvalidArgumentError: An unknown name, or a limit that is not a finite positive number (similarity: in
            (0, 1]).
    """

    name: str
    limit: float

    def __post_init__(self) -> None:
        if self.name not in BUDGETS:
            raise InvalidArgumentError(f"Unknown budget {self.name!r}; use one of {', '.join(BUDGETS)}.")
        kind = BUDGETS[self.name]
        limit = parse_limit(self.limit, self.name, kind.percent)
        if not math.isfinite(limit) or limit <= 0 or (kind.upper is not None and limit > kind.upper):
            bound = f"(0, {kind.upper}]" if kind.upper is not None else "> 0"
            raise InvalidArgumentError(f"`{self.name}` must be a finite number {bound}, got {self.limit!r}.")
        object.__setattr__(self, "limit", limit)

    @property
    def kind(self) -> BudgetKind:
        return BUDGETS[self.name]

    @property
    def metric(self) -> str:
        return self.kind.metric

    def meets(self, value: float) -> bool:
        return value <= self.limit if self.kind.lower_is_better else value >= self.limit

    def shortfall(self, value: float) -> float:
        """How far ``value`` is on the wrong side of the limit (0 when it meets it): ranks the closest failures."""
        return max(0.0, value - self.limit) if self.kind.lower_is_better else max(0.0, self.limit - value)

    def loss(self, value: float) -> float:
        """The metric turned into lower-is-better, for the Pareto front."""
        return value if self.kind.lower_is_better else -value

    def describe(self) -> str:
        relation = "at most" if self.kind.lower_is_better else "at least"
        return f"{self.kind.label} {relation} {self.kind.describe(self.limit)}"

    @classmethod
    def from_arguments(cls, **limits: object) -> Budget:
        """The one budget among keyword arguments that are not None (e.g. ``max_perplexity_increase="5%"``)."""
        given = {name: value for name, value in limits.items() if value is not None}
        if len(given) != 1:
            names = ", ".join(f"`{name}`" for name in BUDGETS)
            found = ", ".join(given) or "none"
            raise InvalidArgumentError(f"Pass exactly one budget among {names}; got {found}.")
        name, value = next(iter(given.items()))
        return cls(name, value)
