"""A small deterministic pairwise (all-pairs) covering-array generator for the parity tests."""

from __future__ import annotations

from itertools import combinations
from typing import Any, Callable


def all_pairs(factors: dict[str, list[Any]], allowed: Callable[[dict], bool] = lambda row: True) -> list[dict]:
    """Returns rows (dicts factor -> value) such that every pair of values of two factors that some allowed row
    can hold appears in at least one row. Greedy: each row starts from the first uncovered pair and takes, factor
    by factor, the value that covers the most new pairs among those ``allowed`` accepts in the row so far (it is
    called with partial rows, too)."""
    names = list(factors)
    uncovered = {((a, va), (b, vb)) for a, b in combinations(names, 2) for va in factors[a] for vb in factors[b]}
    rows: list[dict] = []
    while uncovered:
        (a, va), (b, vb) = min(uncovered, key=lambda p: (names.index(p[0][0]), names.index(p[1][0]), str(p)))
        row = {a: va, b: vb}
        for name in names:
            if name in row:
                continue
            candidates = [v for v in factors[name] if allowed({**row, name: v})] or factors[name]
            best = max(
                candidates,
                key=lambda v: sum(
                    ((n, row[n]), (name, v)) in uncovered or ((name, v), (n, row[n])) in uncovered for n in row
                ),
            )
            row[name] = best
        row = {n: row[n] for n in names}
        if not allowed(row):
            uncovered.discard(((a, va), (b, vb)))
            continue
        rows.append(row)
        for x, y in combinations(names, 2):
            uncovered.discard(((x, row[x]), (y, row[y])))
    return rows


def missing_pairs(factors: dict[str, list[Any]], rows: list[dict]) -> list[tuple]:
    """Pairs of values that no row holds (used to check the generator itself)."""
    missing = []
    for a, b in combinations(list(factors), 2):
        for va in factors[a]:
            for vb in factors[b]:
                if not any(r[a] == va and r[b] == vb for r in rows):
                    missing.append(((a, va), (b, vb)))
    return missing
