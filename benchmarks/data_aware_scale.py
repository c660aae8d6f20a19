"""Data-aware compression at 270M parameters: nncf 3.4.0 vs optimum-wc, time and identity, and the floor.

The model is the 270M random-weight Llama of ``benchmarks/spqr_runtime.py`` (FP32 IR, 16 layers, hidden 1024, MLP
2816). Each configuration compresses it to INT4_SYM g128 on 32 random-token items of 128 tokens (the same for both
libraries): GPTQ, GPTQ with scale estimation, AWQ with scale estimation. Every run is a fresh process that reads the
IR, times ``compress_weights`` alone, saves the result and hashes its ``.bin`` (not timed); nncf and optimum-wc
alternate run after run, and each pair's ratio is kept.

The floor is what nncf's algorithm computes that no reimplementation giving its bytes can skip, timed in a fresh
process with this machine's BLAS on the model's shapes:

- the linear algebra of GPTQ, in nncf's order and calls (OpenBLAS's sums depend on the call, the shapes and the
  thread count, so these are the calls that give its bytes): per layer and distinct MatMul input (q/k/v, o,
  gate/up: 1024 channels; down: 2816), one rank-128 Hessian update per item, then Cholesky, inverse of the factor,
  the product of the inverses and Cholesky again;
- one forward pass over the items up to the last layer's MLP (what the statistics or the layer-by-layer inputs
  need at least once), in float32.

nncf's time divided by the floor is the largest speed-up that identical bytes allow here, even were all else free.

Run: ``python benchmarks/data_aware_scale.py [--configs gptq gptq_se awq_se] [--repeats 1] [--update]``.
Results: ``benchmarks/results/data_aware_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import write_results  # noqa: E402
from spqr_runtime import build_fp32  # noqa: E402

WORK = ROOT / "benchmarks" / "work" / "data_aware_scale"
RESULTS = ROOT / "benchmarks" / "results"
TAG = "DATA_AWARE_SCALE "
CONFIGS = {  # name -> keyword arguments of INT4_SYM g128 shared by both libraries
    "gptq": {"gptq": True},
    "gptq_se": {"gptq": True, "scale_estimation": True},
    "awq_se": {"awq": True, "scale_estimation": True},
}
ITEMS = """
import numpy as np
rng = np.random.default_rng(0)
items = [{"input_ids": ids, "attention_mask": np.ones_like(ids), "position_ids": np.arange(128)[None],
          "beam_idx": np.zeros(1, dtype=np.int32)} for ids in rng.integers(3, 32000, size=(32, 1, 128))]
"""
CHILD = (
    r"""
import hashlib, json, sys, time
import openvino as ov
"""
    + ITEMS
    + r"""
library, xml, out, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
extra.update(group_size=128, subset_size=32)
if library == "optimum_wc":
    import optimum_wc
    compress = lambda m: optimum_wc.compress_weights(m, mode="int4_sym", dataset=items, progress=False, **extra)
else:
    import nncf
    compress = lambda m: nncf.compress_weights(m, mode=nncf.CompressWeightsMode.INT4_SYM,
                                               dataset=nncf.Dataset(items), **extra)
model = ov.Core().read_model(xml)
start = time.perf_counter()
model = compress(model)
seconds = time.perf_counter() - start
ov.save_model(model, out, compress_to_fp16=False)
digest = hashlib.sha256()
with open(out[:-4] + ".bin", "rb") as f:
    for chunk in iter(lambda: f.read(1 << 24), b""):
        digest.update(chunk)
print("__TAG__" + json.dumps({"seconds": seconds, "sha256": digest.hexdigest()}), flush=True)
"""
)
FLOOR = (
    r"""
import json, math, sys, time
import numpy as np
import openvino as ov
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.statistics import activation_point, collect_statistics
from optimum_wc.openvino.weights import find_weight_targets
"""
    + ITEMS
    + r"""
xml, layers = sys.argv[1], int(sys.argv[2])
inputs = {c: np.random.default_rng(1).standard_normal((32, 128, c), np.float32) for c in (1024, 2816)}
def linear_algebra(columns):
    h = np.zeros((columns, columns), np.float32)
    for n in range(1, 33):  # nncf's running average, one item at a time
        h *= (n - 1) / n
        scaled = inputs[columns][n - 1].T * math.sqrt(2 / n)
        h += scaled @ scaled.T
    h[np.diag_indices(columns)] += 0.01 * np.mean(np.diag(h))
    inverse = np.linalg.inv(np.linalg.cholesky(h))
    np.linalg.cholesky(inverse.T.copy() @ inverse)
start = time.perf_counter()
for _ in range(layers):
    for columns in (1024, 1024, 1024, 2816):
        linear_algebra(columns)
algebra = time.perf_counter() - start
model = ov.Core().read_model(xml)
graph = ModelGraph(model)
last = [t for t in find_weight_targets(graph) if t.kind == "matmul" and "down_proj" in t.op_name][-1]
start = time.perf_counter()
collect_statistics(model, [activation_point(graph, last)], items, lambda value: None)
forward = time.perf_counter() - start
print("__TAG__" + json.dumps({"linear_algebra": algebra, "forward": forward}), flush=True)
"""
)


def child(code: str, *args: str) -> dict:
    process = subprocess.run(
        [sys.executable, "-c", code.replace("__TAG__", TAG), *args], capture_output=True, text=True, timeout=3600
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith(TAG)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"{args} failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(lines[-1][len(TAG) :])


def measure(xml: pathlib.Path, config: str, repeats: int) -> dict:
    pairs = []
    for _ in range(repeats):
        pair = {}
        for library in ("nncf", "optimum_wc"):
            out = WORK / "out" / library / "openvino_model.xml"
            out.parent.mkdir(parents=True, exist_ok=True)
            pair[library] = child(CHILD, library, str(xml), str(out), json.dumps(CONFIGS[config]))
        pair["ratio"] = pair["nncf"]["seconds"] / pair["optimum_wc"]["seconds"]
        pair["same_bin"] = pair["nncf"]["sha256"] == pair["optimum_wc"]["sha256"]
        pairs.append(pair)
        print(config, {k: round(v["seconds"], 1) for k, v in pair.items() if isinstance(v, dict)}, flush=True)
    medians = {lib: statistics.median(p[lib]["seconds"] for p in pairs) for lib in ("nncf", "optimum_wc")}
    return {
        "config": config,
        "seconds": medians,
        "speedup": medians["nncf"] / medians["optimum_wc"],
        "pair_ratios": [p["ratio"] for p in pairs],
        "identical": all(p["same_bin"] for p in pairs),
        "pairs": pairs,
    }


def write(rows: list[dict], floor: dict, repeats: int) -> None:
    payload = {"cpu_count": os.cpu_count(), "repeats": repeats, "floor": floor, "rows": rows}
    total = floor["linear_algebra"] + floor["forward"]
    lines = [
        "# Data-aware compression at 270M parameters: nncf 3.4.0 vs optimum-wc",
        "",
        f"270M random-weight Llama, FP32 IR; INT4_SYM g128 on 32 random-token items of 128 tokens "
        f"(`benchmarks/data_aware_scale.py`). {repeats} alternating run(s) per row, each a fresh process; time = the "
        f"`compress_weights` call alone; machine: {os.cpu_count()} cores. Identical = the same saved `.bin` bytes "
        "in every pair.",
        "",
        "| configuration | nncf (s) | optimum-wc (s) | speed-up | pair ratios | identical | floor (s) "
        "| largest speed-up (nncf / floor) |",
        "|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in rows:
        least = total if r["config"].startswith("gptq") else floor["forward"]
        lines.append(
            f"| {r['config']} | {r['seconds']['nncf']:.1f} | {r['seconds']['optimum_wc']:.1f} "
            f"| **{r['speedup']:.2f}x** | {min(r['pair_ratios']):.2f}-{max(r['pair_ratios']):.2f} "
            f"| {'yes' if r['identical'] else 'NO'} | {least:.1f} | {r['seconds']['nncf'] / least:.2f}x |"
        )
    lines += [
        "",
        f"Floor: what any run that gives nncf's bytes spends on this machine. Every configuration needs one float32 "
        f"forward pass over the items ({floor['forward']:.1f} s, compiling included); GPTQ also needs its linear "
        f"algebra in nncf's calls ({floor['linear_algebra']:.1f} s: 64 Hessians of 32 rank-128 updates each, 64 "
        "Cholesky factors, inverses and products). The last column is the largest speed-up those bytes allow, were "
        "everything else (the column loop, the layer-by-layer inference, scale estimation, AWQ) free.",
    ]
    write_results("data_aware_scale", payload, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--update", action="store_true", help="keep the other rows of the last results")
    args = parser.parse_args()
    start = time.perf_counter()
    xml = build_fp32() / "openvino_model.xml"
    floor = child(FLOOR, str(xml), "16")
    print("floor", floor, flush=True)
    rows = [measure(xml, config, args.repeats) for config in args.configs]
    if args.update and (RESULTS / "data_aware_scale.json").is_file():
        new = {r["config"] for r in rows}
        rows += [
            r for r in json.loads((RESULTS / "data_aware_scale.json").read_text())["rows"] if r["config"] not in new
        ]
        rows.sort(key=lambda r: list(CONFIGS).index(r["config"]))
    write(rows, floor, args.repeats)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
