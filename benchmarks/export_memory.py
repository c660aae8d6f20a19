"""Memory of each stage of export + compression: optimum-wc's from_pretrained against optimum-intel's (with nncf).

The model is a random-weight Llama saved as a float32 safetensors checkpoint (hidden 1024, MLP 2816, 16 layers,
vocabulary 32000: 270M parameters, 1.08 GB). Each run is a fresh process that calls
``OVModelForCausalLM.from_pretrained(checkpoint, export=True, <INT4_ASYM g128>, compile=False)`` and then
``save_pretrained``, with optimum-wc's class (our compression) or optimum-intel's (an
``OVWeightQuantizationConfig``, through nncf).

A thread samples the process's ``RssAnon`` (anonymous memory: what cannot be dropped) and ``VmRSS`` (with the
memory-mapped files) every 5 ms; the stages are timed by wrapping the functions that do them:

- load: transformers builds the PyTorch model (``TasksManager.get_model_from_task``; transformers 5 always
  initialises on the meta device and reads safetensors memory-mapped, so there is no ``low_cpu_mem_usage`` to ask
  for);
- convert: ``openvino.convert_model`` traces it into an ``ov.Model``;
- save float IR: optimum-intel writes the float IR to a temporary folder;
- read IR: the exported IR is read back (memory-mapped);
- compress: ``compress_model`` (ours) or nncf's ``WeightCompression.apply``, wherever optimum-intel calls it;
- save: ``save_pretrained`` writes the compressed IR.

It also probes whether the exporter accepts a model with accelerate's disk offload (it does not; see the results).

Run: ``python benchmarks/export_memory.py [--repeats 3]``. Results: ``benchmarks/results/export_memory.{json,md}``.
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

from random_models import save_random_llama_270m

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work" / "export_memory"
RESULTS = ROOT / "benchmarks" / "results"
TAG = "EXPORT_MEMORY "
MB = 2**20
STAGES = ("load", "convert", "save float IR", "read IR", "compress", "save")

CHILD = r"""
import json, pathlib, sys, threading, time
library, checkpoint, out = sys.argv[1:4]
samples = []
def sample():
    while True:
        values = {}
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("RssAnon:", "VmRSS:")):
                    values[line.split(":")[0]] = int(line.split()[1]) * 1024
        samples.append((time.perf_counter(), values["RssAnon"], values["VmRSS"]))
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
stages = []
def staged(name, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            stages.append((name, start, time.perf_counter()))
    return wrapper
from optimum.exporters import tasks
from optimum.exporters.openvino import convert
from optimum.intel.openvino import modeling_decoder
tasks.TasksManager.get_model_from_task = staged("load", tasks.TasksManager.get_model_from_task)
convert.convert_model = staged("convert", convert.convert_model)
convert._save_model = staged("save float IR", convert._save_model)
read = modeling_decoder.OVModelForCausalLM._from_pretrained.__func__
modeling_decoder.OVModelForCausalLM._from_pretrained = classmethod(staged("read IR", read))
if library == "optimum_wc":
    import optimum_wc.hf.compressed as compressed
    import optimum_wc.hf.modeling as ours
    compressed.compress_model = staged("compress", compressed.compress_model)
    model_class, kwargs = ours.OVModelForCausalLM, {"quantization_config": {"bits": 4, "sym": False, "group_size": 128}}
else:
    from nncf.quantization.algorithms.weight_compression.algorithm import WeightCompression
    WeightCompression.apply = staged("compress", WeightCompression.apply)
    from optimum.intel import OVModelForCausalLM as model_class, OVWeightQuantizationConfig
    kwargs = {"quantization_config": OVWeightQuantizationConfig(bits=4, sym=False, group_size=128, ratio=1.0)}
time.sleep(0.05)
baseline = {"anon": samples[-1][1], "rss": samples[-1][2]}  # imports done, nothing loaded yet
start = time.perf_counter()
model = model_class.from_pretrained(checkpoint, export=True, compile=False, **kwargs)
saving = time.perf_counter()
model.save_pretrained(out)
stages.append(("save", saving, time.perf_counter()))
end = time.perf_counter()
time.sleep(0.02)
peaks = {}
for name, begin, finish in stages:
    window = [s for s in samples if begin <= s[0] <= finish] or [min(samples, key=lambda s: abs(s[0] - finish))]
    anon, rss = max(s[1] for s in window), max(s[2] for s in window)
    previous = peaks.get(name, {"anon": 0, "rss": 0, "seconds": 0.0})
    peaks[name] = {"anon": max(anon, previous["anon"]), "rss": max(rss, previous["rss"]),
                   "seconds": previous["seconds"] + finish - begin}
run = [s for s in samples if start <= s[0] <= end]
print("%(tag)s" + json.dumps({"stages": peaks, "peak_anon": max(s[1] for s in run), "peak_rss": max(s[2] for s in run),
                             "seconds": end - start, "baseline": baseline}), flush=True)
"""


OFFLOAD_PROBE = r"""
import json, pathlib, shutil, sys, tempfile
import torch
from transformers import AutoModelForCausalLM, LlamaConfig
import optimum.exporters.utils
from optimum.exporters.openvino import main_export
work = pathlib.Path(tempfile.mkdtemp(prefix="offload-probe-"))
torch.manual_seed(0)
config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=128)
AutoModelForCausalLM.from_config(config).save_pretrained(work / "checkpoint")
device_map = {"model.embed_tokens": "cpu", "model.layers.0": "disk", "model.layers.1": "disk", "model.norm": "cpu",
              "model.rotary_emb": "cpu", "lm_head": "disk"}
outcome = {}
for attempt in ("as is", "input check skipped"):
    if attempt == "input check skipped":
        optimum.exporters.utils.check_dummy_inputs_are_allowed = lambda *args, **kwargs: None
    try:
        main_export(str(work / "checkpoint"), work / attempt.replace(" ", "_"), task="text-generation-with-past",
                    convert_tokenizer=False, model_loading_kwargs={"device_map": device_map,
                                                                   "offload_folder": str(work / "offload")})
        outcome[attempt] = "exported"
    except Exception as exc:
        outcome[attempt] = f"{type(exc).__name__}: " + " ".join(str(exc).split())[:300]
shutil.rmtree(work, ignore_errors=True)
print("%(tag)s" + json.dumps(outcome), flush=True)
"""


def offload_probe() -> dict:
    """Exports a tiny Llama whose decoder layers and head accelerate offloads to disk (``device_map`` with
    ``"disk"``, ``offload_folder``) through optimum-intel's exporter: as is, then with the exporter's input check
    skipped (to reach OpenVINO's tracing). Returns each attempt's outcome."""
    proc = subprocess.run(
        [sys.executable, "-c", OFFLOAD_PROBE % {"tag": TAG}], capture_output=True, text=True, cwd=ROOT
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(TAG)]
    if not lines:
        raise RuntimeError(f"the offload probe failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(TAG) :])


def build_checkpoint() -> tuple[pathlib.Path, int]:
    folder = save_random_llama_270m(WORK / "checkpoint")
    return folder, sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def run(library: str, checkpoint: pathlib.Path) -> dict:
    out = WORK / f"out_{library}"
    shutil.rmtree(out, ignore_errors=True)
    code = CHILD % {"tag": TAG}
    proc = subprocess.run(
        [sys.executable, "-c", code, library, str(checkpoint), str(out)], capture_output=True, text=True, cwd=ROOT
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(TAG)]
    if proc.returncode or not lines:
        raise RuntimeError(f"{library} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(TAG) :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    checkpoint, size = build_checkpoint()
    libraries = ("optimum_wc", "optimum_intel")
    runs: dict[str, list[dict]] = {lib: [] for lib in libraries}
    for _ in range(args.repeats):
        for library in libraries:  # alternating
            runs[library].append(run(library, checkpoint))

    def median(library: str, *keys: str) -> float:
        values = []
        for result in runs[library]:
            value = result
            for key in keys:
                value = value.get(key, {}) if isinstance(value, dict) else None
            values.append(value if isinstance(value, (int, float)) else float("nan"))
        return statistics.median(values)

    rows = []
    for stage in (*STAGES, "whole run"):
        row = {"stage": stage}
        for library in libraries:
            keys = ("peak_anon",) if stage == "whole run" else ("stages", stage, "anon")
            rss_keys = ("peak_rss",) if stage == "whole run" else ("stages", stage, "rss")
            seconds = ("seconds",) if stage == "whole run" else ("stages", stage, "seconds")
            base_anon, base_rss = median(library, "baseline", "anon"), median(library, "baseline", "rss")
            row[library] = {
                "anon": median(library, *keys) - base_anon,
                "rss": median(library, *rss_keys) - base_rss,
                "seconds": median(library, *seconds),
            }
        rows.append(row)
    offload = offload_probe()
    payload = {
        "checkpoint_bytes": size,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "rows": rows,
        "runs": runs,
        "disk_offload": offload,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "export_memory.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Export + INT4_ASYM g128 compression: peak memory of each stage",
        "",
        f"Random-weight Llama, 270M parameters, float32 safetensors checkpoint of {size / MB:.0f} MiB; "
        f"`from_pretrained(export=True, ...)` then `save_pretrained`, each run a fresh process, median of "
        f"{args.repeats} alternating runs, {os.cpu_count()} CPUs. Peak anonymous memory (`RssAnon`) and resident "
        "memory (`VmRSS`, which also counts memory-mapped files) during each stage, above the process's own once "
        "its imports are done (optimum-wc "
        f"{statistics.median(r['baseline']['anon'] for r in runs['optimum_wc']) / MB:.0f} MiB anonymous, optimum-intel "
        f"{statistics.median(r['baseline']['anon'] for r in runs['optimum_intel']) / MB:.0f} MiB), as a share of the "
        "checkpoint size. A stage a library does not go through is shown as —.",
        "",
        "| Stage | optimum-wc anonymous | optimum-wc resident | optimum-intel + nncf anonymous | optimum-intel + nncf "
        "resident | optimum-wc time (s) | optimum-intel + nncf time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours, theirs = row["optimum_wc"], row["optimum_intel"]
        cells = [
            f"{value / size:.2f}" if value == value else "—"
            for value in (ours["anon"], ours["rss"], theirs["anon"], theirs["rss"])
        ]
        times = [f"{value:.1f}" if value == value else "—" for value in (ours["seconds"], theirs["seconds"])]
        lines.append(f"| {row['stage']} | {' | '.join(cells)} | {' | '.join(times)} |")
    lines += [
        "",
        'Disk offload (accelerate\'s `device_map` with `"disk"` and `offload_folder`, decoder layers and head '
        "offloaded, tiny Llama) through optimum-intel's exporter:",
        "",
        *(f"- {attempt}: `{outcome}`" for attempt, outcome in offload.items()),
        "",
        "So export cannot use disk offload; it does not need it either: transformers builds the model on the meta "
        "device and reads the safetensors memory-mapped (resident pages of a file the system can drop), so the "
        "anonymous peak above stays a fraction of the checkpoint. optimum-wc's `from_pretrained` refuses "
        "`device_map`, `max_memory` and the offload arguments with this explanation instead of ignoring them.",
    ]
    (RESULTS / "export_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
