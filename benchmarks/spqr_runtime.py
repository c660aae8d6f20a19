"""SpQR at run time on the OpenVINO CPU plugin: next-token latency and memory against INT4_ASYM g128.

The model is a random-weight Llama (hidden 1024, MLP 2816, 16 layers, vocabulary 32000: about 270M parameters),
exported to an FP32 IR by optimum-intel, then compressed by optimum-wc:

- INT4_ASYM g128 (data-free; embeddings and lm_head INT8_ASYM), the reference;
- SpQR (``MODELS``): the authors' recipe (groups of 16, fractional zero points); the layout OpenVINO runs fastest
  (groups of 32, integer zero points) in 4 and 3 bits, each at a threshold that keeps few outliers (the "fast" rows)
  and at one that keeps about 1% (the ~4.6-bit row of the accuracy benchmark); the ~3.9-bit row of the accuracy
  benchmark (3-bit, groups of 16). Calibrated on 16 random-token samples of 128 tokens (on random weights only the
  storage and the outlier count matter here, not the quality; the outlier fractions are close to those the same
  thresholds give on the trained model of the accuracy benchmark).

Each model is measured in a fresh process, the models in turn (alternating) for ``--repeats`` rounds: compile on
CPU (default settings: what users get); a 512-token and a 32-token prompt (each timed on its second run: the first
prepares the kernels for the shapes), then 64 single-token steps with the KV cache after the 32-token prompt
(stateful model); latency = median step time. Memory: the process's ``VmHWM`` (peak RSS) and ``RssAnon`` after the steps
(OpenVINO does not report a compiled model's memory). ``.bin`` size and bits per parameter come from the saved IR.

A second table measures the container of 3-bit codes on one 2816 x 1024 layer: u3 codes converted straight to
float (OpenVINO folds them into a dense float matrix when it compiles) against u3 codes widened to u4 first (folded
into a u4 constant that stays packed, what optimum-wc writes): compiled-model memory and latency, fresh processes.

Run: ``python benchmarks/spqr_runtime.py [--repeats 3]``. Results: ``benchmarks/results/spqr_runtime.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

from random_models import save_random_llama_270m

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work" / "spqr_runtime"
RESULTS = ROOT / "benchmarks" / "results"
TAG = "SPQR_RUNTIME "
MB = 2**20
PREFILL, STEPS, LONG_PREFILL = 32, 128, 512
LATENCY_TARGET = 1.5  # SpQR next-token latency / INT4_ASYM g128's
FAST = {"group_size": 32, "round_zero": True, "percdamp": 0.1}  # integer zero points, groups of 32: int4 kernels
MODELS = {
    "int4_asym_g128": ("INT4_ASYM g128 (reference)", {"mode": "int4_asym", "group_size": 128}),
    "spqr_recipe": ("SpQR 4-bit g16, the authors' recipe (defaults)", {"mode": "spqr"}),
    "spqr_4bit_fast": (
        "SpQR 4-bit g32, integer zero points, damping 0.1, threshold 0.25",
        {"mode": "spqr", "spqr": {**FAST, "outlier_threshold": 0.25}},
    ),
    "spqr_4bit": (
        "SpQR 4-bit g32, integer zero points, damping 0.1, threshold 0.1",
        {"mode": "spqr", "spqr": {**FAST, "outlier_threshold": 0.1}},
    ),
    "spqr_3bit_fast": (
        "SpQR 3-bit g32, integer zero points, damping 0.1, threshold 0.5",
        {"mode": "spqr", "spqr": {**FAST, "bits": 3, "outlier_threshold": 0.5}},
    ),
    "spqr_3bit": (
        "SpQR 3-bit g16, damping 0.1, threshold 0.35",
        {"mode": "spqr", "spqr": {"bits": 3, "percdamp": 0.1, "outlier_threshold": 0.35}},
    ),
}

CHILD = r"""
import json, sys, time
import numpy as np
import openvino as ov
xml = sys.argv[1]
compiled = ov.Core().compile_model(xml, "CPU")
request = compiled.create_infer_request()
def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key + ":"))
rng = np.random.default_rng(0)
def step(tokens, start):
    n = tokens.shape[1]
    request.infer({"input_ids": tokens, "attention_mask": np.ones((1, start + n), dtype=np.int64),
                   "position_ids": np.arange(start, start + n)[None], "beam_idx": np.zeros(1, dtype=np.int32)})
    return int(np.argmax(request.get_tensor("logits").data[0, -1]))
def prefill(length):  # the second of two runs: the first one prepares the kernels for the new shapes
    prompt = rng.integers(3, 32000, size=(1, length))
    for _ in range(2):
        request.reset_state()
        t0 = time.perf_counter()
        token = step(prompt, 0)
    return time.perf_counter() - t0, token
long_prefill, _ = prefill(%(long_prefill)d)
short_prefill, token = prefill(%(prefill)d)
times = []
for i in range(%(steps)d):
    t0 = time.perf_counter()
    token = step(np.array([[token]]), %(prefill)d + i)
    times.append(time.perf_counter() - t0)
print("%(tag)s" + json.dumps({"step_seconds": sorted(times)[len(times) // 2], "prefill_seconds": short_prefill,
      "long_prefill_seconds": long_prefill, "peak_rss": status("VmHWM"), "rss_anon": status("RssAnon")}), flush=True)
"""


CONTAINER_CHILD = r"""
import json, sys, time
import numpy as np
import openvino as ov
from openvino import opset13 as opset
from optimum_wc.kernels.packing import pack
widen = sys.argv[1] == "u4"
rows, columns, group = 2816, 1024, 16
rng = np.random.default_rng(0)
codes = pack(rng.integers(0, 8, size=(rows, columns // group, group)), "u3")
x = opset.parameter([-1, -1, columns], ov.Type.f32, name="x")
node = ov.op.Constant(ov.Tensor(codes.data, list(codes.shape), ov.Type.u3), shared_memory=False)
if widen:
    node = opset.convert(node, ov.Type.u4)
node = opset.convert(node, ov.Type.f16)
zero = opset.convert(ov.op.Constant(rng.integers(0, 8, size=(rows, columns // group, 1)).astype(np.uint8)), ov.Type.f16)
scale = ov.op.Constant((rng.random((rows, columns // group, 1)) * 0.01).astype(np.float16))
node = opset.reshape(opset.multiply(opset.subtract(node, zero), scale), [rows, columns], False)
model = ov.Model([opset.result(opset.matmul(x, opset.convert(node, ov.Type.f32), False, True))], [x])
def anon():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("RssAnon:"))
before = anon()
request = ov.Core().compile_model(model, "CPU").create_infer_request()
del model
compiled = anon() - before
value = rng.standard_normal((1, 1, columns)).astype(np.float32)
for _ in range(20):
    request.infer({0: value})
start = time.perf_counter()
for _ in range(200):
    request.infer({0: value})
print("%(tag)s" + json.dumps({"compiled_anon": compiled, "latency": (time.perf_counter() - start) / 200}), flush=True)
"""


def container(kind: str) -> dict:
    code = CONTAINER_CHILD % {"tag": TAG}
    proc = subprocess.run([sys.executable, "-c", code, kind], capture_output=True, text=True, check=True, cwd=ROOT)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(TAG))
    return json.loads(line[len(TAG) :])


def build_fp32() -> pathlib.Path:
    folder = WORK / "fp32"
    if (folder / "openvino_model.xml").is_file():
        return folder
    from optimum.intel import OVModelForCausalLM

    checkpoint = save_random_llama_270m(WORK / "checkpoint")
    tmp = WORK / "fp32.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    OVModelForCausalLM.from_pretrained(checkpoint, export=True, load_in_8bit=False, compile=False).save_pretrained(tmp)
    tmp.rename(folder)
    shutil.rmtree(checkpoint)
    return folder


def compress_all(fp32: pathlib.Path) -> dict:
    import numpy as np

    import openvino as ov
    import optimum_wc
    from optimum_wc.pipeline.rt_info import read_layer_records
    from optimum_wc.pipeline.summary import StoredFootprint

    rng = np.random.default_rng(1)
    data = [
        {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "position_ids": np.arange(128)[None],
            "beam_idx": np.zeros(1, dtype=np.int32),
        }
        for ids in rng.integers(3, 32000, size=(16, 1, 128))
    ]
    facts = {}
    for name, (_, kwargs) in MODELS.items():
        folder = WORK / name
        xml = folder / "openvino_model.xml"
        if not xml.is_file():
            model = ov.Core().read_model(fp32 / "openvino_model.xml")
            start = time.perf_counter()
            extra = {"dataset": data} if kwargs["mode"] == "spqr" else {}
            optimum_wc.compress_weights(model, progress=False, **kwargs, **extra)
            seconds = time.perf_counter() - start
            folder.mkdir(parents=True, exist_ok=True)
            ov.save_model(model, xml, compress_to_fp16=False)
            (folder / "compress_seconds.txt").write_text(f"{seconds}\n")
        model = ov.Core().read_model(xml)
        stored = StoredFootprint.from_records(read_layer_records(model))
        facts[name] = {
            "bin_bytes": xml.with_suffix(".bin").stat().st_size,
            "compress_seconds": float((folder / "compress_seconds.txt").read_text()),
            "bits_per_parameter": None if stored is None else stored.bits_per_parameter,
            "outlier_fraction": None if stored is None else stored.outlier_fraction,
        }
    return facts


def measure(name: str) -> dict:
    code = CHILD % {"prefill": PREFILL, "steps": STEPS, "long_prefill": LONG_PREFILL, "tag": TAG}
    xml = WORK / name / "openvino_model.xml"
    proc = subprocess.run([sys.executable, "-c", code, str(xml)], capture_output=True, text=True, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(TAG))
    return json.loads(line[len(TAG) :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    WORK.mkdir(parents=True, exist_ok=True)
    facts = compress_all(build_fp32())
    runs: dict[str, list[dict]] = {name: [] for name in MODELS}
    containers: dict[str, list[dict]] = {"u3": [], "u4": []}
    for _ in range(args.repeats):
        for name in MODELS:  # alternating, so that machine noise hits all alike
            runs[name].append(measure(name))
        for kind in containers:
            containers[kind].append(container(kind))
    reference = statistics.median(r["step_seconds"] for r in runs["int4_asym_g128"])
    rows = []
    for name, (label, kwargs) in MODELS.items():
        step = statistics.median(r["step_seconds"] for r in runs[name])
        rows.append(
            {
                "model": name,
                "label": label,
                "arguments": kwargs,
                **facts[name],
                "step_seconds": step,
                "latency_ratio": step / reference,
                "prefill_seconds": statistics.median(r["prefill_seconds"] for r in runs[name]),
                "long_prefill_seconds": statistics.median(r["long_prefill_seconds"] for r in runs[name]),
                "peak_rss": statistics.median(r["peak_rss"] for r in runs[name]),
                "rss_anon": statistics.median(r["rss_anon"] for r in runs[name]),
                "runs": runs[name],
            }
        )
    import openvino

    payload = {
        "environment": {
            "openvino": openvino.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "repeats": args.repeats,
            "prefill": PREFILL,
            "steps": STEPS,
        },
        "rows": rows,
        "containers": containers,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "spqr_runtime.json").write_text(json.dumps(payload, indent=2) + "\n")
    base = rows[0]
    lines = [
        "# SpQR at run time: next-token latency and memory vs INT4_ASYM g128",
        "",
        f"Random-weight Llama, 270M parameters (hidden 1024, MLP 2816, 16 layers, vocabulary 32000), OpenVINO "
        f"{openvino.__version__} CPU plugin with default settings, {os.cpu_count()} CPUs. Latency: median of "
        f"{STEPS} single-token steps after a {PREFILL}-token prefill, median over {args.repeats} fresh processes "
        "(models alternating). Memory: peak RSS and anonymous RSS of that process. Ratios are to INT4_ASYM g128 "
        "measured in the same run.",
        "",
        "| Model | .bin (MB) | Bits per parameter (SpQR layers) | Outliers | Next-token latency / INT4 | "
        f"Prefill {PREFILL} / INT4 | Prefill {LONG_PREFILL} / INT4 | Peak RSS / INT4 | Anonymous RSS / INT4 | Result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        is_spqr = row["arguments"]["mode"] == "spqr"
        verdict = ("**PASS**" if row["latency_ratio"] <= LATENCY_TARGET else "**FAIL**") if is_spqr else "reference"
        bits = "—" if row["bits_per_parameter"] is None else f"{row['bits_per_parameter']:.3f}"
        outliers = "—" if row["outlier_fraction"] is None else f"{row['outlier_fraction']:.3%}"
        lines.append(
            f"| {row['label']} | {row['bin_bytes'] / MB:.1f} | {bits} | {outliers} | "
            f"{row['latency_ratio']:.2f} | {row['prefill_seconds'] / base['prefill_seconds']:.2f} | "
            f"{row['long_prefill_seconds'] / base['long_prefill_seconds']:.2f} | "
            f"{row['peak_rss'] / base['peak_rss']:.2f} | {row['rss_anon'] / base['rss_anon']:.2f} | {verdict} |"
        )
    lines += [
        "",
        f"Target: SpQR next-token latency within {LATENCY_TARGET}x of INT4_ASYM g128. INT4_ASYM g128 itself: "
        f"{base['step_seconds'] * 1e3:.1f} ms per token, peak RSS {base['peak_rss'] / MB:.0f} MB (absolute "
        "figures depend on this shared machine's load).",
    ]
    u3, u4 = (
        {key: statistics.median(r[key] for r in containers[kind]) for key in ("compiled_anon", "latency")}
        for kind in ("u3", "u4")
    )
    lines += [
        "",
        "3-bit codes of one 2816 x 1024 layer (groups of 16), compiled on the CPU plugin:",
        "",
        "| Codes in the IR | Compiled model, anonymous memory (MB) | Latency, one token (us) |",
        "|---|---:|---:|",
        f"| u3 converted to float | {u3['compiled_anon'] / MB:.1f} | {u3['latency'] * 1e6:.0f} |",
        f"| u3 widened to u4 (optimum-wc) | {u4['compiled_anon'] / MB:.1f} | {u4['latency'] * 1e6:.0f} |",
        "",
        f"The u3 codes on disk take {2816 * 1024 * 3 / 8 / MB:.2f} MB; widened to u4 they take "
        f"{2816 * 1024 / 2 / MB:.2f} MB at run time, where a float matrix takes {2816 * 1024 * 4 / MB:.1f} MB (f32).",
    ]
    (RESULTS / "spqr_runtime.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
