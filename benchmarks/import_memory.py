"""What starting optimum-wc costs: anonymous memory and time of its imports, beside nncf's, and the peak of
``optimum-wc export`` on an IR folder (the core alone) beside the same export through the Hugging Face path.

Each measurement runs in a fresh interpreter; memory is ``RssAnon`` (what cannot be dropped; the high-water mark,
sampled every 5 ms, for the exports), median of ``--repeats`` alternating runs. The IR is the embedded model
(``models/tiny-llama-pydoc``) exported to a float IR once, so that the export rows show the imports' share.

Run: ``python benchmarks/import_memory.py [--repeats 5]``. Results: ``benchmarks/results/import_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

SAMPLER = textwrap.dedent("""
    import threading, time
    def _anon():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))
    _peak = [_anon()]
    def _sample():
        while True:
            _peak[0] = max(_peak[0], _anon())
            time.sleep(0.005)
    threading.Thread(target=_sample, daemon=True).start()
    _start = time.perf_counter()
""")
REPORT = textwrap.dedent("""
    import json
    _peak[0] = max(_peak[0], _anon())
    print(json.dumps({"anon": _anon(), "peak": _peak[0], "seconds": time.perf_counter() - _start}))
""")


def cases(ir: pathlib.Path, out: pathlib.Path) -> dict[str, str]:
    export = ["export", str(ir), str(out), "--weight-format", "int4", "--no-progress", "--overwrite"]
    return {
        "import optimum_wc": "import optimum_wc",
        "import nncf": "import nncf",
        "optimum-wc CLI start (import, parser)": "from optimum_wc import cli\ncli.build_parser()",
        "optimum-wc export IR int4 (core)": f"from optimum_wc import cli\nassert cli.main({export!r}) == 0",
        "optimum-wc export IR int4 (Hugging Face path)": textwrap.dedent(f"""
            from optimum_wc import OVModelForCausalLM
            from optimum_wc.cli import build_parser, config_from_args
            config = config_from_args(build_parser().parse_args({export!r}))
            model = OVModelForCausalLM.from_pretrained({str(ir)!r}, quantization_config=config, compile=False,
                                                       progress=False)
            model.save_pretrained({str(out)!r})
        """),
    }


def run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SAMPLER + code + REPORT], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        ir = pathlib.Path(work) / "ir"
        run(
            "from optimum_wc import OVModelForCausalLM\n"
            f"OVModelForCausalLM.from_pretrained({str(REPO / 'models' / 'tiny-llama-pydoc')!r}, export=True, "
            f"load_in_8bit=False, compile=False).save_pretrained({str(ir)!r})"
        )
        table = cases(ir, pathlib.Path(work) / "out")
        samples: dict[str, list[dict]] = {name: [] for name in table}
        for _ in range(args.repeats):
            for name, code in table.items():
                samples[name].append(run(code))
    rows = []
    for name, runs in samples.items():
        rows.append(
            {
                "case": name,
                "anon_mib": statistics.median(r["anon"] for r in runs) / 2**20,
                "peak_anon_mib": statistics.median(r["peak"] for r in runs) / 2**20,
                "seconds": statistics.median(r["seconds"] for r in runs),
            }
        )
    by_case = {row["case"]: row for row in rows}
    ratios = {
        "import optimum_wc / import nncf (anonymous memory)": by_case["import optimum_wc"]["anon_mib"]
        / by_case["import nncf"]["anon_mib"],
        "export IR core / Hugging Face path (peak anonymous memory)": by_case["optimum-wc export IR int4 (core)"][
            "peak_anon_mib"
        ]
        / by_case["optimum-wc export IR int4 (Hugging Face path)"]["peak_anon_mib"],
        "export IR core / Hugging Face path (time)": by_case["optimum-wc export IR int4 (core)"]["seconds"]
        / by_case["optimum-wc export IR int4 (Hugging Face path)"]["seconds"],
    }
    RESULTS.mkdir(exist_ok=True)
    payload = {"repeats": args.repeats, "rows": rows, "ratios": ratios}
    (RESULTS / "import_memory.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Import memory",
        "",
        f"Fresh interpreter per run, median of {args.repeats} alternating runs; `RssAnon` at the end and its peak "
        "(sampled every 5 ms). The IR is the embedded model as a float IR. Regenerate with "
        "`python benchmarks/import_memory.py`.",
        "",
        "| Case | Anonymous memory at the end (MiB) | Peak anonymous memory (MiB) | Time (s) |",
        "|---|---:|---:|---:|",
        *[f"| {r['case']} | {r['anon_mib']:.0f} | {r['peak_anon_mib']:.0f} | {r['seconds']:.2f} |" for r in rows],
        "",
        "| Ratio | Value |",
        "|---|---:|",
        *[f"| {name} | {value:.2f} |" for name, value in ratios.items()],
        "",
    ]
    (RESULTS / "import_memory.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
