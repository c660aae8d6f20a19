"""Wall time and peak memory of ``compress_weights``: nncf 3.4.0 vs optimum-wc on a random-weight Llama.

What it measures: for each configuration, the time of the ``compress_weights(...)`` call alone (the IR is read
before the clock starts and nothing is saved), and the process peak RSS (``ru_maxrss``) just before and just after
the call. Every (library, configuration, repeat) runs in a fresh Python process, and the two libraries alternate
(nncf, ours, nncf, ours, ...) so that machine noise hits both alike. The headline numbers are ratios:
speed-up = nncf median time / optimum-wc median time, memory ratio = optimum-wc / nncf median peak RSS.

The model is a seeded random float32 Llama (~0.5B parameters, every input-channel count divisible by 128) built from
a ``LlamaConfig`` in code and exported once with optimum-intel (f32 weights) into ``benchmarks/work/`` (git-ignored),
in a subprocess so that the benchmark processes start clean.

Run (from the repository root):

    python benchmarks/compress_speed.py --build-only            # build + export the 0.5B IR once
    python benchmarks/compress_speed.py                         # full benchmark, 3 rounds (use a quiet machine)
    python benchmarks/compress_speed.py --size tiny --repeats 1 # smoke run on a ~11M-parameter model
    python benchmarks/compress_speed.py --configs int4_sym_g128 nf4 --model-dir path/to/ir_folder
    python benchmarks/compress_speed.py --size mid --configs awq_se_g128 gptq_g128 --results-name data_aware_speed

Results: ``benchmarks/results/compress_speed.json`` and ``compress_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
RESULTS = ROOT / "benchmarks" / "results"
MODEL_XML = "openvino_model.xml"
RESULT_TAG = "BENCH_RESULT "
GIB = 1024**3

# name -> (mode value, extra keyword arguments); mode values are shared by nncf and optimum_wc enums.
CONFIGS = {
    "int8_asym": ("int8_asym", {}),
    "int4_sym_g128": ("int4_sym", {"group_size": 128}),
    "int4_asym_g64_r0.8": ("int4_asym", {"group_size": 64, "ratio": 0.8}),
    "nf4": ("nf4", {}),
    "fp8_e4m3": ("fp8_e4m3", {}),
    "mxfp8_e4m3": ("mxfp8_e4m3", {}),
    "fp4": ("fp4", {}),
    "mxfp4": ("mxfp4", {}),
    "nvfp4": ("nvfp4", {}),
    "cb4": ("cb4", {}),
    "int3_sym": ("int3_sym", {}),
    "int2_sym": ("int2_sym", {}),
    # data-aware: calibration on CALIBRATION_SAMPLES seeded random token sequences (the same for both libraries)
    "awq_se_g128": ("int4_sym", {"group_size": 128, "awq": True, "scale_estimation": True, "dataset": True}),
    "gptq_g128": ("int4_sym", {"group_size": 128, "gptq": True, "dataset": True}),
}
DATA_FREE = ["int8_asym", "int4_sym_g128", "int4_asym_g64_r0.8", "nf4"]
CALIBRATION_SAMPLES, CALIBRATION_TOKENS = 64, 128

# Llama sizes. 0.5b: 2*32000*1024 (embeddings + lm_head) + 38 * 11.27M = ~494M parameters.
# Input channels (1024, 2816 / 256, 768) are all divisible by 128.
SIZES = {
    "0.5b": dict(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=38,
        num_attention_heads=16,
        num_key_value_heads=4,
    ),
    # for the data-aware configurations: 4 layers of the 0.5b shape (~62M parameters)
    "mid": dict(
        vocab_size=8192,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=4,
        num_attention_heads=16,
        num_key_value_heads=4,
    ),
    "tiny": dict(
        vocab_size=16000,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
}
SEED = 0

log = logging.getLogger("compress_speed")


# ----------------------------------------------------------------------------------------------- model building
def build_and_export(size: str, out_dir: pathlib.Path) -> dict:
    """Builds the seeded random Llama, exports it to ``out_dir`` with f32 weights, checks them, returns facts."""
    import tempfile

    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    import openvino as ov

    start = time.perf_counter()
    config = LlamaConfig(
        **SIZES[size],
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    num_parameters = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory(prefix="llama_", dir=WORK) as tmp:
        model.save_pretrained(tmp)
        del model
        main_export(
            tmp,
            output=out_dir,
            task="text-generation-with-past",
            ov_config=OVConfig(dtype="fp32"),
            library_name="transformers",
            local_files_only=True,
        )
    xml = out_dir / MODEL_XML
    # Verify that the weights stayed f32: no f16/bf16 constants, no Convert right after a weight constant.
    ir = ov.Core().read_model(xml)
    by_type: dict[str, int] = {}
    for op in ir.get_ops():
        if op.get_type_name() == "Constant" and len(op.get_output_shape(0)) >= 2:
            etype = op.get_output_element_type(0).get_type_name()
            by_type[etype] = by_type.get(etype, 0) + math.prod(op.get_output_shape(0))
            consumers = op.output(0).get_target_inputs()
            if etype != "f32" and any(c.get_node().get_type_name() == "Convert" for c in consumers):
                raise RuntimeError(f"Weight {op.get_friendly_name()} is {etype} followed by a Convert")
    if set(by_type) - {"f32", "i64", "i32"}:
        raise RuntimeError(f"Export did not keep f32 weights: elements by type {by_type}")
    facts = {
        "size": size,
        "config": SIZES[size],
        "seed": SEED,
        "num_parameters": num_parameters,
        "weight_elements_by_type": by_type,
        "ir_bin_bytes": xml.with_suffix(".bin").stat().st_size,
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    (out_dir / "build_info.json").write_text(json.dumps(facts, indent=2))
    return facts


def ensure_model(size: str) -> pathlib.Path:
    """Returns the IR folder for ``size``, building it in a subprocess if it is not cached yet."""
    out_dir = WORK / f"llama-{size}"
    if (out_dir / MODEL_XML).is_file() and (out_dir / "build_info.json").is_file():
        log.info("Reusing %s", out_dir)
        return out_dir
    if out_dir.exists():  # an interrupted build
        shutil.rmtree(out_dir)
    WORK.mkdir(parents=True, exist_ok=True)
    log.info("Building and exporting the %s Llama into %s (subprocess) ...", size, out_dir)
    subprocess.run([sys.executable, __file__, "--_build", size, "--model-dir", str(out_dir)], check=True)
    facts = json.loads((out_dir / "build_info.json").read_text())
    log.info(
        "Built %s parameters, IR .bin %.2f GiB, in %.0f s",
        f"{facts['num_parameters']:,}",
        facts["ir_bin_bytes"] / GIB,
        facts["build_seconds"],
    )
    return out_dir


# ------------------------------------------------------------------------------------------- the measured process
def worker(library: str, config_name: str, xml: str) -> None:
    """Runs in a fresh process: read the IR, time compress_weights only, print one tagged JSON line."""
    import resource

    import openvino as ov

    mode, extra = CONFIGS[config_name]
    extra = dict(extra)
    items = calibration_items() if extra.pop("dataset", False) else None
    if items is not None:
        extra["subset_size"] = len(items)
    if library == "nncf":
        import nncf

        kwargs = dict(mode=nncf.CompressWeightsMode(mode), **extra)
        if items is not None:
            kwargs["dataset"] = nncf.Dataset(items)
        compress = nncf.compress_weights
    else:
        import optimum_wc

        kwargs = dict(mode=optimum_wc.CompressWeightsMode(mode), progress=False, **extra)
        if items is not None:
            kwargs["dataset"] = items
        compress = optimum_wc.compress_weights
    model = ov.Core().read_model(xml)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    model = compress(model, **kwargs)
    seconds = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        RESULT_TAG
        + json.dumps(
            {
                "library": library,
                "config": config_name,
                "seconds": seconds,
                "peak_rss_before_kib": rss_before,
                "peak_rss_kib": rss_after,
            }
        ),
        flush=True,
    )


def calibration_items() -> list[dict]:
    """Seeded random token sequences as model inputs (ids below every SIZES vocabulary)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    items = []
    for _ in range(CALIBRATION_SAMPLES):
        ids = rng.integers(3, 8000, size=(1, CALIBRATION_TOKENS))
        items.append(
            {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "position_ids": np.arange(CALIBRATION_TOKENS)[None],
                "beam_idx": np.zeros(1, dtype=np.int32),
            }
        )
    return items


def run_one(library: str, config_name: str, xml: pathlib.Path) -> dict:
    cmd = [sys.executable, __file__, "--_worker", library, config_name, "--model-dir", str(xml.parent)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{library} {config_name} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_TAG) :])


# ------------------------------------------------------------------------------------------------------ reporting
def summarize(runs: list[dict], config_names: list[str]) -> list[dict]:
    rows = []
    for name in config_names:
        med = {}
        for lib in ("nncf", "optimum_wc"):
            mine = [r for r in runs if r["config"] == name and r["library"] == lib]
            med[lib] = {
                "seconds": statistics.median(r["seconds"] for r in mine),
                "peak_rss_gib": statistics.median(r["peak_rss_kib"] for r in mine) / 2**20,
                "compress_rss_increase_gib": statistics.median(
                    r["peak_rss_kib"] - r["peak_rss_before_kib"] for r in mine
                )
                / 2**20,
                "runs": len(mine),
            }
        rows.append(
            {
                "config": name,
                "mode": CONFIGS[name][0],
                "options": CONFIGS[name][1],
                "nncf": med["nncf"],
                "optimum_wc": med["optimum_wc"],
                "speedup": med["nncf"]["seconds"] / med["optimum_wc"]["seconds"],
                "memory_ratio": med["optimum_wc"]["peak_rss_gib"] / med["nncf"]["peak_rss_gib"],
            }
        )
    return rows


def write_results(rows: list[dict], runs: list[dict], machine: dict, model: dict, name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "model": model, "summary": rows, "runs": runs}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# compress_weights: nncf 3.4.0 vs optimum-wc",
        "",
        f"Model: random Llama ({model.get('size', 'given IR')}), {model['num_parameters']:,} parameters, f32 IR .bin "
        f"{model['ir_bin_bytes'] / GIB:.2f} GiB. Machine: {machine['cpu_count']} CPUs, "
        f"{machine['memory_gib']:.0f} GiB RAM. Medians of {machine['repeats']} alternating runs, each in a fresh "
        "process; time = the compress_weights call only; peak RSS = process ru_maxrss after the call.",
        "",
        "| configuration | nncf time (s) | optimum-wc time (s) | speed-up | nncf peak RSS (GiB) "
        "| optimum-wc peak RSS (GiB) | memory ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        n, o = r["nncf"], r["optimum_wc"]
        lines.append(
            f"| {r['config']} | {n['seconds']:.2f} | {o['seconds']:.2f} | **{r['speedup']:.2f}x** "
            f"| {n['peak_rss_gib']:.2f} | {o['peak_rss_gib']:.2f} | **{r['memory_ratio']:.2f}** |"
        )
    increases = ", ".join(
        f"{r['config']} {r['nncf']['compress_rss_increase_gib']:.2f} / "
        f"{r['optimum_wc']['compress_rss_increase_gib']:.2f}"
        for r in rows
    )
    lines += [
        "",
        "Speed-up = nncf / optimum-wc median time (higher is better for optimum-wc); memory ratio = optimum-wc / nncf "
        "median peak RSS (lower is better). Peak RSS includes the imports (nncf imports torch when it is installed) "
        f"and the IR read before the call. Compress-only RSS increase (GiB, median, nncf / optimum-wc): {increases}.",
        "",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines))


def machine_facts(repeats: int) -> dict:
    from importlib.metadata import version

    import psutil

    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / GIB,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "repeats": repeats,
        "versions": {p: version(p) for p in ("openvino", "nncf", "optimum-wc", "numpy")},
        "load_average_at_start": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (nncf, optimum-wc) per configuration")
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=sorted(CONFIGS),
        default=DATA_FREE,
        help="default: the data-free ones; awq_se_g128 and gptq_g128 calibrate on random tokens",
    )
    parser.add_argument("--results-name", default="compress_speed", help="file name (no suffix) in results/")
    parser.add_argument("--model-dir", type=pathlib.Path, help="use this existing IR folder instead of building")
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b", help="model to build (tiny: smoke run)")
    parser.add_argument("--build-only", action="store_true", help="build/export the model and stop")
    parser.add_argument("--_build", help=argparse.SUPPRESS)
    parser.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._worker:
        worker(*args._worker, str(args.model_dir / MODEL_XML))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args._build:
        print(json.dumps(build_and_export(args._build, args.model_dir), indent=2))
        return 0

    model_dir = args.model_dir or ensure_model(args.size)
    xml = model_dir / MODEL_XML
    info_path = model_dir / "build_info.json"
    model = json.loads(info_path.read_text()) if info_path.is_file() else {"num_parameters": 0}
    model.update(path=str(model_dir), ir_bin_bytes=xml.with_suffix(".bin").stat().st_size)
    if args.build_only:
        return 0

    runs = []
    for name in args.configs:
        for repeat in range(args.repeats):
            for library in ("nncf", "optimum_wc"):
                result = run_one(library, name, xml)
                result["repeat"] = repeat
                runs.append(result)
                log.info(
                    "%-20s %-10s round %d: %7.2f s, peak RSS %.2f GiB",
                    name,
                    library,
                    repeat + 1,
                    result["seconds"],
                    result["peak_rss_kib"] / 2**20,
                )
    rows = summarize(runs, args.configs)
    write_results(rows, runs, machine_facts(args.repeats), model, args.results_name)
    for r in rows:
        log.info("%-20s speed-up %.2fx, memory ratio %.2f", r["config"], r["speedup"], r["memory_ratio"])
    log.info("Wrote %s.json and .md", RESULTS / args.results_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
