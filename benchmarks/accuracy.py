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
import shutil
import statistics
import subprocess
import sys
import time
import traceback

from accuracy_configs import (
    CALIBRATION,
    CALIBRATION_LINES,
    CALIBRATION_PICKLE,
    CONFIGS,
    EVAL_OV_CONFIG,
    FP32_DIR,
    LIBRARIES,
    MODEL,
    MODEL_XML,
    NUM_WINDOWS,
    OURS_ONLY,
    RESULT_TAG,
    ROOT,
    VALID,
    WINDOW_LENGTH,
    WORK,
    WORKER_TIMEOUT_S,
)
from accuracy_report import (
    best_data_aware,
    environment,
    git_commit,
    merge_rows,
    spqr_verdicts,
    verdict,
    write_markdown,
)

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
