"""Which ops to leave alone: the user's ``IgnoredScope`` plus positional-embedding MatMuls found by pattern.

The rotary (RoPE) and SAM positional-embedding MatMuls multiply positions by a constant frequency table; they are
not layers, and nncf never compresses them. They are recognised by the small subgraphs below, matched as
node-induced subgraphs: the matched ops must be joined by exactly the listed edges (repeats count), while edges to
ops outside the match are allowed.
"""

from __future__ import annotations

from collections import Counter
import itertools
import re

from optimum_wc.config.scope import IgnoredScope
from optimum_wc.errors import InvalidArgumentError
from optimum_wc.openvino.graph import ModelGraph

# Each pattern: op types by label (label 0 is the MatMul), then edges between labels.
POSITIONAL_PATTERNS: list[tuple[tuple[str, ...], tuple[tuple[int, int], ...]]] = [
    # MatMul -> Transpose -> Concat (twice) -> Cos, Sin
    (("MatMul", "Transpose", "Concat", "Cos", "Sin"), ((0, 1), (1, 2), (1, 2), (2, 3), (2, 4))),
    # SAM: MatMul -> Multiply -> Cos, Sin -> Concat
    (("MatMul", "Multiply", "Cos", "Sin", "Concat"), ((0, 1), (1, 2), (1, 3), (2, 4), (3, 4))),
    # MatMul -> Concat (twice) -> Cos, Sin
    (("MatMul", "Concat", "Cos", "Sin"), ((0, 1), (0, 1), (1, 2), (1, 3))),
    # MatMul -> Transpose -> Cos, Sin
    (("MatMul", "Transpose", "Cos", "Sin"), ((0, 1), (1, 2), (1, 3))),
]


def _edge_counts(graph: ModelGraph, names: list[str]) -> Counter:
    members = set(names)
    index = {name: i for i, name in enumerate(names)}
    counts: Counter = Counter()
    for name in names:
        for target in graph.successors(name):
            if target in members:
                counts[(index[name], index[target])] += 1
    return counts


def _matches(graph: ModelGraph, matmul: str, types: tuple[str, ...], edges: tuple[tuple[int, int], ...]) -> bool:
    """Whether some ops, with ``matmul`` as label 0, form the pattern as a node-induced subgraph."""
    wanted = Counter(edges)
    candidates: list[list[str]] = [[matmul]]
    for label in range(1, len(types)):
        near = set()
        for src, dst in edges:  # ops adjacent to an earlier label, of the right type
            if dst == label and src < label:
                near.update(n for c in candidates[src] for n in graph.successors(c))
            if src == label and dst < label:
                near.update(
                    graph.by_name[n].input_value(i).get_node().get_friendly_name()
                    for n in candidates[dst]
                    for i in range(len(graph.by_name[n].inputs()))
                )
        candidates.append(sorted(n for n in near if graph.type_of(n) == types[label]))
    for combo in itertools.product(*candidates):
        if len(set(combo)) == len(combo) and _edge_counts(graph, list(combo)) == wanted:
            return True
    return False


def positional_embedding_matmuls(graph: ModelGraph) -> set[str]:
    """Names of the MatMuls at the head of a RoPE or SAM positional-embedding subgraph."""
    found = set()
    for name in graph.order:
        if graph.type_of(name) != "MatMul":
            continue
        if any(_matches(graph, name, types, edges) for types, edges in POSITIONAL_PATTERNS):
            found.add(name)
    return found


def ignored_scope_names(graph: ModelGraph, scope: IgnoredScope) -> set[str]:
    """Names of every op (or weight constant) that ``scope`` matches.

    Raises:
        InvalidArgumentError: ``scope.validate`` is set and a rule matches nothing; all such rules are listed.
    """
    names = set(graph.by_name)
    matched: set[str] = set()
    unmatched: list[str] = []
    for name in scope.names:
        if name in names:
            matched.add(name)
        else:
            unmatched.append(f"names {name!r}")
    for pattern in scope.patterns:
        hits = {n for n in names if re.match(pattern, n)}
        matched |= hits
        if not hits:
            unmatched.append(f"patterns {pattern!r}")
    for op_type in scope.types:
        hits = {n for n in names if graph.type_of(n) == op_type}
        matched |= hits
        if not hits:
            unmatched.append(f"types {op_type!r}")
    for subgraph in scope.subgraphs:
        hits = _subgraph_names(graph, subgraph.inputs, subgraph.outputs)
        matched |= hits
        if not hits:
            unmatched.append(f"subgraph with inputs {subgraph.inputs} and outputs {subgraph.outputs}")
    if scope.validate and unmatched:
        msg = (
            "`ignored_scope` has rules that match no node of the model: "
            + "; ".join(unmatched)
            + ". Fix them, or pass IgnoredScope(..., validate=False)."
        )
        raise InvalidArgumentError(msg)
    return matched


def _subgraph_names(graph: ModelGraph, inputs: list[str], outputs: list[str]) -> set[str]:
    """Every op on a path from one of ``inputs`` to one of ``outputs``."""
    found: set[str] = set()
    for start in inputs:
        if start not in graph.by_name:
            continue
        below = graph.descendants(start)
        for end in outputs:
            if end in below:
                found |= below & graph.ancestors(end)
    return found
