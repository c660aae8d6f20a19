"""What ``tune`` found, as records, and written out: the Pareto table (markdown, JSON) and its plot (PNG)."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import pathlib
from typing import Any

from optimum_wc.tuning.budget import Budget
from optimum_wc.tuning.scorers import Scores
from optimum_wc.tuning.search import Candidate

MB = 1024**2
REPORT_FILES = ("tuning.md", "tuning.json", "tuning.png")


@dataclass(frozen=True)
class Trial:
    """A candidate, the size of its ``.bin``, and its scores (None when it was not evaluated)."""

    candidate: Candidate
    size_bytes: int
    scores: Scores | None = None
    meets: bool | None = None
    seconds: float | None = None

    @property
    def evaluated(self) -> bool:
        return self.scores is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.candidate.to_dict(),
            "size_bytes": self.size_bytes,
            "evaluated": self.evaluated,
            "scores": None if self.scores is None else self.scores.to_dict(),
            "meets_budget": self.meets,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class TuningResult:
    """Every candidate in the order tried (smallest and cheapest first), the chosen one, and the closest miss.

    Attributes:
        budget: The budget searched for.
        reference: The reference (uncompressed) model's scores.
        trials: All candidates with their sizes; those evaluated carry scores.
        chosen: The smallest candidate that meets the budget (the best-scoring among equal sizes); None if none does.
        closest: When none meets it, the evaluated candidate nearest to the budget; else None.
        output_dir: Where the model and the report were written.
    """

    budget: Budget
    reference: Scores
    trials: tuple[Trial, ...]
    chosen: Trial | None
    closest: Trial | None
    output_dir: pathlib.Path
    model: str = ""
    reference_size_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def evaluated(self) -> list[Trial]:
        return [t for t in self.trials if t.evaluated]

    @property
    def pareto(self) -> list[Trial]:
        return pareto_front(self.evaluated, self.budget)

    def to_dict(self) -> dict[str, Any]:
        pareto = {t.candidate for t in self.pareto}
        return {
            "model": self.model,
            "budget": {"name": self.budget.name, "limit": self.budget.limit, "metric": self.budget.metric},
            "reference": {"size_bytes": self.reference_size_bytes, "scores": self.reference.to_dict()},
            "chosen": None if self.chosen is None else self.chosen.candidate.name,
            "closest": None if self.closest is None else self.closest.candidate.name,
            "trials": [dict(t.to_dict(), pareto=t.candidate in pareto) for t in self.trials],
        }


def pareto_front(trials: list[Trial], budget: Budget) -> list[Trial]:
    """The evaluated trials no other trial beats on both size and the budget's metric, smallest first."""
    points = sorted(trials, key=lambda t: (t.size_bytes, budget.loss(t.scores.get(budget.metric))))
    front: list[Trial] = []
    for trial in points:
        loss = budget.loss(trial.scores.get(budget.metric))
        if not front or loss < budget.loss(front[-1].scores.get(budget.metric)):
            front.append(trial)
    return front


def _format(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric == "perplexity_increase":
        return f"{value:+.2%}"
    if metric == "kl":
        return f"{value:.3e}"
    return f"{value:.4f}"


def to_markdown(result: TuningResult) -> str:
    budget = result.budget
    metrics = [
        m for m in ("perplexity", "perplexity_increase", "kl", "similarity") if result.reference.get(m) is not None
    ]
    titles = {
        "perplexity": "Perplexity",
        "perplexity_increase": "Δ perplexity",
        "kl": "KL to reference",
        "similarity": "Similarity",
    }
    pareto = {t.candidate for t in result.pareto}
    lines = [f"# optimum-wc tune: {result.model}", "", f"Budget: {budget.describe()}."]
    if result.chosen is not None:
        lines.append(
            f"Chosen: **{result.chosen.candidate.name}** ({result.chosen.size_bytes / MB:.2f} MB, "
            f"{_format(budget.metric, result.chosen.scores.get(budget.metric))})."
        )
    elif result.closest is not None:
        lines.append(
            f"No configuration meets the budget; the closest is **{result.closest.candidate.name}** "
            f"({_format(budget.metric, result.closest.scores.get(budget.metric))})."
        )
    lines += list(result.notes)
    lines += [
        "",
        "| Configuration | Size (MB) | " + " | ".join(titles[m] for m in metrics) + " | Meets budget | Pareto |",
        "|---|---:|" + "---:|" * len(metrics) + "---|---|",
    ]
    reference_cells = " | ".join(_format(m, result.reference.get(m)) for m in metrics)
    lines.append(f"| reference (uncompressed) | {result.reference_size_bytes / MB:.2f} | {reference_cells} | — | — |")
    for trial in sorted(result.evaluated, key=lambda t: (t.size_bytes, t.candidate.compute_cost)):
        name = f"**{trial.candidate.name}**" if trial is result.chosen else trial.candidate.name
        cells = " | ".join(_format(m, trial.scores.get(m)) for m in metrics)
        mark = "yes" if trial.meets else "no"
        lines.append(
            f"| {name} | {trial.size_bytes / MB:.2f} | {cells} | {mark} | {'★' if trial.candidate in pareto else ''} |"
        )
    skipped = [t for t in result.trials if not t.evaluated]
    if skipped:
        lines += [
            "",
            f"{len(skipped)} larger or costlier configurations were not evaluated (the search stops at the "
            "smallest one that meets the budget; `exhaustive=True` / `--exhaustive` evaluates them all).",
        ]
    return "\n".join(lines) + "\n"


def plot(result: TuningResult, path: pathlib.Path) -> None:
    """Size against the budget's metric: every evaluated candidate, the Pareto front, the budget and the choice."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    budget = result.budget
    scale = 100.0 if budget.kind.percent else 1.0
    figure = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    evaluated = result.evaluated
    axes.scatter(
        [t.size_bytes / MB for t in evaluated],
        [t.scores.get(budget.metric) * scale for t in evaluated],
        s=16,
        color="0.6",
        label="candidates",
    )
    front = result.pareto
    axes.plot(
        [t.size_bytes / MB for t in front],
        [t.scores.get(budget.metric) * scale for t in front],
        "o-",
        color="tab:blue",
        label="Pareto front",
    )
    axes.axhline(budget.limit * scale, color="tab:red", linestyle="--", label=f"budget ({budget.describe()})")
    if result.chosen is not None:
        axes.scatter(
            [result.chosen.size_bytes / MB],
            [result.chosen.scores.get(budget.metric) * scale],
            marker="*",
            s=220,
            color="tab:red",
            zorder=5,
            label=f"chosen: {result.chosen.candidate.name}",
        )
    axes.set_xlabel("model size (MB)")
    axes.set_ylabel(budget.kind.label + (" (%)" if budget.kind.percent else ""))
    axes.set_title(f"optimum-wc tune: {result.model}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)


def write_report(result: TuningResult, folder: pathlib.Path) -> None:
    """``tuning.md``, ``tuning.json`` and ``tuning.png`` in ``folder``."""
    (folder / "tuning.md").write_text(to_markdown(result))
    (folder / "tuning.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    plot(result, folder / "tuning.png")
