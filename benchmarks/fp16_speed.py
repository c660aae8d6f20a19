"""Data-free compression of FP16 IRs of real model sizes: nncf 3.4.0 vs optimum-wc, time, memory and identity.

The IRs are random-weight Llama-shaped models stored as optimum-intel stores them (f16 constants followed by
Convert), built with OpenVINO's opset by ``scale.build`` (exporting multi-billion-parameter PyTorch models would
need more memory than this machine has to spare):

- ``0.5b``: 24 layers, hidden 1024, MLP 4096, vocabulary 32000 (0.47B parameters);
- ``1.5b``: 24 layers, hidden 2048, MLP 5632, vocabulary 32000 (1.36B);
- ``7b``: 14 layers of Llama-7B's shape, hidden 4096, MLP 11008 (3.1B; the IR of ``scale.py``).

Every run is a fresh process that reads the IR (memory-mapped), times ``compress_weights`` alone, then saves the
result and hashes its ``.bin`` (not timed). nncf and optimum-wc alternate, run after run, so that the machine's
noise hits both alike; each pair's ratio is kept, and the table gives the median time of each library, the ratio of
the medians and the range of the pairs' ratios. The saved IRs of each pair are compared: same ``.bin`` bytes in
every pair, and the graph and rt_info of the last pair with ``tests/parity.py::compare_ir``. Peak anonymous memory
is the high-water mark of ``RssAnon`` during the call (sampled every 5 ms), above what the process had before it.

Run: ``python benchmarks/fp16_speed.py [--sizes 0.5b 1.5b 7b] [--configs ...] [--repeats 3] [--update]``
(``--update``: replace only the rows measured, keep the others of the last results).
Results: ``benchmarks/results/fp16_speed.{json,md}``.
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
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]  # tests/ first: its parity.py, not ours

from report import write_results  # noqa: E402
from scale import build  # noqa: E402

WORK = ROOT / "benchmarks" / "work" / "fp16_speed"
RESULTS = ROOT / "benchmarks" / "results"
TAG = "FP16_SPEED "
SHAPES = {  # layers, hidden, MLP, vocabulary
    "0.5b": (24, 1024, 4096, 32000),
    "1.5b": (24, 2048, 5632, 32000),
    "7b": (14, 4096, 11008, 32000),
}
CONFIGS = {  # name -> (mode, keyword arguments shared by both libraries)
    "int4_asym_g128": ("int4_asym", {"group_size": 128}),
    "int4_sym_g64_r0.8": ("int4_sym", {"group_size": 64, "ratio": 0.8}),
    "int8_asym": ("int8_asym", {}),
    "nf4": ("nf4", {}),
}

CHILD = r"""
import hashlib, json, sys, time
sys.path.insert(0, "__BENCHMARKS__")
from anon_memory import PeakAnon
import openvino as ov
library, xml, out, mode, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
if library == "optimum_wc":
    import optimum_wc
    compress = lambda m: optimum_wc.compress_weights(m, mode=mode, progress=False, **extra)
else:
    import nncf
    compress = lambda m: nncf.compress_weights(m, mode=nncf.CompressWeightsMode(mode), **extra)
model = ov.Core().read_model(xml)
memory = PeakAnon()
start = time.perf_counter()
model = compress(model)
seconds = time.perf_counter() - start
above_start = memory.stop()
ov.save_model(model, out, compress_to_fp16=False)
digest = hashlib.sha256()
with open(out[:-4] + ".bin", "rb") as f:
    for chunk in iter(lambda: f.read(1 << 24), b""):
        digest.update(chunk)
print("__TAG__" + json.dumps({"seconds": seconds, "peak_anon_above_start": above_start,
      "sha256": digest.hexdigest()}), flush=True)
""".replace("__TAG__", TAG).replace("__BENCHMARKS__", str(pathlib.Path(__file__).resolve().parent))


def ir_for(size: str) -> pathlib.Path:
    layers, hidden, mlp, vocab = SHAPES[size]
    xml = ROOT / "benchmarks" / "work" / "scale" / "llama-shaped-14l" / "openvino_model.xml"
    if size != "7b":
        xml = WORK / f"llama-{size}" / "openvino_model.xml"
    build(layers, xml, hidden, mlp, vocab)
    return xml


def run(library: str, xml: pathlib.Path, config: str, out: pathlib.Path) -> dict:
    mode, extra = CONFIGS[config]
    out.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.run(
        [sys.executable, "-c", CHILD, library, str(xml), str(out), mode, json.dumps(extra)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith(TAG)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"{library} {config} on {xml} failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return {"library": library, "config": config, **json.loads(lines[-1][len(TAG) :])}


def measure(size: str, config: str, repeats: int) -> dict:
    from parity import compare_ir

    xml = ir_for(size)
    pairs = []
    for _ in range(repeats):
        pair = {lib: run(lib, xml, config, WORK / "out" / lib / "openvino_model.xml") for lib in ("nncf", "optimum_wc")}
        pair["ratio"] = pair["nncf"]["seconds"] / pair["optimum_wc"]["seconds"]
        pair["same_bin"] = pair["nncf"]["sha256"] == pair["optimum_wc"]["sha256"]
        pairs.append(pair)
        print(size, config, {k: round(v["seconds"], 3) for k, v in pair.items() if isinstance(v, dict)}, flush=True)
    outputs = WORK / "out"
    report = compare_ir(outputs / "nncf" / "openvino_model.xml", outputs / "optimum_wc" / "openvino_model.xml")
    medians = {lib: statistics.median(p[lib]["seconds"] for p in pairs) for lib in ("nncf", "optimum_wc")}
    memory = {lib: statistics.median(p[lib]["peak_anon_above_start"] for p in pairs) for lib in ("nncf", "optimum_wc")}
    ratios = [p["ratio"] for p in pairs]
    return {
        "size": size,
        "config": config,
        "parameters": parameters(size),
        "ir_bytes": xml.with_suffix(".bin").stat().st_size,
        "seconds": medians,
        "speedup": medians["nncf"] / medians["optimum_wc"],
        "pair_ratios": ratios,
        "peak_anon_above_start": memory,
        "identical": all(p["same_bin"] for p in pairs) and report.identical,
        "graph_differences": report.graph_differences[:5] + report.rt_info_differences[:5],
        "pairs": pairs,
    }


def parameters(size: str) -> int:
    layers, hidden, mlp, vocab = SHAPES[size]
    return 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * mlp)


def write(rows: list[dict], repeats: int) -> None:
    lines = [
        "# Data-free compression of FP16 IRs: nncf 3.4.0 vs optimum-wc",
        "",
        f"Random-weight Llama-shaped FP16 IRs (`benchmarks/fp16_speed.py`). {repeats} alternating runs per row, each "
        f"a fresh process; time = the `compress_weights` call alone; machine: {os.cpu_count()} cores. Speed-up = "
        "nncf median / optimum-wc median, with the range of the runs' pairwise ratios. Memory = median peak "
        "anonymous memory during the call, above the process's before it. Identical = the same `.bin` bytes in "
        "every pair, and the same graph and rt_info (`tests/parity.py::compare_ir`) in the last.",
        "",
        "| IR | parameters | configuration | nncf (s) | optimum-wc (s) | speed-up | pair ratios | nncf memory "
        "(GiB) | optimum-wc memory (GiB) | identical |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} ({r['ir_bytes'] / 2**30:.2f} GiB) | {r['parameters'] / 1e9:.2f}B | {r['config']} "
            f"| {r['seconds']['nncf']:.2f} | {r['seconds']['optimum_wc']:.2f} | **{r['speedup']:.2f}x** "
            f"| {min(r['pair_ratios']):.2f}-{max(r['pair_ratios']):.2f} "
            f"| {r['peak_anon_above_start']['nncf'] / 2**30:.2f} "
            f"| {r['peak_anon_above_start']['optimum_wc'] / 2**30:.2f} "
            f"| {'yes' if r['identical'] else 'NO'} |"
        )
    write_results("fp16_speed", {"cpu_count": os.cpu_count(), "repeats": repeats, "rows": rows}, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--update", action="store_true", help="keep the other rows of the last results")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [measure(size, config, args.repeats) for size in args.sizes for config in args.configs]
    if args.update and (RESULTS / "fp16_speed.json").is_file():  # the other rows as they were measured
        new = {(r["size"], r["config"]) for r in rows}
        kept = json.loads((RESULTS / "fp16_speed.json").read_text())["rows"]
        rows += [r for r in kept if (r["size"], r["config"]) not in new]
        rows.sort(key=lambda r: (list(SHAPES).index(r["size"]), list(CONFIGS).index(r["config"])))
    write(rows, args.repeats)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
