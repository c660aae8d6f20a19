"""nncf's other formats at run time on the OpenVINO CPU plugin: next-token latency and memory against INT4_ASYM g128.

The model is spqr_runtime.py's random-weight Llama (about 270M parameters, FP32 IR built once and shared), compressed
data-free by optimum-wc in each mode with its defaults (INT4_ASYM g128 is the reference). Each model is measured in
a fresh process with spqr_runtime.py's child (compile on CPU with default settings, a 512- and a 32-token prefill,
then 128 single-token steps; latency = median step), the models alternating for ``--repeats`` rounds. Ratios are to
INT4_ASYM g128 in the same run; absolute figures depend on this shared machine's load.

Run: ``python benchmarks/format_runtime.py [--repeats 3]``. Results: ``benchmarks/results/format_runtime.{json,md}``.
``--data-aware`` measures instead the configurations that need calibration data (ADAPTIVE_CODEBOOK, INT4 with LoRA
correction; calibrated on 16 random-token sequences of 128 tokens) against the same reference, into
``format_runtime_data_aware.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import spqr_runtime

WORK = spqr_runtime.WORK.parent / "format_runtime"
RESULTS = spqr_runtime.RESULTS
MB = 2**20
MODELS = {
    "int4_asym_g128": ("INT4_ASYM g128 (reference)", {"mode": "int4_asym", "group_size": 128}),
    "int8_asym": ("INT8_ASYM", {"mode": "int8_asym"}),
    "nf4": ("NF4 g128", {"mode": "nf4"}),
    "fp8_e4m3": ("FP8_E4M3 g128", {"mode": "fp8_e4m3"}),
    "mxfp8_e4m3": ("MXFP8_E4M3 g32", {"mode": "mxfp8_e4m3"}),
    "fp4": ("FP4 g128", {"mode": "fp4"}),
    "mxfp4": ("MXFP4 g32", {"mode": "mxfp4"}),
    "nvfp4": ("NVFP4 g16", {"mode": "nvfp4"}),
    "cb4": ("CB4 per-channel", {"mode": "cb4"}),
    "int3_sym": ("INT3_SYM g128", {"mode": "int3_sym"}),
    "int2_sym": ("INT2_SYM g128", {"mode": "int2_sym"}),
}
REFERENCE = "int4_asym_g128"
DATA_AWARE_MODELS = {
    REFERENCE: MODELS[REFERENCE],
    "adaptive_codebook": ("ADAPTIVE_CODEBOOK per-channel", {"mode": "adaptive_codebook"}),
    "int4_asym_lora": ("INT4_ASYM g128 + LoRA correction", {"mode": "int4_asym", "lora_correction": True}),
}


def calibration_items() -> list[dict]:
    """Seeded random token sequences (spqr_runtime.py's) for the data-aware configurations."""
    import numpy as np

    rng = np.random.default_rng(1)
    return [
        {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "position_ids": np.arange(128)[None],
            "beam_idx": np.zeros(1, dtype=np.int32),
        }
        for ids in rng.integers(3, 32000, size=(16, 1, 128))
    ]


def compress_all(fp32, models: dict) -> dict:
    import openvino as ov
    import optimum_wc

    facts = {}
    for name, (_, kwargs) in models.items():
        xml = WORK / name / "openvino_model.xml"
        if not xml.is_file():
            model = ov.Core().read_model(fp32 / "openvino_model.xml")
            data = {"dataset": calibration_items()} if name in DATA_AWARE_MODELS and name != REFERENCE else {}
            optimum_wc.compress_weights(model, progress=False, **kwargs, **data)
            xml.parent.mkdir(parents=True, exist_ok=True)
            ov.save_model(model, xml, compress_to_fp16=False)
        facts[name] = {"bin_bytes": xml.with_suffix(".bin").stat().st_size}
    return facts


def measure(name: str) -> dict:
    code = spqr_runtime.CHILD % {
        "prefill": spqr_runtime.PREFILL,
        "steps": spqr_runtime.STEPS,
        "long_prefill": spqr_runtime.LONG_PREFILL,
        "tag": spqr_runtime.TAG,
    }
    xml = WORK / name / "openvino_model.xml"
    proc = subprocess.run([sys.executable, "-c", code, str(xml)], capture_output=True, text=True, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(spqr_runtime.TAG))
    return json.loads(line[len(spqr_runtime.TAG) :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-aware", action="store_true", help="the calibrated configurations (see above)")
    args = parser.parse_args()
    models = DATA_AWARE_MODELS if args.data_aware else MODELS
    result_name = "format_runtime_data_aware" if args.data_aware else "format_runtime"
    sys.path.insert(0, str(spqr_runtime.ROOT))
    WORK.mkdir(parents=True, exist_ok=True)
    facts = compress_all(spqr_runtime.build_fp32(), models)
    runs: dict[str, list[dict]] = {name: [] for name in models}
    start = time.perf_counter()
    for _ in range(args.repeats):
        for name in models:  # alternating, so that machine noise hits all alike
            runs[name].append(measure(name))
    keys = ("step_seconds", "prefill_seconds", "long_prefill_seconds", "peak_rss", "rss_anon")
    medians = {name: {key: statistics.median(r[key] for r in runs[name]) for key in keys} for name in models}
    base = medians[REFERENCE]
    import openvino

    payload = {
        "environment": {
            "openvino": openvino.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "repeats": args.repeats,
            "seconds": time.perf_counter() - start,
        },
        "rows": [
            {"model": name, "label": label, "arguments": kwargs, **facts[name], **medians[name], "runs": runs[name]}
            for name, (label, kwargs) in models.items()
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{result_name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    prefill, long_prefill = spqr_runtime.PREFILL, spqr_runtime.LONG_PREFILL
    lines = [
        "# nncf's formats at run time: next-token latency and memory vs INT4_ASYM g128",
        "",
        f"Random-weight Llama, 270M parameters, OpenVINO {openvino.__version__} CPU plugin with default settings, "
        f"{os.cpu_count()} CPUs; each model compressed by optimum-wc with its mode's defaults"
        f"{' (calibrated on random tokens)' if args.data_aware else ', data-free'}. Latency: "
        f"median of {spqr_runtime.STEPS} single-token steps after a {prefill}-token prefill, median over "
        f"{args.repeats} fresh processes (models alternating). Ratios are to INT4_ASYM g128 in the same run.",
        "",
        f"| Model | .bin (MB) | Next-token latency / INT4 | Prefill {prefill} / INT4 | Prefill {long_prefill} / INT4 "
        "| Peak RSS / INT4 | Anonymous RSS / INT4 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (label, _) in models.items():
        row = medians[name]
        lines.append(
            f"| {label} | {facts[name]['bin_bytes'] / MB:.1f} | {row['step_seconds'] / base['step_seconds']:.2f} | "
            f"{row['prefill_seconds'] / base['prefill_seconds']:.2f} | "
            f"{row['long_prefill_seconds'] / base['long_prefill_seconds']:.2f} | "
            f"{row['peak_rss'] / base['peak_rss']:.2f} | {row['rss_anon'] / base['rss_anon']:.2f} |"
        )
    lines += ["", f"INT4_ASYM g128 itself: {base['step_seconds'] * 1e3:.1f} ms per token."]
    (RESULTS / f"{result_name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
