"""benchmarks/accuracy.py's verdicts (ours against nncf, and against the targets) and its JSON and markdown
reports."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import subprocess

from accuracy_configs import (
    BEST_DATA_AWARE_TARGET,
    CALIBRATION_LINES,
    CONFIGS,
    DATA_FREE_BASELINE,
    EVAL_OV_CONFIG,
    KL_TARGET,
    LIBRARIES,
    MB,
    MODEL,
    NUM_WINDOWS,
    OURS_ONLY,
    PERPLEXITY_TARGET,
    ROOT,
    SHARED,
    SPQR_BASELINE,
    SPQR_TARGETS,
    WINDOW_LENGTH,
)


# ------------------------------------------------------------------------------------------------------ verdicts
def verdict(name: str, ours: dict, nncf: dict) -> dict:
    """Ratios ours/nncf and the PASS/FAIL of each target; FAIL when either library failed."""
    min_speedup = CONFIGS[name][2]
    if name in OURS_ONLY:
        if "error" in ours:
            return {"result": "FAIL", "reason": "optimum_wc failed", "min_speedup": None}
        return {"result": "n/a", "reason": "optimum-wc only (nncf has no such option)", "min_speedup": None}
    failed = [lib for lib, r in (("optimum_wc", ours), ("nncf", nncf)) if "error" in r]
    if failed:
        return {"result": "FAIL", "reason": f"{', '.join(failed)} failed", "min_speedup": min_speedup}
    checks = {
        "kl": ours["kl"] <= KL_TARGET * nncf["kl"],
        "perplexity": ours["perplexity"] <= PERPLEXITY_TARGET * nncf["perplexity"],
        "memory": ours["peak_rss_kib"] <= nncf["peak_rss_kib"],
    }
    speedup = nncf["seconds"] / ours["seconds"]
    if min_speedup is not None:
        checks["time"] = speedup >= min_speedup
    return {
        "kl_ratio": ours["kl"] / nncf["kl"] if nncf["kl"] else None,
        "perplexity_ratio": ours["perplexity"] / nncf["perplexity"],
        "time_ratio": ours["seconds"] / nncf["seconds"],
        "speedup": speedup,
        "memory_ratio": ours["peak_rss_kib"] / nncf["peak_rss_kib"],
        "identical_bin": ours["bin_sha256"] == nncf["bin_sha256"],
        "min_speedup": min_speedup,
        "checks": checks,
        "result": "PASS" if all(checks.values()) else "FAIL",
    }


def best_data_aware(rows: list[dict]) -> dict | None:
    """The data-aware INT4_SYM g128 row with the lowest KL (ours, and nncf's), as a ratio to the data-free row."""
    by_name = {row["config"]: row for row in rows}
    baseline = by_name.get(DATA_FREE_BASELINE, {}).get("optimum_wc", {})
    candidates = [
        row
        for row in rows
        if "subset_size" in row["arguments"]
        and row["arguments"]["mode"] == "int4_sym"
        and row["arguments"].get("group_size") == 128
    ]
    if "kl" not in baseline or not candidates:
        return None

    def best(library: str) -> dict | None:
        done = [row for row in candidates if "kl" in row[library]]
        return min(done, key=lambda row: row[library]["kl"]) if done else None

    ours, theirs = best("optimum_wc"), best("nncf")
    if ours is None:
        return None
    return {
        "label": ours["label"],
        "kl": ours["optimum_wc"]["kl"],
        "baseline_kl": baseline["kl"],
        "ratio": ours["optimum_wc"]["kl"] / baseline["kl"],
        "nncf_label": theirs["label"] if theirs else "—",
        "nncf_ratio": theirs["nncf"]["kl"] / by_name[DATA_FREE_BASELINE]["nncf"]["kl"] if theirs else float("nan"),
    }


def spqr_verdicts(rows: list[dict], fp32: dict) -> list[dict]:
    """Each SpQR row against data-free INT4_ASYM g128 (ours): the KL target of its bits per parameter, and whether
    its perplexity is closer to FP32 than every other 4-bit row's (both libraries)."""
    by_name = {row["config"]: row for row in rows}
    baseline = by_name.get(SPQR_BASELINE, {}).get("optimum_wc", {})
    four_bit = [
        row[lib]["perplexity"]
        for row in rows
        for lib in LIBRARIES
        if row["arguments"]["mode"] in ("int4_sym", "int4_asym", "nf4") and "perplexity" in row[lib]
    ]
    best_gap = min((abs(p - fp32["perplexity"]) for p in four_bit), default=None)
    verdicts = []
    for row in rows:
        ours = row["optimum_wc"]
        if row["arguments"]["mode"] != "spqr" or "kl" not in ours or "kl" not in baseline:
            continue
        bits, ratio = ours["bits_per_parameter"], ours["kl"] / baseline["kl"]
        limit = next((limit for max_bits, limit in SPQR_TARGETS if bits <= max_bits), None)
        gap = abs(ours["perplexity"] - fp32["perplexity"])
        checks = {}
        if limit is not None:
            checks["kl"] = ratio < limit if limit == 1 else ratio <= limit
        if limit is not None and limit < 1:  # the ~4.6-bit target also asks for the perplexity closest to FP32
            checks["perplexity"] = best_gap is None or gap < best_gap
        verdicts.append(
            {
                "config": row["config"],
                "label": row["label"],
                "bits": bits,
                "outlier_fraction": ours["outlier_fraction"],
                "kl_ratio": ratio,
                "kl_limit": limit,
                "perplexity_gap": gap,
                "best_other_4bit_gap": best_gap,
                "checks": checks,
                "result": "n/a" if not checks else "PASS" if all(checks.values()) else "FAIL",
            }
        )
    return verdicts


# ------------------------------------------------------------------------------------------------------ reporting
def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def modified_files() -> list[str]:
    """Tracked files with uncommitted changes, other than benchmark results (they do not change what is measured)."""
    lines = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return [line[3:] for line in lines if not line[3:].startswith("benchmarks/results/")]


def git_commit() -> str:
    """HEAD, with "+" when tracked files have uncommitted changes."""
    return git("rev-parse", "HEAD")[:10] + ("+" if modified_files() else "")


def merge_rows(previous_path: pathlib.Path, rows: list[dict]) -> list[dict]:
    """This run's rows, and the previous results' rows for the configurations it did not run, in CONFIGS order."""
    previous = json.loads(previous_path.read_text())
    env = previous["environment"]
    commit = env["optimum_wc_commit"][:10] + ("+" if env["working_tree_modified"] else "")
    by_name = {row["config"]: {"measured_at": commit, **row} for row in previous["configs"]}
    by_name.update({row["config"]: row for row in rows})
    return [by_name[name] for name in CONFIGS if name in by_name]


def environment(repeats: int, load_average_at_start: tuple) -> dict:
    from importlib.metadata import version

    return {
        "optimum_wc_commit": git("rev-parse", "HEAD"),
        "working_tree_modified": modified_files(),
        "load_average_at_start": load_average_at_start,
        "load_average_at_end": os.getloadavg(),
        "repeats": repeats,
        "versions": {p: version(p) for p in ("openvino", "nncf", "optimum-intel", "transformers", "torch", "numpy")},
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "eval_ov_config": EVAL_OV_CONFIG,
        "window_length": WINDOW_LENGTH,
        "num_windows": NUM_WINDOWS,
        "calibration_lines": CALIBRATION_LINES,
        "model": str(MODEL.relative_to(SHARED.parent)),
    }


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def write_markdown(path: pathlib.Path, payload: dict) -> None:
    env, fp32, rows = payload["environment"], payload["fp32"], payload["configs"]
    lines = [
        "# Accuracy, time and memory: optimum-wc vs nncf",
        "",
        f"Model `{env['model']}` (FP32 IR). Perplexity and mean KL divergence (nats/token) to the FP32 model on the "
        f"first {env['num_windows']} windows of {env['window_length']} tokens of `pydoc/valid.txt`, OpenVINO CPU "
        "with f32 inference, f32 KV cache, no activation dynamic quantization. Time = the `compress_weights` call "
        "alone; peak memory = process peak RSS (VmHWM) after it; each run in a fresh process (nncf's process also "
        f"imports torch); median of {env['repeats']} run(s). Data-aware rows: dataset of the first "
        f"{env['calibration_lines']} calibration lines, ratio 1, subset_size 128. openvino "
        f"{env['versions']['openvino']}, nncf {env['versions']['nncf']}, {env['cpu_count']} CPUs (load average "
        f"{env['load_average_at_start'][0]:.2f} at start, {env['load_average_at_end'][0]:.2f} at end), optimum-wc "
        f"commit `{env['optimum_wc_commit'][:10]}`"
        + (" with uncommitted changes" if env["working_tree_modified"] else "")
        + ".",
        "",
        "| Model | Optimization | Perplexity | KL to FP32 | Model size (MB) | Time (s) | Peak memory (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
        f"| tiny-llama-pydoc | FP32 | {fp32['perplexity']:.4f} | {fp32['kl']:.2e} | {fp32['bin_bytes'] / MB:.2f} "
        "| — | — |",
    ]
    for row in rows:
        for library in LIBRARIES:
            r = row[library]
            tool = "optimum-wc" if library == "optimum_wc" else "nncf"
            if r.get("error") == "not applicable":
                lines.append(f"| tiny-llama-pydoc | {row['label']} — {tool} | n/a | n/a | — | — | — |")
                continue
            if "error" in r:
                lines.append(f"| tiny-llama-pydoc | {row['label']} — {tool} | error | error | — | — | — |")
                continue
            lines.append(
                f"| tiny-llama-pydoc | {row['label']} — {tool} | {r['perplexity']:.4f} | {r['kl']:.3e} "
                f"| {r['bin_bytes'] / MB:.2f} | {r['seconds']:.2f} | {r['peak_rss_kib'] / 1024:.0f} |"
            )
    lines += [
        "",
        f"Targets: KL ours <= {KL_TARGET} x nncf, perplexity ours <= {PERPLEXITY_TARGET} x nncf, peak memory ours <= "
        "nncf, and speed-up (nncf time / ours) >= 3 for the AWQ+SE row, >= 5 for the GPTQ rows (no time target for "
        "the data-free rows and AWQ alone).",
        "",
        "| Configuration | KL ours/nncf | Perplexity ours/nncf | Time ours/nncf | Speed-up | Memory ours/nncf "
        "| Same .bin | Result |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        v = row["verdict"]
        if "reason" in v:
            lines.append(f"| {row['label']} | — | — | — | — | — | — | **{v['result']}** ({v['reason']}) |")
            continue
        failed = [name for name, ok in v["checks"].items() if not ok]
        speedup = f"{v['speedup']:.2f}x" + (f" (>= {v['min_speedup']:g})" if v["min_speedup"] else "")
        lines.append(
            f"| {row['label']} | {_cell(v['kl_ratio'], '.4f')} | {v['perplexity_ratio']:.5f} "
            f"| {v['time_ratio']:.3f} | {speedup} | {v['memory_ratio']:.2f} | {'yes' if v['identical_bin'] else 'no'} "
            f"| **{v['result']}**{' (' + ', '.join(failed) + ')' if failed else ''} |"
        )
    best = payload.get("best_data_aware")
    if best:
        lines += [
            "",
            f"Best data-aware INT4_SYM g128 configuration: **{best['label']}**, KL {best['kl']:.3e} = "
            f"{best['ratio']:.3f} x the data-free INT4_SYM g128 KL ({best['baseline_kl']:.3e}); target <= "
            f"{BEST_DATA_AWARE_TARGET} (**{'PASS' if best['ratio'] <= BEST_DATA_AWARE_TARGET else 'FAIL'}**). nncf's "
            f"best: {best['nncf_label']}, {best['nncf_ratio']:.3f} x.",
        ]
    if payload.get("spqr"):
        lines += [
            "",
            "SpQR targets (KL relative to optimum-wc's data-free INT4_ASYM g128): at <= 4.7 bits per parameter, KL "
            "<= 1/3 of it and perplexity closer to FP32 than every other 4-bit row; at <= 4.0 bits, KL below it. "
            "Bits per parameter are the bytes the IR stores for the SpQR layers (codes, quantized statistics, "
            "outliers, permutations) over their parameters; embeddings and the last layer are INT8_ASYM (FP32 in the "
            "backup-none row) and not counted.",
            "",
            "| Configuration | Bits per parameter | Outliers | KL / INT4_ASYM g128 | Perplexity gap to FP32 "
            "(best other 4-bit) | Result |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for v in payload["spqr"]:
            limit = (
                "no target (> 4.7 bits)"
                if v["kl_limit"] is None
                else f"{'<=' if v['kl_limit'] < 1 else '<'} {v['kl_limit']:.3g}"
            )
            gap = f"{v['perplexity_gap']:.4f} ({_cell(v['best_other_4bit_gap'], '.4f')})"
            failed = [name for name, ok in v["checks"].items() if not ok]
            lines.append(
                f"| {v['label']} | {v['bits']:.3f} | {v['outlier_fraction']:.3%} | {v['kl_ratio']:.3f} "
                f"({limit}) | {gap} | **{v['result']}**{' (' + ', '.join(failed) + ')' if failed else ''} |"
            )
        floor = next((row["optimum_wc"] for row in rows if row["config"] == "int8_embeddings_head"), {})
        if "perplexity" in floor:
            lines += [
                "",
                (
                    f"The backup layers alone (INT8_ASYM embeddings and lm_head, every other weight FP32): "
                    f"perplexity gap to FP32 {floor['perplexity'] - fp32['perplexity']:+.4f}, KL "
                    f"{floor['kl']:.2e}. Every 4-bit row but the backup-none one keeps them in INT8_ASYM: a gap below "
                    "this one needs its other layers' errors to cancel theirs."
                ),
            ]
    if env.get("updated_configs"):
        stamps: dict[str, list[str]] = {}
        for row in rows:
            stamps.setdefault(row.get("measured_at", "?"), []).append(row["config"])
        lines += [
            "",
            "Rows measured at different commits (`--update`): "
            + "; ".join(f"`{commit}`: {', '.join(names)}" for commit, names in stamps.items())
            + ".",
        ]
    this_run = [row for row in rows if row["config"] in env.get("updated_configs", [row["config"]])]
    digests = {run.get("source_digest") for row in this_run for run in row["optimum_wc"].get("runs", [])} - {None}
    if len(digests) > 1:
        lines += [
            "",
            f"Note: optimum_wc's sources changed while this ran ({len(digests)} versions; `source_digest` of "
            "each run in accuracy.json), so rows may come from different code.",
        ]
    errors = [
        (row["label"], lib, row[lib]["error"])
        for row in rows
        for lib in LIBRARIES
        if "error" in row[lib] and row[lib]["error"] != "not applicable"
    ]
    if errors:
        lines += ["", "Errors:", ""]
        lines += [f"- {label}, {lib}: `{error.splitlines()[0][:300]}`" for label, lib, error in errors]
    path.write_text("\n".join(lines) + "\n")
