"""Parity grid: optimum-wc vs nncf 3.4.0 over the full data-free configuration grid on the tiny test models.

What it checks: for every configuration both libraries compress the same freshly read IR, save it
(``compress_to_fp16=False``) and the two IRs are compared with ``tests/parity.py::compare_ir`` (same .bin bytes, same
graph up to OpenVINO's auto-generated names, same ``nncf`` rt_info). Configurations:

- each tiny architecture of ``tests/tiny_models.py`` x mode {int4_sym, int4_asym, nf4} x group_size {-1, 32, 64, 128}
  x ratio {1.0, 0.8, 0.5} x all_layers {False, True} x backup_mode {int8_asym, int8_sym, none} (full product);
- each architecture x {int8_asym, int8_sym} with default options;
- ``--grid formats``: each architecture x mode {fp8_e4m3, fp4, int3_sym, int2_sym, cb4} x group_size {-1, 32, 128}
  x ratio {1.0, 0.6} x all_layers x backup_mode {int8_asym, int8_sym, none, fp8_e4m3, mxfp8_e4m3}, and
  {mxfp4, mxfp8_e4m3, nvfp4} (their fixed group size) x the same ratio, all_layers and backup modes; refusals:
  mxfp4 with group 64, nvfp4 with group 32, fp4 with awq, codebook without a codebook;
- invalid combinations both libraries must refuse, on each architecture: for each INT8 mode ratio=0.8,
  group_size=64, all_layers=True, backup_mode=int8_sym; for int4_asym ratio=1.5, group_size=0, group_size=-2,
  subset_size=0. A refusal is any exception; the libraries agree when both raise.

Outcomes per configuration: identical, different (first difference described), both_refused, refusal_mismatch
(only one library raised). Exit code 1 on any ``different`` or ``refusal_mismatch``.

Run (from the repository root; exports are cached in benchmarks/work/tiny_exports):

    python benchmarks/parity.py                       # the full grid (~900 configurations)
    python benchmarks/parity.py --limit 10            # the first 10 configurations, a quick check
    python benchmarks/parity.py --archs llama qwen2   # a subset of architectures
    python benchmarks/parity.py --grid formats        # the other formats (~1450 configurations, parity_formats.*)

Results: ``benchmarks/results/parity.json`` (per-configuration rows + counts) and ``parity.md``.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import logging
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CACHE = ROOT / "benchmarks" / "work" / "tiny_exports"
RESULTS = ROOT / "benchmarks" / "results"

# tests/ goes first on sys.path: this script is also called parity.py, and `import parity` must find tests/parity.py.
sys.path.insert(0, str(TESTS))
import nncf  # noqa: E402

import parity as test_parity  # noqa: E402
import tiny_models  # noqa: E402

assert pathlib.Path(test_parity.__file__).resolve().parent == TESTS, test_parity.__file__

log = logging.getLogger("parity")

FOUR_BIT_GRID = {
    "mode": ["int4_sym", "int4_asym", "nf4"],
    "group_size": [-1, 32, 64, 128],
    "ratio": [1.0, 0.8, 0.5],
    "all_layers": [False, True],
    "backup_mode": ["int8_asym", "int8_sym", "none"],
}
# the other nncf formats (``--grid formats``): free group sizes, then the MX/NVFP4 modes with their fixed one
FORMATS_GRID = {
    "mode": ["fp8_e4m3", "fp4", "int3_sym", "int2_sym", "cb4"],
    "group_size": [-1, 32, 128],
    "ratio": [1.0, 0.6],
    "all_layers": [False, True],
    "backup_mode": ["int8_asym", "int8_sym", "none", "fp8_e4m3", "mxfp8_e4m3"],
}
FIXED_GROUP_GRID = {
    "mode": ["mxfp4", "mxfp8_e4m3", "nvfp4"],
    "ratio": [1.0, 0.6],
    "all_layers": [False, True],
    "backup_mode": ["int8_asym", "int8_sym", "none", "fp8_e4m3", "mxfp8_e4m3"],
}
INVALID_FORMAT_OPTIONS = [
    {"mode": "mxfp4", "group_size": 64},
    {"mode": "nvfp4", "group_size": 32},
    {"mode": "fp4", "awq": True},
    {"mode": "codebook"},
]
INVALID_INT8_OPTIONS = [{"ratio": 0.8}, {"group_size": 64}, {"all_layers": True}, {"backup_mode": "int8_sym"}]
INVALID_FOUR_BIT_OPTIONS = [{"ratio": 1.5}, {"group_size": 0}, {"group_size": -2}, {"subset_size": 0}]


def _product(grid: dict) -> list[dict]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def format_configurations(archs: list[str]) -> list[dict]:
    """The ``formats`` grid: every combination of FORMATS_GRID and FIXED_GROUP_GRID, and refusals."""
    rows = []
    for arch in archs:
        for kwargs in _product(FORMATS_GRID) + _product(FIXED_GROUP_GRID):
            rows.append({"arch": arch, "expect": "valid", "kwargs": kwargs})
        rows += [{"arch": arch, "expect": "refused", "kwargs": dict(extra)} for extra in INVALID_FORMAT_OPTIONS]
    return rows


def configurations(archs: list[str]) -> list[dict]:
    """Rows ``{"arch", "expect", "kwargs"}`` with kwargs in optimum-wc's spelling (enum values as strings)."""
    rows = []
    for arch in archs:
        names = list(FOUR_BIT_GRID)
        for values in itertools.product(*FOUR_BIT_GRID.values()):
            rows.append({"arch": arch, "expect": "valid", "kwargs": dict(zip(names, values))})
        for mode in ("int8_asym", "int8_sym"):
            rows.append({"arch": arch, "expect": "valid", "kwargs": {"mode": mode}})
    for arch in archs:
        for mode in ("int8_asym", "int8_sym"):
            for extra in INVALID_INT8_OPTIONS:
                rows.append({"arch": arch, "expect": "refused", "kwargs": {"mode": mode, **extra}})
        for extra in INVALID_FOUR_BIT_OPTIONS:
            rows.append({"arch": arch, "expect": "refused", "kwargs": {"mode": "int4_asym", **extra}})
    return rows


def nncf_kwargs(kwargs: dict) -> dict:
    """The same arguments with nncf's own enum members."""
    converted = dict(kwargs)
    if "mode" in converted:
        converted["mode"] = nncf.CompressWeightsMode(converted["mode"])
    if "backup_mode" in converted:
        converted["backup_mode"] = nncf.BackupMode(converted["backup_mode"])
    return converted


def _attempt(xml: pathlib.Path, out_dir: pathlib.Path, library: str, kwargs: dict) -> tuple[pathlib.Path | None, dict]:
    start = time.perf_counter()
    try:
        path = test_parity.compress_and_save(xml, out_dir, library, **kwargs)
        error = None
    except Exception as exc:  # noqa: BLE001 - any exception is a refusal
        path, error = None, {"type": type(exc).__name__, "message": str(exc).strip()[:300]}
    return path, {"seconds": round(time.perf_counter() - start, 3), "error": error}


def run_row(row: dict, xml: pathlib.Path, tmp: pathlib.Path) -> dict:
    """Runs both libraries on one configuration and classifies the outcome."""
    pair_dir = pathlib.Path(tempfile.mkdtemp(dir=tmp))
    try:
        ref, nncf_run = _attempt(xml, pair_dir / "nncf", "nncf", nncf_kwargs(row["kwargs"]))
        ours, ours_run = _attempt(xml, pair_dir / "ours", "optimum_wc", row["kwargs"])
        result = {**row, "nncf": nncf_run, "optimum_wc": ours_run}
        if ref is None and ours is None:
            result["outcome"] = "both_refused"
        elif ref is None or ours is None:
            result["outcome"] = "refusal_mismatch"
            result["difference"] = "only {} refused".format("nncf" if ref is None else "optimum_wc")
        else:
            report = test_parity.compare_ir(ref, ours)
            result["outcome"] = "identical" if report.identical else "different"
            if not report.identical:
                result["difference"] = report.describe()[:2000]
        return result
    finally:
        shutil.rmtree(pair_dir, ignore_errors=True)


def row_label(row: dict) -> str:
    return row["arch"] + " " + " ".join(f"{k}={v}" for k, v in row["kwargs"].items())


def count(results: list[dict]) -> dict:
    outcomes = collections.Counter(r["outcome"] for r in results)
    return {
        "total": len(results),
        "identical": outcomes["identical"],
        "different": outcomes["different"],
        "both_refused": outcomes["both_refused"],
        "refusal_mismatch": outcomes["refusal_mismatch"],
        # Agreements that contradict the grid's expectation (not failures, but worth a look).
        "valid_but_both_refused": sum(r["expect"] == "valid" and r["outcome"] == "both_refused" for r in results),
        "invalid_but_both_accepted": sum(
            r["expect"] == "refused" and r["outcome"] != "both_refused" and r["outcome"] != "refusal_mismatch"
            for r in results
        ),
    }


def write_results(results: list[dict], counts: dict, meta: dict, name: str = "parity") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "counts": counts, "rows": results}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# Parity: optimum-wc vs nncf 3.4.0 (tiny models, full data-free {meta['grid']} grid)",
        "",
        f"Architectures: {', '.join(meta['archs'])}; {meta['seconds']:.0f} s in all"
        + (f"; limited to the first {meta['limit']} configurations" if meta["limit"] else "")
        + ".",
        "",
        "| count | value |",
        "|---|---:|",
    ]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in counts.items()]
    mismatches = [r for r in results if r["outcome"] in ("different", "refusal_mismatch")]
    lines += ["", "## Mismatches", ""]
    if not mismatches:
        lines.append("None.")
    for r in mismatches:
        errors = ", ".join(f"{lib}: {r[lib]['error']['type']}" for lib in ("nncf", "optimum_wc") if r[lib]["error"])
        lines.append(f"- `{row_label(r)}`: {r['outcome']}: {r['difference']}" + (f" ({errors})" if errors else ""))
    refused = [r for r in results if r["outcome"] == "both_refused"]
    refusals = collections.Counter((r["nncf"]["error"]["type"], r["optimum_wc"]["error"]["type"]) for r in refused)
    if refusals:
        lines += ["", "## Refusals (exception classes, nncf / optimum-wc)", ""]
        lines += [f"- {a} / {b}: {n}" for (a, b), n in sorted(refusals.items())]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--archs", nargs="+", choices=sorted(tiny_models.ARCHITECTURES), default=list(tiny_models.ARCHITECTURES)
    )
    parser.add_argument("--limit", type=int, default=0, help="run only the first N configurations")
    parser.add_argument("--grid", choices=["int", "formats"], default="int", help="INT4/NF4/INT8, or the others")
    parser.add_argument("--results-name", help="file name of the results (default: parity, parity_formats)")
    args = parser.parse_args()
    name = args.results_name or ("parity" if args.grid == "int" else "parity_formats")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    nncf.set_log_level(logging.ERROR)
    logging.getLogger("optimum_wc").setLevel(logging.ERROR)

    rows = (configurations if args.grid == "int" else format_configurations)(args.archs)
    rows = rows[: args.limit] if args.limit else rows
    xmls = {arch: tiny_models.export_cached(arch, CACHE) for arch in sorted({r["arch"] for r in rows})}
    log.info("%d configurations on %s", len(rows), ", ".join(xmls))
    start, results = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="parity_") as tmp:
        for i, row in enumerate(rows, 1):
            result = run_row(row, xmls[row["arch"]], pathlib.Path(tmp))
            results.append(result)
            if result["outcome"] in ("different", "refusal_mismatch"):
                log.warning("MISMATCH %s: %s", row_label(row), result["difference"][:300])
            if i % 25 == 0 or i == len(rows):
                elapsed = time.perf_counter() - start
                log.info(
                    "%d/%d done, %.1f s/config, about %.0f s left",
                    i,
                    len(rows),
                    elapsed / i,
                    elapsed / i * (len(rows) - i),
                )
    counts = count(results)
    meta = {"archs": list(xmls), "limit": args.limit, "seconds": time.perf_counter() - start, "grid": args.grid}
    write_results(results, counts, meta, name)
    log.info("Counts: %s", counts)
    log.info("Wrote %s and %s", RESULTS / f"{name}.json", RESULTS / f"{name}.md")
    return 1 if counts["different"] or counts["refusal_mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
