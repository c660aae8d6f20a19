"""Peak anonymous memory of ``optimum-wc export`` on FP16 IRs of real size, above the process's own imports.

The IRs are the random-weight Llama-shaped FP16 IRs of ``benchmarks/fp16_speed.py`` (0.47B and 1.36B parameters,
f16 constants followed by Convert, as optimum-intel stores them). Each run is a fresh interpreter that samples its
``RssAnon`` (what the system cannot drop, unlike the pages of the memory-mapped input and of our scratch files)
every 5 ms and runs ``optimum-wc export IR OUT --weight-format int4`` (INT4_ASYM g128 with INT8 head and embedding,
the data-free core alone, no torch). The base is a run that only imports the CLI and builds its parser; the figure
is the peak of the export above that base, as a share of the FP16 ``.bin``.

Run: ``python benchmarks/ir_export_memory.py [--sizes 0.5b 1.5b] [--repeats 3]``.
Results: ``benchmarks/results/ir_export_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from fp16_speed import SHAPES, WORK, ir_for, parameters  # noqa: E402
from report import write_results  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TAG = "IR_EXPORT_MEMORY "
CHILD = r"""
import json, sys, time
sys.path.insert(0, "__BENCHMARKS__")
from anon_memory import PeakAnon
memory = PeakAnon()
start = time.perf_counter()
from optimum_wc import cli
arguments = json.loads(sys.argv[1])
if arguments:
    assert cli.main(arguments) == 0
else:
    cli.build_parser()
seconds = time.perf_counter() - start
memory.stop()
print("__TAG__" + json.dumps({"peak": memory.peak, "seconds": seconds}), flush=True)
""".replace("__TAG__", TAG).replace("__BENCHMARKS__", str(ROOT / "benchmarks"))


def run(arguments: list[str]) -> dict:
    process = subprocess.run([sys.executable, "-c", CHILD, json.dumps(arguments)], capture_output=True, text=True)
    lines = [line for line in process.stdout.splitlines() if line.startswith(TAG)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"{arguments} failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(lines[-1][len(TAG) :])


def measure(size: str, repeats: int) -> dict:
    xml = ir_for(size)
    export = ["export", str(xml.parent), str(WORK / "export_out"), "--weight-format", "int4"]
    export += ["--no-progress", "--overwrite"]
    bases, exports = [], []
    for _ in range(repeats):
        bases.append(run([]))
        exports.append(run(export))
        print(size, bases[-1], exports[-1], flush=True)
    base = statistics.median(r["peak"] for r in bases)
    above = [r["peak"] - base for r in exports]
    ir_bytes = xml.with_suffix(".bin").stat().st_size
    return {
        "size": size,
        "parameters": parameters(size),
        "ir_bytes": ir_bytes,
        "imports_bytes": base,
        "peak_above_imports": statistics.median(above),
        "share_of_ir": statistics.median(above) / ir_bytes,
        "shares": [a / ir_bytes for a in above],
        "seconds": statistics.median(r["seconds"] for r in exports),
    }


def write(rows: list[dict], repeats: int) -> None:
    lines = [
        "# Peak anonymous memory of `optimum-wc export` on FP16 IRs",
        "",
        "`optimum-wc export IR OUT --weight-format int4` (`benchmarks/ir_export_memory.py`), each run a fresh "
        f"interpreter, medians of {repeats}; peak `RssAnon` (sampled every 5 ms) above that of a run that only "
        f"imports the CLI; machine: {os.cpu_count()} cores.",
        "",
        "| IR | parameters | FP16 `.bin` (GiB) | imports (MiB) | peak above imports (MiB) | share of the IR | runs |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['parameters'] / 1e9:.2f}B | {r['ir_bytes'] / 2**30:.2f} "
            f"| {r['imports_bytes'] / 2**20:.0f} | {r['peak_above_imports'] / 2**20:.0f} | **{r['share_of_ir']:.2f}** "
            f"| {', '.join(f'{s:.2f}' for s in r['shares'])} |"
        )
    write_results("ir_export_memory", {"cpu_count": os.cpu_count(), "repeats": repeats, "rows": rows}, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SHAPES), default=["0.5b", "1.5b"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    write([measure(size, args.repeats) for size in args.sizes], args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
