"""The "compression metrics" table NNCF users know, regenerated for the embedded default model, plus a KL column.

For tiny-llama-pydoc (the model shipped in ``models/``): FP32, INT8 and 4-bit configurations compressed with
``optimum_wc.compress_weights`` (data-free; these give the same bytes as nncf, see benchmarks/results/parity.md),
each evaluated with ``optimum_wc.evaluation`` on ``pydoc/valid.txt``:

- Perplexity: token level, the whole text in non-overlapping windows of 256 tokens (``evaluation.perplexity``).
- KL to FP32: mean per-token KL divergence from the FP32 model's next-token distribution on the first 100 of those
  windows (``evaluation.evaluate``).
- Model size: the IR's ``.bin`` in MB.

Run (from the repository root): ``python benchmarks/compression_metrics.py``. Results:
``benchmarks/results/compression_metrics.{json,md}``.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accuracy import EVAL_OV_CONFIG, FP32_DIR, MODEL, MODEL_XML, VALID, WORK, ensure_fp32_ir  # noqa: E402

OUT = WORK.parent / "compression_metrics"
RESULTS = ROOT / "benchmarks" / "results"
WINDOW_LENGTH, KL_WINDOWS = 256, 100
MB = 1024**2

# NNCF's naming: MODE,group_size=N,ratio=R
CONFIGS = [
    ("INT8_ASYM", {"mode": "int8_asym"}),
    ("INT4_SYM,group_size=128,ratio=1.0", {"mode": "int4_sym", "group_size": 128, "ratio": 1.0}),
    ("INT4_ASYM,group_size=128,ratio=1.0", {"mode": "int4_asym", "group_size": 128, "ratio": 1.0}),
    ("INT4_ASYM,group_size=64,ratio=1.0", {"mode": "int4_asym", "group_size": 64, "ratio": 1.0}),
    ("INT4_ASYM,group_size=128,ratio=0.8", {"mode": "int4_asym", "group_size": 128, "ratio": 0.8}),
    ("INT4_ASYM,group_size=64,ratio=0.8", {"mode": "int4_asym", "group_size": 64, "ratio": 0.8}),
    ("INT4_SYM,group_size=64,ratio=0.8", {"mode": "int4_sym", "group_size": 64, "ratio": 0.8}),
    ("NF4,group_size=128,ratio=1.0", {"mode": "nf4", "group_size": 128, "ratio": 1.0}),
    ("NF4,group_size=64,ratio=0.8", {"mode": "nf4", "group_size": 64, "ratio": 0.8}),
]

log = logging.getLogger("compression_metrics")


def compress(name: str, kwargs: dict) -> pathlib.Path:
    import openvino as ov
    import optimum_wc

    folder = OUT / name.replace(",", "_").replace("=", "")
    model = ov.Core().read_model(FP32_DIR / MODEL_XML)
    options = dict(kwargs, mode=optimum_wc.CompressWeightsMode(kwargs["mode"]))
    model = optimum_wc.compress_weights(model, progress=False, **options)
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, folder / MODEL_XML, compress_to_fp16=False)
    for extra in ("config.json", "generation_config.json"):
        shutil.copy(FP32_DIR / extra, folder / extra)
    return folder


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    from optimum_wc.evaluation import evaluate, perplexity

    ensure_fp32_ir()
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    reference = OVModelForCausalLM.from_pretrained(FP32_DIR, ov_config=EVAL_OV_CONFIG)
    rows = []
    for name, folder in [("FP32", FP32_DIR)] + [(name, compress(name, kwargs)) for name, kwargs in CONFIGS]:
        model = (
            reference if folder == FP32_DIR else OVModelForCausalLM.from_pretrained(folder, ov_config=EVAL_OV_CONFIG)
        )
        ppl = perplexity(model, tokenizer, VALID, window_length=WINDOW_LENGTH)
        kl = evaluate(model, tokenizer, VALID, reference=reference, window_length=WINDOW_LENGTH, num_windows=KL_WINDOWS)
        size = (folder / MODEL_XML).with_suffix(".bin").stat().st_size
        rows.append(
            {
                "optimization": name,
                "perplexity": ppl.perplexity,
                "word_perplexity": ppl.word_perplexity,
                "tokens": ppl.num_tokens,
                "kl": kl.mean_kl,
                "size_bytes": size,
            }
        )
        log.info("%-36s perplexity %.4f, KL %.3e, %.2f MB", name, ppl.perplexity, kl.mean_kl, size / MB)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compression_metrics.json").write_text(
        json.dumps(
            {"model": "tiny-llama-pydoc", "window_length": WINDOW_LENGTH, "kl_windows": KL_WINDOWS, "rows": rows},
            indent=2,
        )
        + "\n"
    )
    lines = [
        "# Compression metrics: tiny-llama-pydoc",
        "",
        f"Token perplexity over the whole of `pydoc/valid.txt` ({rows[0]['tokens']:,} scored tokens, windows of "
        f"{WINDOW_LENGTH}), KL to FP32 on its first {KL_WINDOWS} windows; data-free `optimum_wc.compress_weights` "
        "(the same bytes as nncf's `compress_weights`). Regenerate with `python benchmarks/compression_metrics.py`.",
        "",
        "| Model | Optimization | Perplexity | KL to FP32 | Model size (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| tiny-llama-pydoc | {r['optimization']} | {r['perplexity']:.4f} | {r['kl']:.3e} "
        f"| {r['size_bytes'] / MB:.2f} |"
        for r in rows
    ]
    (RESULTS / "compression_metrics.md").write_text("\n".join(lines) + "\n")
    log.info("Wrote %s", RESULTS / "compression_metrics.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
