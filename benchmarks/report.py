"""Writing a benchmark's results: the JSON payload and the markdown table, side by side in ``results/``."""

from __future__ import annotations

import json
import pathlib

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def write_results(name: str, payload: dict, lines: list[str]) -> None:
    """Writes ``results/<name>.json`` and ``results/<name>.md`` (``lines``), and prints the markdown."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
