"""``optimum-wc eval MODEL``: perplexity, KL to a reference, or the similarity of greedy answers."""

from __future__ import annotations

import argparse
import pathlib

from optimum_wc.errors import InvalidArgumentError


def add_eval(commands: argparse._SubParsersAction) -> None:
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
