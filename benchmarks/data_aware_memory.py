"""Data-aware compression in bounded memory: peak anonymous memory of GPTQ, optimum-wc vs nncf.

The model is the 270M random-weight Llama of ``benchmarks/spqr_runtime.py`` (FP32 IR, 1.0 GiB ``.bin``, read
memory-mapped). Each run is a fresh process: read the IR, ``compress_weights(mode=INT4_SYM, group_size=128,
gptq=True, subset_size=32)`` on 32 random-token items of 128 tokens (the same for both libraries), save the IR.
Memory is the high-water mark of ``RssAnon`` (sampled every 10 ms) above the process's own after reading the IR:
the pages of the memory-mapped input are not anonymous and the system can drop them. Four runs:

- optimum-wc as users get it: from 512 MiB of float weights, the activations GPTQ caches between layers, the
  weights it rewrites and the compressed codes go to temporary files, memory-mapped back;
- optimum-wc with everything in memory (the threshold raised), to show what the files save;
- nncf 3.4.0;
- optimum-wc data-free (no GPTQ, no dataset), for reference: the memory any compression of this model takes (the
  largest weights, the embeddings and the head, are quantized in memory).

Run: ``python benchmarks/data_aware_memory.py [--runs optimum_wc,nncf]``.
Results: ``benchmarks/results/data_aware_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

from spqr_runtime import build_fp32

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work" / "data_aware_memory"
RESULTS = ROOT / "benchmarks" / "results"
TAG = "DATA_AWARE_MEMORY "
GIB = 2**30
RUNS = {
    "optimum_wc": "optimum-wc GPTQ (files from 512 MiB of weights: the default)",
    "optimum_wc_in_memory": "optimum-wc GPTQ, everything in memory",
    "nncf": "nncf 3.4.0 GPTQ",
    "optimum_wc_data_free": "optimum-wc data-free INT4_SYM g128 (no GPTQ), for reference",
}

CHILD = r"""
import json, sys, time
sys.path.insert(0, "__BENCHMARKS__")
from anon_memory import PeakAnon
import numpy as np
import openvino as ov
run, xml, out = sys.argv[1:4]
rng = np.random.default_rng(0)
items = [{"input_ids": ids, "attention_mask": np.ones_like(ids), "position_ids": np.arange(128)[None],
          "beam_idx": np.zeros(1, dtype=np.int32)} for ids in rng.integers(3, 32000, size=(32, 1, 128))]
kwargs = dict(group_size=128, gptq=True, subset_size=32)
if run == "optimum_wc_data_free":
    kwargs, items = dict(group_size=128), None
if run == "nncf":
    import nncf
    compress = lambda model: nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_SYM,
                                                   dataset=nncf.Dataset(items), **kwargs)
else:
    import optimum_wc
    import optimum_wc.compress
    if run == "optimum_wc_in_memory":
        optimum_wc.compress.spill_threshold = lambda: float("inf")
    def compress(model):
        return optimum_wc.compress_weights(model, mode="int4_sym", dataset=items, progress=False, **kwargs)

model = ov.Core().read_model(xml)
memory = PeakAnon(0.01)
start = time.perf_counter()
model = compress(model)
seconds = time.perf_counter() - start
ov.save_model(model, out, compress_to_fp16=False)
memory.stop()
print("__TAG__" + json.dumps({"seconds": seconds, "base_anon": memory.base, "peak_anon": memory.peak}), flush=True)
""".replace("__TAG__", TAG).replace("__BENCHMARKS__", str(pathlib.Path(__file__).resolve().parent))


def measure(run: str, xml: pathlib.Path) -> dict:
    out = WORK / run / "openvino_model.xml"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, run, str(xml), str(out)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 1800 s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith(TAG)]
    if proc.returncode or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
    return json.loads(lines[-1][len(TAG) :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        default=",".join(RUNS),
        help="comma-separated subset of: " + ",".join(RUNS) + " (the others are kept from the last results)",
    )
    args = parser.parse_args()
    fp32 = build_fp32() / "openvino_model.xml"
    ir_bytes = fp32.with_suffix(".bin").stat().st_size
    previous = RESULTS / "data_aware_memory.json"
    results = json.loads(previous.read_text())["runs"] if previous.is_file() else {}
    for run in args.runs.split(","):
        results[run] = measure(run, fp32)
        print(run, results[run], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_aware_memory.json").write_text(json.dumps({"fp32_ir_bytes": ir_bytes, "runs": results}, indent=1))
    lines = [
        "# GPTQ in bounded memory: optimum-wc vs nncf",
        "",
        (
            f"270M random-weight Llama, FP32 IR `.bin` {ir_bytes / GIB:.2f} GiB (memory-mapped). INT4_SYM g128 GPTQ on "
            "32 random-token items of 128 tokens, one fresh process per run, 2 CPUs. Peak anonymous memory: high-water "
            "mark of RssAnon (sampled every 10 ms) above the process's own after reading the IR. Regenerate with "
            "`python benchmarks/data_aware_memory.py`."
        ),
        "",
        "| Run | compress_weights (s) | Peak anonymous memory above the start (GiB) | ... / FP32 IR size |",
        "|---|---:|---:|---:|",
    ]
    for run, label in RUNS.items():
        if run not in results:
            continue
        r = results[run]
        if "error" in r:
            lines.append(f"| {label} | error: {r['error'].splitlines()[0][:120]} | — | — |")
            continue
        extra = r["peak_anon"] - r["base_anon"]
        lines.append(f"| {label} | {r['seconds']:.1f} | {extra / GIB:.2f} | {extra / ir_bytes:.2f} |")
    (RESULTS / "data_aware_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
