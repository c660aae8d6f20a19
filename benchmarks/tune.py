"""``optimum-wc tune`` on the embedded default model against the full grid it searches.

On tiny-llama-pydoc (the model shipped in ``models/``), evaluated on ``pydoc/valid.txt`` with tune's defaults (32
windows of 256 tokens, KL to the FP32 model on the same windows):

1. The grid: ``tune(..., exhaustive=True)`` evaluates every configuration of the default search space (INT4_SYM,
   INT4_ASYM, NF4 x group sizes 128/64/32/per-channel x ratios 1.0/0.8/0.6 x all_layers, and INT8_ASYM).
2. For each budget (the issue's 5% perplexity increase, and a tighter KL budget), a plain ``tune`` run (it stops at
   the first size that meets the budget), timed, and its choice compared with the smallest configuration of the
   grid that meets the budget.

Run (from the repository root): ``python benchmarks/tune.py``. Results: ``benchmarks/results/tune.{json,md}`` and
``benchmarks/results/tune_grid.png`` (the grid's Pareto plot).
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "tiny-llama-pydoc"
VALID = ROOT.parent / "shared" / "data" / "pydoc" / "valid.txt"
WORK = ROOT / "benchmarks" / "work" / "tune"
RESULTS = ROOT / "benchmarks" / "results"
MB = 1024**2
BUDGETS = [("max_perplexity_increase", "5%"), ("max_kl", 3e-3)]

log = logging.getLogger("tune")


def smallest_meeting(trials: list, budget) -> object:
    passing = [t for t in trials if budget.meets(t.scores.get(budget.metric))]
    return min(passing, key=lambda t: (t.size_bytes, budget.loss(t.scores.get(budget.metric)))) if passing else None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from optimum_wc.tuning import Budget, tune

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    start = time.perf_counter()
    grid = tune(MODEL, WORK / "grid", dataset=str(VALID), max_perplexity_increase="5%", exhaustive=True, progress=False)
    grid_seconds = time.perf_counter() - start
    shutil.copy(WORK / "grid" / "tuning.png", RESULTS / "tune_grid.png")
    log.info("Grid: %d configurations in %.0f s", len(grid.trials), grid_seconds)

    rows = []
    for name, limit in BUDGETS:
        budget = Budget(name, limit)
        best = smallest_meeting(list(grid.trials), budget)
        start = time.perf_counter()
        result = tune(MODEL, WORK / name, dataset=str(VALID), progress=False, **{name: limit})
        seconds = time.perf_counter() - start
        chosen = result.chosen
        rows.append(
            {
                "budget": budget.describe(),
                "tune_choice": chosen.candidate.name,
                "tune_size_bytes": chosen.size_bytes,
                "tune_value": chosen.scores.get(budget.metric),
                "tune_seconds": seconds,
                "tune_evaluated": len(result.evaluated),
                "grid_best": best.candidate.name,
                "grid_best_size_bytes": best.size_bytes,
                "grid_best_value": best.scores.get(budget.metric),
                "grid_seconds": grid_seconds,
                "grid_size": len(grid.trials),
                "no_larger": chosen.size_bytes <= best.size_bytes,
            }
        )
        log.info(
            "%s: tune chose %s (%.2f MB) in %.0f s; the grid's smallest meeting it is %s (%.2f MB)",
            budget.describe(),
            chosen.candidate.name,
            chosen.size_bytes / MB,
            seconds,
            best.candidate.name,
            best.size_bytes / MB,
        )

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tune.json").write_text(
        json.dumps({"model": "tiny-llama-pydoc", "rows": rows, "grid": grid.to_dict()}, indent=2) + "\n"
    )
    reference = grid.reference.perplexity
    lines = [
        "# optimum-wc tune: tiny-llama-pydoc",
        "",
        f"Evaluation: 32 windows of 256 tokens of `pydoc/valid.txt` (FP32 perplexity {reference:.4f}), KL to FP32 on "
        f"the same windows; default search space ({len(grid.trials)} configurations). Regenerate with "
        "`python benchmarks/tune.py`. Times are wall-clock on a shared 2-core machine.",
        "",
        "| Budget | tune's choice | Size (MB) | Value | Evaluated | tune time (s) | Smallest in the grid meeting it "
        "| Size (MB) | No larger |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['budget']} | {row['tune_choice']} | {row['tune_size_bytes'] / MB:.2f} | "
            f"{row['tune_value']:.4g} | {row['tune_evaluated']} of {row['grid_size']} | "
            f"{row['tune_seconds']:.0f} | {row['grid_best']} | {row['grid_best_size_bytes'] / MB:.2f} | "
            f"{'yes' if row['no_larger'] else 'NO'} |"
        )
    lines += [
        "",
        f"The full grid (every configuration evaluated, {grid_seconds:.0f} s; Pareto plot in `tune_grid.png`):",
        "",
    ]
    grid_md = (WORK / "grid" / "tuning.md").read_text().splitlines()
    lines += [line for line in grid_md if line.startswith("|")]
    (RESULTS / "tune.md").write_text("\n".join(lines) + "\n")
    log.info("Wrote %s", RESULTS / "tune.md")
    return 0 if all(row["no_larger"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
