"""How far the accuracy benchmark's perplexity can rank models: paired bootstrap over its evaluation windows.

The accuracy benchmark (``benchmarks/accuracy.py``) scores each compressed model on the same 100 windows of 256
tokens of ``pydoc/valid.txt``. The difference between two models' perplexities then has a sampling error of its
own: another 100 windows of the same text would give other differences. This script re-scores the IRs that
``accuracy.py`` saved (``benchmarks/work/accuracy/<config>/<library>``) window by window, checks that the totals
give the perplexities of ``benchmarks/results/accuracy.json``, and resamples the windows (the same resample for
every model, so the comparisons stay paired) to give, for each model, the 95% interval of its perplexity gap to
FP32, and for each SpQR row of at most 4.7 bits per parameter the share of resamples in which its gap is smaller in
magnitude than every other 4-bit row's (the issue's "perplexity closer to FP32 than any other INT4 configuration").

    python benchmarks/perplexity_noise.py [--resamples 10000]

Results: ``benchmarks/results/perplexity_noise.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import accuracy  # the benchmark's model, text, windows and saved IRs

RESULTS = accuracy.ROOT / "benchmarks" / "results"
SEED = 0
MAX_SPQR_BITS = 4.7  # the near-lossless tier
log = logging.getLogger("perplexity_noise")


def saved_rows() -> tuple[list[dict], float]:
    """The accuracy benchmark's rows that have a saved optimum-wc IR and a perplexity, in the benchmark's order,
    and the FP32 perplexity."""
    payload = json.loads((RESULTS / "accuracy.json").read_text())
    rows = []
    for row in payload["configs"]:
        ours = row.get("optimum_wc", {})
        folder = accuracy.WORK / row["config"] / "optimum_wc"
        if "perplexity" in ours and (folder / accuracy.MODEL_XML).is_file():
            rows.append(
                {
                    "config": row["config"],
                    "label": row["label"],
                    "mode": row["arguments"]["mode"],
                    "perplexity": ours["perplexity"],
                    "kl": ours["kl"],
                    "bits": ours.get("bits_per_parameter"),
                    "folder": folder,
                }
            )
    return rows, payload["fp32"]["perplexity"]


def window_scores(folders: dict[str, pathlib.Path], windows: np.ndarray) -> tuple[dict, dict]:
    """Each model's per-window summed next-token negative log-likelihood, and summed KL divergence to FP32
    (float64), as ``evaluate`` computes them; the FP32 log-probabilities are computed once per window."""
    from optimum.intel import OVModelForCausalLM

    from optimum_wc.evaluation.adapters import logits_function
    from optimum_wc.evaluation.metrics import kl_divergence, log_softmax, token_nll

    def load(folder: pathlib.Path):
        return logits_function(OVModelForCausalLM.from_pretrained(folder, ov_config=accuracy.EVAL_OV_CONFIG))

    reference, runs = load(accuracy.FP32_DIR), {name: load(folder) for name, folder in folders.items()}
    nll = {name: np.zeros(len(windows)) for name in ["fp32", *runs]}
    kl = {name: np.zeros(len(windows)) for name in runs}
    for index, ids in enumerate(windows):
        reference_log_probs = log_softmax(reference(ids)[:-1])
        nll["fp32"][index] = token_nll(reference_log_probs, ids[1:]).sum()
        for name, run in runs.items():
            log_probs = log_softmax(run(ids)[:-1])
            nll[name][index] = token_nll(log_probs, ids[1:]).sum()
            kl[name][index] = kl_divergence(reference_log_probs, log_probs).sum()
        if (index + 1) % 50 == 0:
            log.info("%d/%d windows", index + 1, len(windows))
    return nll, kl


def perplexity(nll: np.ndarray, tokens_per_window: int) -> np.ndarray:
    """Perplexity over the windows (last axis)."""
    return np.exp(nll.sum(axis=-1) / (nll.shape[-1] * tokens_per_window))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument(
        "--windows",
        default=str(accuracy.NUM_WINDOWS),
        help="windows from the start of valid.txt, or 'all' (the benchmark's totals are checked "
        "only with its own number)",
    )
    parser.add_argument("--configs", default=None, help="comma-separated subset of the benchmark's rows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from transformers import AutoTokenizer

    from optimum_wc.evaluation.windows import token_windows

    rows, fp32_perplexity = saved_rows()
    if args.configs:
        wanted = args.configs.split(",")
        rows = [row for row in rows if row["config"] in wanted]
    num_windows = None if args.windows == "all" else int(args.windows)
    windows = token_windows(
        accuracy.VALID, AutoTokenizer.from_pretrained(accuracy.MODEL), accuracy.WINDOW_LENGTH, num_windows
    )
    tokens = accuracy.WINDOW_LENGTH - 1
    nll, kl = window_scores({row["config"]: row["folder"] for row in rows}, windows)
    as_benchmark = len(windows) == accuracy.NUM_WINDOWS
    if as_benchmark:  # the saved IRs are the ones the table's rows were measured on
        assert math.isclose(float(perplexity(nll["fp32"], tokens)), fp32_perplexity, rel_tol=1e-9)
        for row in rows:
            measured = float(perplexity(nll[row["config"]], tokens))
            assert math.isclose(measured, row["perplexity"], rel_tol=1e-9), (row["config"], measured, row["perplexity"])
            assert math.isclose(kl[row["config"]].sum() / (len(windows) * tokens), row["kl"], rel_tol=1e-9)

    rng = np.random.default_rng(SEED)
    picks = rng.integers(0, len(windows), size=(args.resamples, len(windows)))  # the same resamples for every model
    base = perplexity(nll["fp32"][picks], tokens)
    gaps = {row["config"]: perplexity(nll[row["config"]][picks], tokens) - base for row in rows}
    four_bit = [r["config"] for r in rows if r["mode"] in ("int4_sym", "int4_asym", "nf4")]
    report = []
    for row in rows:
        name = row["config"]
        gap = float(perplexity(nll[name], tokens) - perplexity(nll["fp32"], tokens))
        low, high = np.percentile(gaps[name], [2.5, 97.5])
        entry = {
            "config": name,
            "label": row["label"],
            "bits": row["bits"],
            "perplexity": float(perplexity(nll[name], tokens)),
            "gap": gap,
            "gap_ci95": [float(low), float(high)],
            "gap_standard_error": float(np.std(gaps[name])),
            "kl": float(kl[name].sum() / (len(windows) * tokens)),
        }
        if row["mode"] == "spqr" and row["bits"] is not None and row["bits"] <= MAX_SPQR_BITS and four_bit:
            others = np.stack([np.abs(gaps[o]) for o in four_bit])
            entry["share_closest"] = float(np.mean(np.abs(gaps[name]) < others.min(axis=0)))
            full = {o: abs(float(perplexity(nll[o], tokens) - perplexity(nll["fp32"], tokens))) for o in four_bit}
            entry["closest"] = abs(gap) < min(full.values())
            entry["closest_other"] = min(full, key=full.get)
        report.append(entry)

    payload = {
        "fp32_perplexity": float(perplexity(nll["fp32"], tokens)),
        "windows": len(windows),
        "window_length": accuracy.WINDOW_LENGTH,
        "as_benchmark": as_benchmark,
        "resamples": args.resamples,
        "seed": SEED,
        "four_bit_rows": four_bit,
        "rows": report,
    }
    name = "perplexity_noise" if as_benchmark else f"perplexity_noise_{len(windows)}_windows"
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    write_markdown(RESULTS / f"{name}.md", payload)
    log.info("Wrote %s", RESULTS / f"{name}.md")
    return 0


def write_markdown(path: pathlib.Path, payload: dict) -> None:
    lines = [
        "# Perplexity gaps to FP32 and their sampling error (paired bootstrap over the evaluation windows)",
        "",
        f"The accuracy benchmark's saved IRs, re-scored window by window on the first {payload['windows']} windows "
        f"of {payload['window_length']} tokens of `pydoc/valid.txt` "
        + (
            "(the benchmark's windows: totals equal to `accuracy.json`'s perplexities and KL); "
            if payload["as_benchmark"]
            else "(more than the benchmark's 100: perplexities and KL differ from `accuracy.json`'s); "
        )
        + f"{payload['resamples']} resamples of the windows with replacement, the same for every model. FP32 "
        f"perplexity {payload['fp32_perplexity']:.4f}. Closest (SpQR rows of at most 4.7 bits per parameter): "
        "whether the "
        "row's gap is smaller in magnitude than every 4-bit row's here (optimum-wc's, which are nncf's bytes where "
        "nncf can run the configuration), and the share of resamples in which it is.",
        "",
        "| Configuration | Bits per parameter | KL to FP32 | Perplexity | Gap to FP32 | 95% interval of the gap "
        "| Standard error | Closest to FP32 of the 4-bit rows |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in payload["rows"]:
        bits = "—" if row["bits"] is None else f"{row['bits']:.2f}"
        low, high = row["gap_ci95"]
        closest = (
            f"{'**yes**' if row['closest'] else 'no'} ({row['share_closest']:.0%} of resamples)"
            if "share_closest" in row
            else ""
        )
        lines.append(
            f"| {row['label']} | {bits} | {row['kl']:.3e} | {row['perplexity']:.4f} | {row['gap']:+.4f} | "
            f"[{low:+.4f}, {high:+.4f}] | {row['gap_standard_error']:.4f} | {closest} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
