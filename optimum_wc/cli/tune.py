"""``optimum-wc tune MODEL OUTPUT_DIR``: the smallest compressed model within an accuracy budget."""

from __future__ import annotations

import argparse
import pathlib

from optimum_wc.errors import OptimumWCError


def add_tune(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser(
        "tune",
        help="The smallest compressed model within an accuracy budget, with a Pareto "
        "table (tuning.md/json/png) next to it.",
    )
    tune.add_argument("model", help="Transformers checkpoint (folder or Hub id) or a folder with an uncompressed IR.")
    tune.add_argument("output", type=pathlib.Path, help="Folder for the chosen model and the report.")
    budget = tune.add_mutually_exclusive_group(required=True)
    budget.add_argument("--max-perplexity-increase", help="e.g. 5%% (or 0.05): perplexity at most 5%% above FP32's.")
    budget.add_argument("--min-similarity", type=float, help="e.g. 0.9: mean similarity of greedy answers to FP32's.")
    budget.add_argument("--max-kl", type=float, help="e.g. 0.005: mean KL to FP32's next-token distribution.")
    tune.add_argument("--dataset", default="wikitext2", help="Evaluation text: a local file or wikitext2 (default).")
    tune.add_argument(
        "--search",
        nargs="+",
        metavar="KEY=V1,V2",
        help="Grid values, e.g. modes=int4_sym,int4_asym group_sizes=128,64,-1 ratios=1,0.8 "
        "all_layers=false,true awq=false,true gptq=false,true (other keys keep their defaults).",
    )
    tune.add_argument("--calibration-dataset", help="Calibration text for awq / scale_estimation / gptq candidates.")
    tune.add_argument("--num-samples", type=int, default=128, help="Calibration samples (default 128).")
    tune.add_argument("--window-length", type=int, default=256, help="Tokens per evaluation window (default 256).")
    tune.add_argument("--num-windows", type=int, default=32, help="Evaluation windows (default 32).")
    tune.add_argument("--num-prompts", type=int, default=8, help="Prompts for --min-similarity (default 8).")
    tune.add_argument("--max-new-tokens", type=int, default=32, help="Answer length for --min-similarity (default 32).")
    tune.add_argument("--exhaustive", action="store_true", help="Evaluate the whole grid, not only up to the choice.")
    tune.add_argument("--statistics-path", help="Keep the activation statistics of data-aware candidates here.")
    tune.add_argument("--overwrite", action="store_true", help="Replace a non-empty OUTPUT_DIR.")
    tune.add_argument("--trust-remote-code", action="store_true")


class BudgetNotMet(OptimumWCError):
    """``tune`` found no configuration within the budget (exit status 1; the report is written)."""


def run_tune(args: argparse.Namespace) -> object:
    from optimum_wc.tuning import parse_search, tune

    result = tune(
        args.model,
        args.output,
        dataset=args.dataset,
        max_perplexity_increase=args.max_perplexity_increase,
        min_similarity=args.min_similarity,
        max_kl=args.max_kl,
        search=parse_search(args.search),
        calibration_dataset=args.calibration_dataset,
        num_samples=args.num_samples,
        window_length=args.window_length,
        num_windows=args.num_windows,
        num_prompts=args.num_prompts,
        max_new_tokens=args.max_new_tokens,
        exhaustive=args.exhaustive,
        statistics_path=args.statistics_path,
        overwrite=args.overwrite,
        trust_remote_code=args.trust_remote_code,
    )
    print((args.output / "tuning.md").read_text())
    if result.chosen is None:
        closest = result.closest
        value = result.budget.kind.describe(closest.scores.get(result.budget.metric))
        raise BudgetNotMet(
            f"no configuration meets the budget ({result.budget.describe()}); the closest is {closest.candidate.name} "
            f"with {result.budget.kind.label} {value} ({closest.size_bytes / 2**20:.2f} MB). Relax the budget or widen "
            f"--search; the table is in {args.output / 'tuning.md'}, no model was saved."
        )
    return result
