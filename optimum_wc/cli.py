"""The ``optimum-wc`` command line, mirroring ``optimum-cli export openvino``.

    optimum-wc export MODEL OUTPUT_DIR --weight-format FORMAT [compression flags] [--overwrite]
    optimum-wc eval MODEL [--reference MODEL] --dataset TEXT [--metric {perplexity,similarity}] ...
    optimum-wc tune MODEL OUTPUT_DIR (--max-perplexity-increase 5% | --min-similarity 0.9 | --max-kl X) ...

``export``'s compression flags are those of :data:`optimum_wc.config.options.OPTIONS`; ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import pathlib
import sys
import time
from typing import Callable

from optimum_wc._utils.atomic import check_output_folder
from optimum_wc.config.options import OPTIONS, Flag
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, MissingExtraError, OptimumWCError

logger = logging.getLogger("optimum_wc.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optimum-wc", description="NNCF-compatible weight compression for OpenVINO.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="Export a Transformers causal LM to OpenVINO IR and compress it.")
    export.add_argument("model", help="Hub model id or local folder (Transformers checkpoint or OpenVINO IR).")
    export.add_argument("output", type=pathlib.Path, help="Folder to write; must be empty unless --overwrite.")
    spqr = export.add_argument_group("SpQR (--weight-format spqr, needs --dataset; --group-size default 16)")
    for option in OPTIONS:
        for flag in option.flags:
            (spqr if flag.key.startswith("spqr.") else export).add_argument(flag.name, **flag.arguments)
    export.add_argument("--overwrite", action="store_true", help="Replace a non-empty OUTPUT_DIR.")
    export.add_argument("--trust-remote-code", action="store_true")

    evaluate = commands.add_parser("eval", help="Perplexity of a model on a text, and its KL to a reference model.")
    evaluate.add_argument("model", help="Folder of an OpenVINO model (ours or optimum-intel's) or a Transformers one.")
    evaluate.add_argument("--reference", help="A model to compare with (e.g. the FP32 one): adds the mean KL.")
    evaluate.add_argument(
        "--dataset", required=True, help="Text: a .txt/.json/.parquet/.csv file with a text column, or wikitext2."
    )
    evaluate.add_argument("--window-length", type=int, default=256, help="Tokens per window (default 256).")
    evaluate.add_argument("--stride", type=int, help="Tokens between windows for perplexity (default: no overlap).")
    evaluate.add_argument("--max-tokens", type=int, help="Score only the first N tokens of the text.")
    evaluate.add_argument("--num-windows", type=int, default=100, help="Windows for the KL (default 100).")
    evaluate.add_argument(
        "--metric",
        choices=("perplexity", "similarity"),
        default="perplexity",
        help="similarity: greedy answers to prompts (the dataset's first lines) vs --reference.",
    )
    evaluate.add_argument("--num-prompts", type=int, default=8, help="Prompts for --metric similarity (default 8).")
    evaluate.add_argument("--max-new-tokens", type=int, default=32, help="Answer length for similarity (default 32).")
    _add_tune(commands)
    return parser


def _add_tune(commands: argparse._SubParsersAction) -> None:
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


def _given(value: object, flag: Flag) -> bool:
    """A flag was passed: its value is not argparse's default (None, or False for a switch); 0 is a value, and so is
    the False of ``--no-...``."""
    return value is not None and not (value is False and flag.arguments.get("action") == "store_true")


def config_from_args(args: argparse.Namespace) -> WeightCompressionConfig | None:
    """The compression config the flags ask for (None for fp32/fp16), as optimum-cli builds it."""
    flags = [flag for option in OPTIONS if not option.run for flag in option.flags if flag.dest != "weight_format"]
    given = [flag for flag in flags if _given(getattr(args, flag.dest), flag)]
    spqr = [flag.name for flag in given if flag.key.startswith("spqr.")]
    if spqr and args.weight_format != "spqr":
        raise InvalidArgumentError(f"{', '.join(spqr)} need --weight-format spqr.")
    if args.weight_format in (None, "fp32", "fp16"):
        if given:
            names = ", ".join(flag.name for flag in given)
            raise InvalidArgumentError(f"{names} need a --weight-format other than fp32 and fp16.")
        return None
    if args.weight_format == "int4" and not given:
        return WeightCompressionConfig(bits=4, sym=False, group_size=128, ratio=1.0)
    values: dict[str, object] = {}
    for flag in sorted(given, key=lambda f: "." in f.key):  # whole values first, then the fields they nest
        value = (flag.to_config or _same)(getattr(args, flag.dest))
        head, *path = flag.key.split(".")
        if not path:
            values[head] = value
            continue
        nested = values.setdefault(head, {})
        for part in path[:-1]:
            nested = nested.setdefault(part, {})
        nested[path[-1]] = value
    values["bits"] = {"int8": 8, "int4": 4}.get(args.weight_format)  # the other formats imply theirs
    values["dtype"] = args.weight_format
    if args.dataset:
        values["tokenizer"] = args.model
    return WeightCompressionConfig(**{k: v for k, v in values.items() if v is not None})


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """The run options of ``compress_weights`` the flags set (how the work is done, not its result)."""
    return {option.name: getattr(args, flag.dest) for option in OPTIONS if option.run for flag in option.flags}


def _same(value: object) -> object:
    return value


def run_export(args: argparse.Namespace) -> pathlib.Path:
    config = config_from_args(args)  # refuse bad flags before any export
    output = args.output
    check_output_folder(output)  # a file, a mount point, a place we may not write: refused before the export
    if output.is_dir() and any(output.iterdir()) and not args.overwrite:
        raise InvalidArgumentError(f"OUTPUT_DIR {output} is not empty; pass --overwrite to replace it.")
    start = time.perf_counter()
    source = pathlib.Path(args.model)
    float_formats = ("fp32", "fp16")
    if (source / "openvino_model.xml").is_file() and (config is None or config.dataset is None):
        # an IR is compressed, not exported, and without calibration text that needs no Hugging Face package
        from optimum_wc.saving.ir_export import export_ir

        export_ir(
            source,
            output,
            config,
            model_name=args.model,
            auto_int8=args.weight_format is None,
            compress_to_fp16=args.weight_format == "fp16",
            convert_tokenizer=_tokenizer_converter(),
            **run_options(args),
        )
    else:
        from optimum_wc.hf.modeling import OVModelForCausalLM

        model = OVModelForCausalLM.from_pretrained(
            args.model,
            export=not (source / "openvino_model.xml").is_file(),
            quantization_config=config,
            load_in_8bit=False if args.weight_format in float_formats else None,
            compile=False,
            trust_remote_code=args.trust_remote_code,
            **run_options(args),
        )
        model.save_pretrained(output, compress_to_fp16=args.weight_format == "fp16")
    size = sum(p.stat().st_size for p in output.glob("openvino_model.*"))
    logger.info("Wrote %s (%.1f MiB of IR) in %.1f s.", output, size / 2**20, time.perf_counter() - start)
    return output


def _tokenizer_converter() -> Callable[[pathlib.Path], None] | None:
    """The ``hf`` extra's OpenVINO tokenizer conversion where it is installed (imported only if used)."""
    try:
        if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("optimum") is None:
            return None
    except ModuleNotFoundError:  # what find_spec raises for a package an import hook keeps out
        return None
    from optimum_wc.hf.exporting import convert_tokenizer

    return convert_tokenizer


def load_for_evaluation(path: str) -> tuple[object, object]:
    """The model in ``path`` (OpenVINO if it holds an IR, else PyTorch) and its tokenizer."""
    from transformers import AutoTokenizer

    folder = pathlib.Path(path)
    if not folder.is_dir():
        raise InvalidArgumentError(f"MODEL {path!r} is not a folder holding a model.")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if (folder / "openvino_model.xml").is_file():
        from optimum_wc.hf.modeling import OVModelForCausalLM

        ov_config = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
        return OVModelForCausalLM.from_pretrained(folder, ov_config=ov_config), tokenizer
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).eval(), tokenizer


def run_eval(args: argparse.Namespace) -> list[dict]:
    """Prints, and returns, a row per model: perplexity, word perplexity, and the KL to the reference."""
    from optimum_wc.evaluation import evaluate, perplexity

    model, tokenizer = load_for_evaluation(args.model)
    reference = None
    if args.reference:
        reference, reference_tokenizer = load_for_evaluation(args.reference)
        if reference_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise InvalidArgumentError(
                f"--reference {args.reference} has a different tokenizer from MODEL {args.model}: their token "
                "distributions cannot be compared."
            )
    if args.metric == "similarity":
        return _run_similarity(args, model, reference, tokenizer)
    rows = []
    for name, candidate in [(args.model, model)] + ([(args.reference, reference)] if reference is not None else []):
        result = perplexity(
            candidate,
            tokenizer,
            args.dataset,
            window_length=args.window_length,
            stride=args.stride,
            max_tokens=args.max_tokens,
            progress=True,
        )
        row = {
            "model": name,
            "perplexity": result.perplexity,
            "word_perplexity": result.word_perplexity,
            "tokens": result.num_tokens,
            "kl": None,
        }
        if reference is not None and candidate is model:
            row["kl"] = evaluate(
                model,
                tokenizer,
                args.dataset,
                reference=reference,
                window_length=args.window_length,
                num_windows=args.num_windows,
                progress=True,
            ).mean_kl
        rows.append(row)
    print("| Model | Perplexity | Word perplexity | KL to reference | Tokens |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        kl = "—" if row["kl"] is None else f"{row['kl']:.4e}"
        print(f"| {row['model']} | {row['perplexity']:.4f} | {row['word_perplexity']:.4f} | {kl} | {row['tokens']} |")
    return rows


def _run_similarity(args: argparse.Namespace, model: object, reference: object, tokenizer: object) -> list[dict]:
    """Prompts: the first words of the dataset's first non-empty lines; scores printed one per prompt."""
    from optimum_wc.evaluation import prompts_from_text, similarity

    if reference is None:
        raise InvalidArgumentError("--metric similarity compares two models: pass --reference MODEL.")
    prompts = prompts_from_text(args.dataset, args.num_prompts)
    result = similarity(reference, model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, progress=True)
    print("| Prompt | Similarity |")
    print("|---|---:|")
    for prompt, score in zip(prompts, result.scores):
        print(f"| {prompt[:60]} | {score:.4f} |")
    print(f"| **mean** | **{result.mean:.4f}** |")
    return [{"prompt": p, "similarity": s} for p, s in zip(prompts, result.scores)]


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


COMMANDS = {"export": run_export, "eval": run_eval, "tune": run_tune}
EXTRAS = {"matplotlib": "tune", "sentence_transformers": "similarity"}  # the `hf` extra brings the other packages


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        try:
            COMMANDS[args.command](args)
        except ModuleNotFoundError as exc:  # a package of an extra the command needs
            top = (exc.name or "").split(".")[0]
            if not top or top == "optimum_wc":
                raise
            raise MissingExtraError(f"optimum-wc {args.command}", EXTRAS.get(top, "hf"), top) from exc
    except BudgetNotMet as exc:
        logger.error("optimum-wc: %s", exc)
        return 1
    except (OptimumWCError, OSError, ValueError) as exc:
        logger.error("optimum-wc: error: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
