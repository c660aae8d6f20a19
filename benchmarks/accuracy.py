"""Accuracy, time and memory of compress_weights: optimum-wc vs nncf 3.4.0 on tiny-llama-pydoc.

What it measures, per configuration and per library (same arguments to both):

- Compression: in a fresh Python process, read the FP32 IR, time the ``compress_weights(...)`` call alone, record
  the process peak RSS (``VmHWM``) after it, save the IR (``compress_to_fp16=False``). Calibration inputs are
  loaded before the clock starts; ours gets them as a list, nncf as an ``nncf.Dataset`` of the same items.
- Accuracy: perplexity and mean KL divergence to the FP32 OpenVINO model (``optimum_wc.evaluation.evaluate``) on
  the first 100 windows of 256 tokens of ``pydoc/valid.txt``, both models compiled with f32 inference, f32 KV cache
  and no dynamic quantization of activations, so that only the weights differ.

Model: ``../shared/models/tiny-llama-pydoc`` exported once to an FP32 IR in ``benchmarks/work/accuracy/``.
Calibration: the non-empty lines among the first 128 of ``pydoc/calibration.txt``, tokenized one per sample and
turned into model inputs by optimum-intel's ``prepare_inputs``, as optimum-intel does for a list of strings.

Run (from the repository root):

    python benchmarks/accuracy.py                                 # every configuration
    python benchmarks/accuracy.py --configs int4_sym_g128,awq --out benchmarks/results
    python benchmarks/accuracy.py --configs spqr_4bit --update    # re-run these; keep the other rows of accuracy.json

Results: ``accuracy.json`` and ``accuracy.md`` in ``--out``. A library that fails on a configuration gets its error
recorded and the configuration marked FAIL; the other configurations still run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pathlib
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "tiny-llama-pydoc"
CALIBRATION = SHARED / "data" / "pydoc" / "calibration.txt"
VALID = SHARED / "data" / "pydoc" / "valid.txt"
WORK = ROOT / "benchmarks" / "work" / "accuracy"
FP32_DIR = WORK / "fp32"
CALIBRATION_PICKLE = WORK / "calibration_inputs.pkl"
MODEL_XML = "openvino_model.xml"
RESULT_TAG = "ACCURACY_RESULT "
LIBRARIES = ("optimum_wc", "nncf")
CALIBRATION_LINES, WINDOW_LENGTH, NUM_WINDOWS = 128, 256, 100
EVAL_OV_CONFIG = {
    "INFERENCE_PRECISION_HINT": "f32",
    "KV_CACHE_PRECISION": "f32",
    "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
}
WORKER_TIMEOUT_S = 900  # nncf takes ~15 s per data-aware run here; a hung worker must not stall the run
MB = 1024**2

DATA_AWARE = {"group_size": 128, "ratio": 1.0, "subset_size": 128}
# name -> (label, compress_weights keyword arguments (mode as a value string), minimum speed-up nncf/ours or None)
CONFIGS: dict[str, tuple[str, dict, float | None]] = {
    "int8_asym": ("INT8_ASYM", {"mode": "int8_asym"}, None),
    "int4_sym_g128": ("INT4_SYM g128", {"mode": "int4_sym", "group_size": 128}, None),
    "int4_asym_g128": ("INT4_ASYM g128", {"mode": "int4_asym", "group_size": 128}, None),
    "int4_sym_pc": ("INT4_SYM per-channel", {"mode": "int4_sym", "group_size": -1}, None),
    "int4_sym_g128_all": (
        "INT4_SYM g128 all_layers",
        {"mode": "int4_sym", "group_size": 128, "all_layers": True},
        None,
    ),
    "int4_asym_g64_r0.8": ("INT4_ASYM g64 ratio 0.8", {"mode": "int4_asym", "group_size": 64, "ratio": 0.8}, None),
    "nf4": ("NF4 (g128 default)", {"mode": "nf4"}, None),
    "fp8_e4m3": ("FP8_E4M3 g128 (backup FP8_E4M3)", {"mode": "fp8_e4m3"}, None),
    "mxfp8_e4m3": ("MXFP8_E4M3 (g32, backup MXFP8_E4M3)", {"mode": "mxfp8_e4m3"}, None),
    "fp4": ("FP4 g128 (backup FP8_E4M3)", {"mode": "fp4"}, None),
    "mxfp4": ("MXFP4 (g32, backup MXFP8_E4M3)", {"mode": "mxfp4"}, None),
    "nvfp4": ("NVFP4 (g16)", {"mode": "nvfp4"}, None),
    "cb4": ("CB4 per-channel", {"mode": "cb4"}, None),
    "adaptive_codebook": (
        "ADAPTIVE_CODEBOOK per-channel (FP8 codebook per layer)",
        {"mode": "adaptive_codebook", "subset_size": 128},
        None,
    ),
    "adaptive_codebook_across": (
        "ADAPTIVE_CODEBOOK per-channel, across blocks",
        {"mode": "adaptive_codebook", "subset_size": 128, "adaptive_across_blocks": True},
        None,
    ),
    "int3_sym_g128": ("INT3_SYM g128", {"mode": "int3_sym"}, None),
    "int2_sym_g128": ("INT2_SYM g128", {"mode": "int2_sym"}, None),
    "awq": ("INT4_SYM g128 AWQ", {"mode": "int4_sym", **DATA_AWARE, "awq": True}, None),
    "awq_se": ("INT4_SYM g128 AWQ+SE", {"mode": "int4_sym", **DATA_AWARE, "awq": True, "scale_estimation": True}, 3.0),
    "gptq": ("INT4_SYM g128 GPTQ", {"mode": "int4_sym", **DATA_AWARE, "gptq": True}, 5.0),
    "lora": ("INT4_SYM g128 LoRA correction", {"mode": "int4_sym", **DATA_AWARE, "lora_correction": True}, None),
    "awq_se_lora": (
        "INT4_SYM g128 AWQ+SE+LoRA correction",
        {"mode": "int4_sym", **DATA_AWARE, "awq": True, "scale_estimation": True, "lora_correction": True},
        None,
    ),
    "int2_sym_lora": (
        "INT2_SYM g128 LoRA correction",
        {"mode": "int2_sym", **DATA_AWARE, "lora_correction": True},
        None,
    ),
    "awq_gptq_se": (
        "INT4_SYM g128 AWQ+GPTQ+SE",
        {"mode": "int4_sym", **DATA_AWARE, "awq": True, "gptq": True, "scale_estimation": True},
        5.0,
    ),
    # optimum-wc's opt-in one-pass GPTQ (every layer's inputs from one pass of the unquantized model, Hessians
    # summed in float64) against nncf's GPTQ: not identical, held to the same targets
    "gptq_one_pass": (
        "INT4_SYM g128 GPTQ (optimum-wc: one_pass)",
        {"mode": "int4_sym", **DATA_AWARE, "gptq": True, "gptq_one_pass": True},
        5.0,
    ),
    "awq_gptq_se_one_pass": (
        "INT4_SYM g128 AWQ+GPTQ+SE (optimum-wc: one_pass)",
        {"mode": "int4_sym", **DATA_AWARE, "awq": True, "gptq": True, "scale_estimation": True, "gptq_one_pass": True},
        5.0,
    ),
    # optimum-wc's own option (nncf has no act order): no side-by-side, checked against the data-free baseline
    "gptq_act_order": (
        "INT4_SYM g128 GPTQ act_order (optimum-wc only)",
        {"mode": "int4_sym", **DATA_AWARE, "gptq": True, "gptq_act_order": True},
        None,
    ),
    # SpQR (optimum-wc only): the authors' recipe (the defaults); groups of 32 with integer zero points (the dense
    # layout OpenVINO runs about as fast as INT4) with ~0.1% outliers (the "fast" rows, 4.4 and 3.5 bits per
    # parameter) and with ~1% (4.6 bits); 3-bit in groups of 16 (3.9 bits). Damping 0.1 suits this model's short
    # calibration lines better than the recipe's 1.0. benchmarks/spqr_runtime.py measures their latency.
    "spqr_recipe": ("SpQR 4-bit g16, authors' recipe (optimum-wc only)", {"mode": "spqr", "subset_size": 128}, None),
    "spqr_4bit": (
        "SpQR 4-bit g32 integer zero points, damping 0.1, threshold 0.1 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "spqr": {"group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.1},
        },
        None,
    ),
    "spqr_4bit_fast": (
        "SpQR 4-bit g32 integer zero points, damping 0.1, threshold 0.25 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "spqr": {"group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.25},
        },
        None,
    ),
    "spqr_3bit_fast": (
        "SpQR 3-bit g32 integer zero points, damping 0.1, threshold 0.5 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "spqr": {"bits": 3, "group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.5},
        },
        None,
    ),
    "spqr_3bit": (
        "SpQR 3-bit g16, damping 0.1, threshold 0.35 (optimum-wc only)",
        {"mode": "spqr", "subset_size": 128, "spqr": {"bits": 3, "percdamp": 0.1, "outlier_threshold": 0.35}},
        None,
    ),
    # What the backup layers alone cost: every 4-bit row keeps the embeddings and lm_head in INT8_ASYM (the
    # default backup mode); here they are the only compressed weights. And the 4.4-bit SpQR row with them left in
    # FP32 (backup_mode "none"), the perplexity of SpQR's own layers.
    "int8_embeddings_head": (
        "INT8_ASYM on the embeddings and lm_head only (the backup layers)",
        {"mode": "int8_asym", "ignored_patterns": [".*layers.*"]},
        None,
    ),
    "spqr_4bit_fast_backup_none": (
        "SpQR 4-bit g32 as the threshold-0.25 row, embeddings and lm_head FP32 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "backup_mode": "none",
            "spqr": {"group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.25},
        },
        None,
    ),
}
OURS_ONLY = {
    "gptq_act_order",
    "spqr_recipe",
    "spqr_4bit",
    "spqr_4bit_fast",
    "spqr_3bit_fast",
    "spqr_3bit",
    "spqr_4bit_fast_backup_none",
}
SPQR_BASELINE = "int4_asym_g128"  # SpQR targets: KL relative to data-free INT4_ASYM g128
SPQR_TARGETS = ((4.0, 1.0), (4.7, 1 / 3))  # (max bits per parameter, KL / baseline KL limit): the first that fits
DATA_FREE_BASELINE = "int4_sym_g128"
BEST_DATA_AWARE_TARGET = 0.35  # best data-aware INT4_SYM g128 KL / data-free INT4_SYM g128 KL
KL_TARGET, PERPLEXITY_TARGET = 1.05, 1.001

log = logging.getLogger("accuracy")


# ------------------------------------------------------------------------------------------------- preparation
def ensure_fp32_ir() -> pathlib.Path:
    """Exports tiny-llama-pydoc to an FP32 IR once (optimum-intel, no weight compression)."""
    if (FP32_DIR / MODEL_XML).is_file():
        return FP32_DIR
    from optimum.intel import OVModelForCausalLM

    log.info("Exporting %s to an FP32 IR in %s ...", MODEL, FP32_DIR)
    tmp = FP32_DIR.with_name("fp32.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = OVModelForCausalLM.from_pretrained(MODEL, export=True, load_in_8bit=False, compile=False)
    model.save_pretrained(tmp)
    shutil.rmtree(FP32_DIR, ignore_errors=True)
    tmp.rename(FP32_DIR)
    return FP32_DIR


def ensure_calibration_inputs() -> pathlib.Path:
    """Tokenizes the calibration lines into the FP32 model's inputs once, and pickles them (numpy arrays only)."""
    if CALIBRATION_PICKLE.is_file():
        return CALIBRATION_PICKLE
    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    from optimum_wc.pipeline.calibration import token_samples

    lines = CALIBRATION.read_text(encoding="utf-8").splitlines()[:CALIBRATION_LINES]
    model = OVModelForCausalLM.from_pretrained(FP32_DIR, compile=False)
    samples = token_samples(lines, AutoTokenizer.from_pretrained(MODEL), CALIBRATION_LINES)
    inputs = [model.prepare_inputs(**sample) for sample in samples]
    CALIBRATION_PICKLE.write_bytes(pickle.dumps(inputs))
    log.info(
        "Calibration: %d samples of %d-%d tokens",
        len(inputs),
        min(i["input_ids"].shape[1] for i in inputs),
        max(i["input_ids"].shape[1] for i in inputs),
    )
    return CALIBRATION_PICKLE


# ------------------------------------------------------------------------------------------- the measured process
def peak_rss_kib() -> int:
    """This process's peak resident set (KiB): ``VmHWM`` on Linux.

    Not ``ru_maxrss``: Linux keeps it across fork + exec, so a worker started by this (large) parent would report
    the parent's RSS as its own peak.
    """
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def worker(library: str, config_name: str, out_dir: pathlib.Path) -> None:
    """Fresh process: read the FP32 IR, time compress_weights only, save the IR, print one tagged JSON line."""
    import openvino as ov

    kwargs = dict(CONFIGS[config_name][1])
    dataset = pickle.loads(CALIBRATION_PICKLE.read_bytes()) if "subset_size" in kwargs else None
    ours = {"act_order": kwargs.pop("gptq_act_order", False), "one_pass": kwargs.pop("gptq_one_pass", False)}
    if library == "optimum_wc" and any(ours.values()):
        from optimum_wc.config.advanced import AdvancedCompressionParameters, AdvancedGPTQParameters

        kwargs["advanced_parameters"] = AdvancedCompressionParameters(gptq_params=AdvancedGPTQParameters(**ours))
    patterns = kwargs.pop("ignored_patterns", None)
    across = kwargs.pop("adaptive_across_blocks", False)
    if across:  # each library's own parameter records
        lib = __import__("nncf" if library == "nncf" else "optimum_wc")
        records = lib.quantization.advanced_parameters if library == "nncf" else lib
        adaptive = records.AdvancedAdaptiveCodebookParameters(across_blocks=True)
        kwargs["advanced_parameters"] = lib.AdvancedCompressionParameters(adaptive_codebook_params=adaptive)
    if library == "nncf":
        import nncf

        kwargs["mode"] = nncf.CompressWeightsMode(kwargs["mode"])
        if "backup_mode" in kwargs:
            kwargs["backup_mode"] = nncf.BackupMode(kwargs["backup_mode"])
        if patterns:
            kwargs["ignored_scope"] = nncf.IgnoredScope(patterns=patterns)
        dataset = nncf.Dataset(dataset) if dataset is not None else None
        compress = nncf.compress_weights
    else:
        import optimum_wc

        kwargs.update(mode=optimum_wc.CompressWeightsMode(kwargs["mode"]), progress=False)
        if patterns:
            kwargs["ignored_scope"] = optimum_wc.IgnoredScope(patterns=patterns)
        compress = optimum_wc.compress_weights
    if dataset is not None:
        kwargs["dataset"] = dataset
    model = ov.Core().read_model(FP32_DIR / MODEL_XML)
    rss_before = peak_rss_kib()
    result = {"library": library, "config": config_name}
    start = time.perf_counter()
    try:
        model = compress(model, **kwargs)
    except Exception as exc:  # recorded, never hidden: the parent marks the configuration FAIL
        result.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-4000:])
    result.update(seconds=time.perf_counter() - start, peak_rss_before_kib=rss_before, peak_rss_kib=peak_rss_kib())
    if "error" not in result and library == "optimum_wc" and kwargs["mode"] == optimum_wc.CompressWeightsMode.SPQR:
        from optimum_wc.pipeline.rt_info import read_layer_records
        from optimum_wc.pipeline.summary import StoredFootprint

        stored = StoredFootprint.from_records(read_layer_records(model))
        result.update(
            bits_per_parameter=stored.bits_per_parameter,
            outlier_fraction=stored.outlier_fraction,
            bits_by_part={k: v * 8 / stored.parameters for k, v in stored.parts.items()},
        )
    if "error" not in result:
        out_dir.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, out_dir / MODEL_XML, compress_to_fp16=False)
        for name in ("config.json", "generation_config.json"):
            shutil.copy(FP32_DIR / name, out_dir / name)
    print(RESULT_TAG + json.dumps(result), flush=True)


def source_digest() -> str:
    """sha256 of optimum_wc's sources: shows which runs saw the same code while the package is being edited."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "optimum_wc").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def run_once(library: str, config_name: str, timeout_s: int = WORKER_TIMEOUT_S) -> dict:
    """One fresh worker process; its result, or ``{"error": ...}`` when it failed in any way."""
    out_dir = WORK / config_name / library
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, __file__, "--_worker", library, config_name]
    facts = {"library": library, "config": config_name, "load_average_before": os.getloadavg()}
    if library == "optimum_wc":
        facts["source_digest"] = source_digest()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {**facts, "error": f"timed out after {timeout_s} s (hung, or far slower than expected)"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with {proc.returncode}"
        return {**facts, "error": f"worker {how}: {proc.stderr[-3000:]}"}
    result = {**facts, **json.loads(lines[-1][len(RESULT_TAG) :])}
    if "error" not in result:
        bin_path = (out_dir / MODEL_XML).with_suffix(".bin")
        result.update(
            ir=str(out_dir.relative_to(ROOT)),
            bin_bytes=bin_path.stat().st_size,
            bin_sha256=hashlib.sha256(bin_path.read_bytes()).hexdigest(),
        )
    return result


def aggregate(runs: list[dict]) -> dict:
    """Median time and peak RSS over the runs; the last run's IR (the one evaluated). Any failed run -> error."""
    failed = [run for run in runs if "error" in run]
    if failed:
        return {"error": failed[0]["error"], "traceback": failed[0].get("traceback"), "runs": runs}
    last = runs[-1]
    return {
        "seconds": statistics.median(run["seconds"] for run in runs),
        "peak_rss_kib": statistics.median(run["peak_rss_kib"] for run in runs),
        "ir": last["ir"],
        "bin_bytes": last["bin_bytes"],
        "bin_sha256": last["bin_sha256"],
        "same_ir_every_run": len({run["bin_sha256"] for run in runs}) == 1,
        **{key: last[key] for key in ("bits_per_parameter", "outlier_fraction", "bits_by_part") if key in last},
        "runs": runs,
    }


# ---------------------------------------------------------------------------------------------------- evaluation
class Evaluator:
    """The FP32 reference, loaded once; evaluates a saved IR folder against it."""

    def __init__(self) -> None:
        from optimum.intel import OVModelForCausalLM
        from transformers import AutoTokenizer

        self._load = lambda folder: OVModelForCausalLM.from_pretrained(folder, ov_config=EVAL_OV_CONFIG)
        self.tokenizer = AutoTokenizer.from_pretrained(MODEL)
        self.reference = self._load(FP32_DIR)

    def __call__(self, folder: pathlib.Path) -> dict:
        from optimum_wc.evaluation import evaluate

        model = self.reference if folder == FP32_DIR else self._load(folder)
        start = time.perf_counter()
        result = evaluate(
            model, self.tokenizer, VALID, reference=self.reference, window_length=WINDOW_LENGTH, num_windows=NUM_WINDOWS
        )
        return {
            "perplexity": result.perplexity,
            "kl": result.mean_kl,
            "num_tokens": result.num_tokens,
            "eval_seconds": time.perf_counter() - start,
        }


# ------------------------------------------------------------------------------------------------------ verdicts
def verdict(name: str, ours: dict, nncf: dict) -> dict:
    """Ratios ours/nncf and the PASS/FAIL of each target; FAIL when either library failed."""
    min_speedup = CONFIGS[name][2]
    if name in OURS_ONLY:
        if "error" in ours:
            return {"result": "FAIL", "reason": "optimum_wc failed", "min_speedup": None}
        return {"result": "n/a", "reason": "optimum-wc only (nncf has no such option)", "min_speedup": None}
    failed = [lib for lib, r in (("optimum_wc", ours), ("nncf", nncf)) if "error" in r]
    if failed:
        return {"result": "FAIL", "reason": f"{', '.join(failed)} failed", "min_speedup": min_speedup}
    checks = {
        "kl": ours["kl"] <= KL_TARGET * nncf["kl"],
        "perplexity": ours["perplexity"] <= PERPLEXITY_TARGET * nncf["perplexity"],
        "memory": ours["peak_rss_kib"] <= nncf["peak_rss_kib"],
    }
    speedup = nncf["seconds"] / ours["seconds"]
    if min_speedup is not None:
        checks["time"] = speedup >= min_speedup
    return {
        "kl_ratio": ours["kl"] / nncf["kl"] if nncf["kl"] else None,
        "perplexity_ratio": ours["perplexity"] / nncf["perplexity"],
        "time_ratio": ours["seconds"] / nncf["seconds"],
        "speedup": speedup,
        "memory_ratio": ours["peak_rss_kib"] / nncf["peak_rss_kib"],
        "identical_bin": ours["bin_sha256"] == nncf["bin_sha256"],
        "min_speedup": min_speedup,
        "checks": checks,
        "result": "PASS" if all(checks.values()) else "FAIL",
    }


def best_data_aware(rows: list[dict]) -> dict | None:
    """The data-aware INT4_SYM g128 row with the lowest KL (ours, and nncf's), as a ratio to the data-free row."""
    by_name = {row["config"]: row for row in rows}
    baseline = by_name.get(DATA_FREE_BASELINE, {}).get("optimum_wc", {})
    candidates = [
        row
        for row in rows
        if "subset_size" in row["arguments"]
        and row["arguments"]["mode"] == "int4_sym"
        and row["arguments"].get("group_size") == 128
    ]
    if "kl" not in baseline or not candidates:
        return None

    def best(library: str) -> dict | None:
        done = [row for row in candidates if "kl" in row[library]]
        return min(done, key=lambda row: row[library]["kl"]) if done else None

    ours, theirs = best("optimum_wc"), best("nncf")
    if ours is None:
        return None
    return {
        "label": ours["label"],
        "kl": ours["optimum_wc"]["kl"],
        "baseline_kl": baseline["kl"],
        "ratio": ours["optimum_wc"]["kl"] / baseline["kl"],
        "nncf_label": theirs["label"] if theirs else "—",
        "nncf_ratio": theirs["nncf"]["kl"] / by_name[DATA_FREE_BASELINE]["nncf"]["kl"] if theirs else float("nan"),
    }


def spqr_verdicts(rows: list[dict], fp32: dict) -> list[dict]:
    """Each SpQR row against data-free INT4_ASYM g128 (ours): the KL target of its bits per parameter, and whether
    its perplexity is closer to FP32 than every other 4-bit row's (both libraries)."""
    by_name = {row["config"]: row for row in rows}
    baseline = by_name.get(SPQR_BASELINE, {}).get("optimum_wc", {})
    four_bit = [
        row[lib]["perplexity"]
        for row in rows
        for lib in LIBRARIES
        if row["arguments"]["mode"] in ("int4_sym", "int4_asym", "nf4") and "perplexity" in row[lib]
    ]
    best_gap = min((abs(p - fp32["perplexity"]) for p in four_bit), default=None)
    verdicts = []
    for row in rows:
        ours = row["optimum_wc"]
        if row["arguments"]["mode"] != "spqr" or "kl" not in ours or "kl" not in baseline:
            continue
        bits, ratio = ours["bits_per_parameter"], ours["kl"] / baseline["kl"]
        limit = next((limit for max_bits, limit in SPQR_TARGETS if bits <= max_bits), None)
        gap = abs(ours["perplexity"] - fp32["perplexity"])
        checks = {}
        if limit is not None:
            checks["kl"] = ratio < limit if limit == 1 else ratio <= limit
        if limit is not None and limit < 1:  # the ~4.6-bit target also asks for the perplexity closest to FP32
            checks["perplexity"] = best_gap is None or gap < best_gap
        verdicts.append(
            {
                "config": row["config"],
                "label": row["label"],
                "bits": bits,
                "outlier_fraction": ours["outlier_fraction"],
                "kl_ratio": ratio,
                "kl_limit": limit,
                "perplexity_gap": gap,
                "best_other_4bit_gap": best_gap,
                "checks": checks,
                "result": "n/a" if not checks else "PASS" if all(checks.values()) else "FAIL",
            }
        )
    return verdicts


# ------------------------------------------------------------------------------------------------------ reporting
def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def modified_files() -> list[str]:
    """Tracked files with uncommitted changes, other than benchmark results (they do not change what is measured)."""
    lines = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return [line[3:] for line in lines if not line[3:].startswith("benchmarks/results/")]


def git_commit() -> str:
    """HEAD, with "+" when tracked files have uncommitted changes."""
    return git("rev-parse", "HEAD")[:10] + ("+" if modified_files() else "")


def merge_rows(previous_path: pathlib.Path, rows: list[dict]) -> list[dict]:
    """This run's rows, and the previous results' rows for the configurations it did not run, in CONFIGS order."""
    previous = json.loads(previous_path.read_text())
    env = previous["environment"]
    commit = env["optimum_wc_commit"][:10] + ("+" if env["working_tree_modified"] else "")
    by_name = {row["config"]: {"measured_at": commit, **row} for row in previous["configs"]}
    by_name.update({row["config"]: row for row in rows})
    return [by_name[name] for name in CONFIGS if name in by_name]


def environment(repeats: int, load_average_at_start: tuple) -> dict:
    from importlib.metadata import version

    return {
        "optimum_wc_commit": git("rev-parse", "HEAD"),
        "working_tree_modified": modified_files(),
        "load_average_at_start": load_average_at_start,
        "load_average_at_end": os.getloadavg(),
        "repeats": repeats,
        "versions": {p: version(p) for p in ("openvino", "nncf", "optimum-intel", "transformers", "torch", "numpy")},
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "eval_ov_config": EVAL_OV_CONFIG,
        "window_length": WINDOW_LENGTH,
        "num_windows": NUM_WINDOWS,
        "calibration_lines": CALIBRATION_LINES,
        "model": str(MODEL.relative_to(SHARED.parent)),
    }


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def write_markdown(path: pathlib.Path, payload: dict) -> None:
    env, fp32, rows = payload["environment"], payload["fp32"], payload["configs"]
    lines = [
        "# Accuracy, time and memory: optimum-wc vs nncf",
        "",
        f"Model `{env['model']}` (FP32 IR). Perplexity and mean KL divergence (nats/token) to the FP32 model on the "
        f"first {env['num_windows']} windows of {env['window_length']} tokens of `pydoc/valid.txt`, OpenVINO CPU "
        "with f32 inference, f32 KV cache, no activation dynamic quantization. Time = the `compress_weights` call "
        "alone; peak memory = process peak RSS (VmHWM) after it; each run in a fresh process (nncf's process also "
        f"imports torch); median of {env['repeats']} run(s). Data-aware rows: dataset of the first "
        f"{env['calibration_lines']} calibration lines, ratio 1, subset_size 128. openvino "
        f"{env['versions']['openvino']}, nncf {env['versions']['nncf']}, {env['cpu_count']} CPUs (load average "
        f"{env['load_average_at_start'][0]:.2f} at start, {env['load_average_at_end'][0]:.2f} at end), optimum-wc "
        f"commit `{env['optimum_wc_commit'][:10]}`"
        + (" with uncommitted changes" if env["working_tree_modified"] else "")
        + ".",
        "",
        "| Model | Optimization | Perplexity | KL to FP32 | Model size (MB) | Time (s) | Peak memory (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
        f"| tiny-llama-pydoc | FP32 | {fp32['perplexity']:.4f} | {fp32['kl']:.2e} | {fp32['bin_bytes'] / MB:.2f} "
        "| — | — |",
    ]
    for row in rows:
        for library in LIBRARIES:
            r = row[library]
            tool = "optimum-wc" if library == "optimum_wc" else "nncf"
            if r.get("error") == "not applicable":
                lines.append(f"| tiny-llama-pydoc | {row['label']} — {tool} | n/a | n/a | — | — | — |")
                continue
            if "error" in r:
                lines.append(f"| tiny-llama-pydoc | {row['label']} — {tool} | error | error | — | — | — |")
                continue
            lines.append(
                f"| tiny-llama-pydoc | {row['label']} — {tool} | {r['perplexity']:.4f} | {r['kl']:.3e} "
                f"| {r['bin_bytes'] / MB:.2f} | {r['seconds']:.2f} | {r['peak_rss_kib'] / 1024:.0f} |"
            )
    lines += [
        "",
        f"Targets: KL ours <= {KL_TARGET} x nncf, perplexity ours <= {PERPLEXITY_TARGET} x nncf, peak memory ours <= "
        "nncf, and speed-up (nncf time / ours) >= 3 for the AWQ+SE row, >= 5 for the GPTQ rows (no time target for "
        "the data-free rows and AWQ alone).",
        "",
        "| Configuration | KL ours/nncf | Perplexity ours/nncf | Time ours/nncf | Speed-up | Memory ours/nncf "
        "| Same .bin | Result |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        v = row["verdict"]
        if "reason" in v:
            lines.append(f"| {row['label']} | — | — | — | — | — | — | **{v['result']}** ({v['reason']}) |")
            continue
        failed = [name for name, ok in v["checks"].items() if not ok]
        speedup = f"{v['speedup']:.2f}x" + (f" (>= {v['min_speedup']:g})" if v["min_speedup"] else "")
        lines.append(
            f"| {row['label']} | {_cell(v['kl_ratio'], '.4f')} | {v['perplexity_ratio']:.5f} "
            f"| {v['time_ratio']:.3f} | {speedup} | {v['memory_ratio']:.2f} | {'yes' if v['identical_bin'] else 'no'} "
            f"| **{v['result']}**{' (' + ', '.join(failed) + ')' if failed else ''} |"
        )
    best = payload.get("best_data_aware")
    if best:
        lines += [
            "",
            f"Best data-aware INT4_SYM g128 configuration: **{best['label']}**, KL {best['kl']:.3e} = "
            f"{best['ratio']:.3f} x the data-free INT4_SYM g128 KL ({best['baseline_kl']:.3e}); target <= "
            f"{BEST_DATA_AWARE_TARGET} (**{'PASS' if best['ratio'] <= BEST_DATA_AWARE_TARGET else 'FAIL'}**). nncf's "
            f"best: {best['nncf_label']}, {best['nncf_ratio']:.3f} x.",
        ]
    if payload.get("spqr"):
        lines += [
            "",
            "SpQR targets (KL relative to optimum-wc's data-free INT4_ASYM g128): at <= 4.7 bits per parameter, KL "
            "<= 1/3 of it and perplexity closer to FP32 than every other 4-bit row; at <= 4.0 bits, KL below it. "
            "Bits per parameter are the bytes the IR stores for the SpQR layers (codes, quantized statistics, "
            "outliers, permutations) over their parameters; embeddings and the last layer are INT8_ASYM (FP32 in the "
            "backup-none row) and not counted.",
            "",
            "| Configuration | Bits per parameter | Outliers | KL / INT4_ASYM g128 | Perplexity gap to FP32 "
            "(best other 4-bit) | Result |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for v in payload["spqr"]:
            limit = (
                "no target (> 4.7 bits)"
                if v["kl_limit"] is None
                else f"{'<=' if v['kl_limit'] < 1 else '<'} {v['kl_limit']:.3g}"
            )
            gap = f"{v['perplexity_gap']:.4f} ({_cell(v['best_other_4bit_gap'], '.4f')})"
            failed = [name for name, ok in v["checks"].items() if not ok]
            lines.append(
                f"| {v['label']} | {v['bits']:.3f} | {v['outlier_fraction']:.3%} | {v['kl_ratio']:.3f} "
                f"({limit}) | {gap} | **{v['result']}**{' (' + ', '.join(failed) + ')' if failed else ''} |"
            )
        floor = next((row["optimum_wc"] for row in rows if row["config"] == "int8_embeddings_head"), {})
        if "perplexity" in floor:
            lines += [
                "",
                (
                    f"The backup layers alone (INT8_ASYM embeddings and lm_head, every other weight FP32): "
                    f"perplexity gap to FP32 {floor['perplexity'] - fp32['perplexity']:+.4f}, KL "
                    f"{floor['kl']:.2e}. Every 4-bit row but the backup-none one keeps them in INT8_ASYM: a gap below "
                    "this one needs its other layers' errors to cancel theirs."
                ),
            ]
    if env.get("updated_configs"):
        stamps: dict[str, list[str]] = {}
        for row in rows:
            stamps.setdefault(row.get("measured_at", "?"), []).append(row["config"])
        lines += [
            "",
            "Rows measured at different commits (`--update`): "
            + "; ".join(f"`{commit}`: {', '.join(names)}" for commit, names in stamps.items())
            + ".",
        ]
    this_run = [row for row in rows if row["config"] in env.get("updated_configs", [row["config"]])]
    digests = {run.get("source_digest") for row in this_run for run in row["optimum_wc"].get("runs", [])} - {None}
    if len(digests) > 1:
        lines += [
            "",
            f"Note: optimum_wc's sources changed while this ran ({len(digests)} versions; `source_digest` of "
            "each run in accuracy.json), so rows may come from different code.",
        ]
    errors = [
        (row["label"], lib, row[lib]["error"])
        for row in rows
        for lib in LIBRARIES
        if "error" in row[lib] and row[lib]["error"] != "not applicable"
    ]
    if errors:
        lines += ["", "Errors:", ""]
        lines += [f"- {label}, {lib}: `{error.splitlines()[0][:300]}`" for label, lib, error in errors]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of: {', '.join(CONFIGS)}")
    parser.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated subset of: optimum_wc,nncf")
    parser.add_argument("--repeats", type=int, default=1, help="compressions per library and configuration (median)")
    parser.add_argument("--timeout", type=int, default=WORKER_TIMEOUT_S, help="seconds per compression process")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the rows of --out/accuracy.json that this run does not re-run (each row records "
        "the commit it was measured at)",
    )
    parser.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the optimum_wc of this checkout, installed or not
    if args._worker:
        library, config_name = args._worker
        worker(library, config_name, WORK / config_name / library)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    names = [n for n in args.configs.split(",") if n]
    libraries = [lib for lib in args.libraries.split(",") if lib]
    unknown = sorted(set(names) - set(CONFIGS)) + sorted(set(libraries) - set(LIBRARIES))
    if unknown:
        parser.error(f"unknown configuration or library {unknown}; configurations: {', '.join(CONFIGS)}")

    load_at_start = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    ensure_fp32_ir()
    ensure_calibration_inputs()
    evaluator = Evaluator()
    fp32 = evaluator(FP32_DIR)
    fp32["bin_bytes"] = (FP32_DIR / MODEL_XML).with_suffix(".bin").stat().st_size
    log.info("FP32: perplexity %.4f (%.0f s to evaluate)", fp32["perplexity"], fp32["eval_seconds"])

    rows = []
    measured_at = git_commit()
    for index, name in enumerate(names, 1):
        row = {"config": name, "label": CONFIGS[name][0], "arguments": CONFIGS[name][1]}
        runs: dict[str, list[dict]] = {library: [] for library in libraries}
        for repeat in range(args.repeats):
            for library in libraries:  # alternating, so that machine noise hits both alike
                if name in OURS_ONLY and library != "optimum_wc":
                    continue
                log.info(
                    "[%d/%d] %s: compressing with %s (run %d/%d) ...",
                    index,
                    len(names),
                    name,
                    library,
                    repeat + 1,
                    args.repeats,
                )
                runs[library].append(run_once(library, name, args.timeout))
                if "error" in runs[library][-1]:
                    log.warning(
                        "[%d/%d] %s: %s FAILED: %s",
                        index,
                        len(names),
                        name,
                        library,
                        runs[library][-1]["error"].splitlines()[0][:300],
                    )
        for library in LIBRARIES:
            if (name in OURS_ONLY and library != "optimum_wc") or not runs.get(library):
                row[library] = {"error": "not applicable" if name in OURS_ONLY else "not run (--libraries)"}
                continue
            result = aggregate(runs[library])
            if "error" not in result:
                result.update(evaluator(ROOT / result["ir"]))
                log.info(
                    "[%d/%d] %s: %-10s %6.2f s, peak RSS %5.0f MB, perplexity %.4f, KL %.3e",
                    index,
                    len(names),
                    name,
                    library,
                    result["seconds"],
                    result["peak_rss_kib"] / 1024,
                    result["perplexity"],
                    result["kl"],
                )
            row[library] = result
        row["verdict"] = verdict(name, row["optimum_wc"], row["nncf"])
        row["measured_at"] = measured_at
        log.info("[%d/%d] %s: %s", index, len(names), name, row["verdict"]["result"])
        rows.append(row)

    env = environment(args.repeats, load_at_start)
    if args.update:
        rows = merge_rows(args.out / "accuracy.json", rows)
        env["updated_configs"] = names
    payload = {
        "environment": env,
        "fp32": fp32,
        "configs": rows,
        "best_data_aware": best_data_aware(rows),
        "spqr": spqr_verdicts(rows, fp32),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps(payload, indent=2) + "\n")
    write_markdown(args.out / "accuracy.md", payload)
    log.info("Wrote %s and %s", args.out / "accuracy.json", args.out / "accuracy.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
