"""Compressing a model larger than a third of memory: peak anonymous memory and wall time, ours and nncf's.

The model is a random-weight IR with Llama-7B-shaped weights (hidden 4096, MLP 11008, vocabulary 32000: a Gather
embedding, per layer q/k/v/o and gate/up/down MatMuls, an lm_head), stored as optimum-intel stores it (f16
constants followed by Convert); 14 layers give a 6.2 GB ``.bin``. It is built with OpenVINO's opset directly:
exporting a 3B-parameter PyTorch model would itself need more memory than this 24 GiB machine has to spare.

Each run is a fresh process that reads the IR (memory-mapped), compresses it data-free and saves it. Memory is the
peak of ``RssAnon`` (sampled every 10 ms), i.e. not counting the pages of the memory-mapped input and of our
memory-mapped temporary files, which the kernel can drop and re-read; ``ru_maxrss`` is shown too. Dirty pages are
written back (``sync``) before each run, so that no run's save waits on the writeback of the one before.

Run: ``python benchmarks/scale.py [--layers 14] [--repeats 3]``. Results: ``benchmarks/results/scale.{json,md}``.
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
WORK = ROOT / "benchmarks" / "work" / "scale"
RESULTS = ROOT / "benchmarks" / "results"
HIDDEN, MLP, VOCAB = 4096, 11008, 32000
MB = 2**20
TAG = "SCALE_RESULT "
NNCF_TIMEOUT_S = 1800

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, "__BENCHMARKS__")
from anon_memory import PeakAnon
memory = PeakAnon(interval=0.01)  # before the imports: the peak is the process's own, imports included
import openvino as ov
library, xml, out, mode, workers = sys.argv[1:6]
if library == "optimum_wc":
    import optimum_wc
else:
    import nncf
model = ov.Core().read_model(xml)
start = time.perf_counter()
if library == "optimum_wc":
    optimum_wc.compress_weights(model, mode=mode, progress=False, num_workers=int(workers) or None)
else:
    nncf.compress_weights(model, mode=nncf.CompressWeightsMode(mode))
compressed = time.perf_counter()
ov.save_model(model, out, compress_to_fp16=False)
seconds = time.perf_counter() - start
time.sleep(0.05)
memory.stop()
print("__TAG__" + json.dumps({"seconds": seconds, "compress_seconds": compressed - start,
      "save_seconds": seconds - (compressed - start), "peak_anon": memory.peak,
      "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)
""".replace("__TAG__", TAG).replace("__BENCHMARKS__", str(ROOT / "benchmarks"))


def build(
    layers: int, xml: pathlib.Path, hidden_size: int = HIDDEN, mlp_size: int = MLP, vocab_size: int = VOCAB
) -> None:
    """Writes the random-weight IR (skipped when it exists); Llama-7B-shaped unless other sizes are given."""
    if xml.is_file():
        return
    import numpy as np

    import openvino as ov
    from openvino import opset13 as opset

    rng = np.random.default_rng(0)

    def weight(rows: int, columns: int, name: str) -> ov.Node:
        values = (rng.standard_normal((rows, columns), dtype=np.float32) * 0.02).astype(np.float16)
        return opset.convert(opset.constant(values, ov.Type.f16, name=name), ov.Type.f32)

    ids = opset.parameter([1, -1], ov.Type.i64, name="input_ids")
    hidden = opset.gather(weight(vocab_size, hidden_size, "model.embed_tokens.weight"), ids, np.int64(0))
    for layer in range(layers):
        prefix = f"model.layers.{layer}"
        attention = [
            opset.matmul(hidden, weight(hidden_size, hidden_size, f"{prefix}.self_attn.{p}.weight"), False, True)
            for p in ("q_proj", "k_proj", "v_proj")
        ]
        mixed = opset.add(opset.add(attention[0], attention[1]), attention[2])
        hidden = opset.add(
            hidden,
            opset.matmul(mixed, weight(hidden_size, hidden_size, f"{prefix}.self_attn.o_proj.weight"), False, True),
        )
        gate = opset.matmul(hidden, weight(mlp_size, hidden_size, f"{prefix}.mlp.gate_proj.weight"), False, True)
        up = opset.matmul(hidden, weight(mlp_size, hidden_size, f"{prefix}.mlp.up_proj.weight"), False, True)
        down = opset.matmul(
            opset.multiply(opset.swish(gate), up),
            weight(hidden_size, mlp_size, f"{prefix}.mlp.down_proj.weight"),
            False,
            True,
        )
        hidden = opset.add(hidden, down)
    logits = opset.matmul(hidden, weight(vocab_size, hidden_size, "lm_head.weight"), False, True)
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([opset.result(logits)], [ids]), xml, compress_to_fp16=False)


def run(library: str, xml: pathlib.Path, mode: str, workers: int) -> dict:
    out = WORK / f"out-{library}-{mode}" / "openvino_model.xml"
    out.parent.mkdir(parents=True, exist_ok=True)
    timeout = NNCF_TIMEOUT_S if library == "nncf" else 900
    os.sync()  # the last run's output written back first: its writeback would otherwise slow this run's save
    try:
        process = subprocess.run(
            [sys.executable, "-c", CHILD, library, str(xml), str(out), mode, str(workers)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"library": library, "mode": mode, "workers": workers, "failed": f"timed out after {timeout} s"}
    finally:
        for file in out.parent.glob("*"):
            file.unlink()
    lines = [line for line in process.stdout.splitlines() if line.startswith(TAG)]
    if process.returncode != 0 or not lines:
        reason = f"exit {process.returncode}" + (" (killed: out of memory?)" if process.returncode in (-9, 137) else "")
        return {"library": library, "mode": mode, "workers": workers, "failed": reason, "stderr": process.stderr[-500:]}
    return {"library": library, "mode": mode, "workers": workers, **json.loads(lines[-1][len(TAG) :])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=3, help="alternating 1- and 2-worker runs of ours (INT4)")
    parser.add_argument("--skip-nncf", action="store_true")
    args = parser.parse_args()
    xml = WORK / f"llama-shaped-{args.layers}l" / "openvino_model.xml"
    start = time.perf_counter()
    build(args.layers, xml)
    ir_bytes = xml.with_suffix(".bin").stat().st_size
    print(
        f"IR: {ir_bytes / 2**30:.2f} GiB of f16 weights (built/checked in {time.perf_counter() - start:.0f} s)",
        flush=True,
    )

    rows = []
    for mode in ("int4_asym", "int8_asym"):
        for library in ("optimum_wc",) + (() if args.skip_nncf else ("nncf",)):
            rows.append(run(library, xml, mode, 0))
            print(rows[-1], flush=True)
    scaling = {1: [], 2: []}
    for _ in range(args.repeats):
        for workers in (1, 2):
            result = run("optimum_wc", xml, "int4_asym", workers)
            scaling[workers].append(result)
            print(result, flush=True)
    median = {
        w: {k: statistics.median(r[k] for r in runs) for k in ("compress_seconds", "seconds")}
        for w, runs in scaling.items()
    }
    speedup = median[1]["compress_seconds"] / median[2]["compress_seconds"]
    speedup_total = median[1]["seconds"] / median[2]["seconds"]

    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "ir_bytes": ir_bytes,
        "layers": args.layers,
        "rows": rows,
        "scaling_runs": scaling,
        "speedup_1_to_2_workers_compress": speedup,
        "speedup_1_to_2_workers_with_save": speedup_total,
        "cpu_count": os.cpu_count(),
    }
    (RESULTS / "scale.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Scale: a 6 GB FP16 IR",
        "",
        f"Random-weight IR with Llama-7B-shaped weights, {args.layers} layers: "
        f"{ir_bytes / 2**30:.2f} GiB `.bin` (f16). "
        "Data-free compression of the memory-mapped IR plus saving, one fresh process per run. Peak anonymous "
        "memory: high-water mark of RssAnon (sampled every 10 ms). Regenerate with `python benchmarks/scale.py`.",
        "",
        "| Library | Mode | Compress (s) | Save (s) | Total (s) | Peak anonymous memory (GiB) | ... / FP16 IR size "
        "| ru_maxrss (GiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "failed" in row:
            lines.append(f"| {row['library']} | {row['mode']} | failed: {row['failed']} | | | | | |")
            continue
        lines.append(
            f"| {row['library']} | {row['mode']} | {row['compress_seconds']:.1f} | {row['save_seconds']:.1f} | "
            f"{row['seconds']:.1f} | {row['peak_anon'] / 2**30:.2f} | {row['peak_anon'] / ir_bytes:.3f} | "
            f"{row['maxrss'] / 2**30:.2f} |"
        )
    lines += [
        "",
        f"optimum-wc INT4_ASYM with 1 and 2 workers (`num_workers`), median of {args.repeats} alternating "
        f"runs: `compress_weights` {median[1]['compress_seconds']:.1f} s and {median[2]['compress_seconds']:.1f} s, "
        f"speed-up **{speedup:.2f}x**; with OpenVINO's (single-threaded) `save_model` included "
        f"{median[1]['seconds']:.1f} s and {median[2]['seconds']:.1f} s, {speedup_total:.2f}x "
        f"(machine: {os.cpu_count()} cores).",
    ]
    (RESULTS / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
