"""The MatMuls that nncf's layer-wise scheduler hands to GPTQ more than once, and how many times.

nncf computes GPTQ's inputs step by step. A step starts from the tensors it holds (at first the model inputs;
later the inputs of the targets it has processed, and tensors it stopped at) and walks forward, generation by
generation, through the ops whose producers are all known. It stops at a target (a MatMul being compressed),
which ends a path; an op still waiting for some producer ends a path at those producers it did reach. Paths that
share an input tensor merge, and every target at the end of a path is processed in that step.

A target processed in an earlier step is one of the step's starting points. When one of its consumers waits for
a later target (GraniteMoeHybrid's shared MLP, whose output meets the experts' branch), the target ends such a
path and is processed again: GPTQ runs once more on its already quantized weight, with the same inputs. Ours does
the same, so that the bytes are nncf's; :func:`repeats` counts these extra runs by following those rules on the
model's graph (the ops that depend on a model input, as nncf's inference graph holds them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from optimum_wc.openvino.graph import ModelGraph

MAX_STEPS = 10_000  # a bound for graphs the rules never finish on; nncf's loop would not end either


@dataclass
class _Path:
    starts: set[str]
    ends: set[str]
    tensors: set[tuple[str, int]] = field(default_factory=set)


class _Graph:
    """The ops reachable from the Parameters, with their distinct producers and consumers among them."""

    def __init__(self, graph: ModelGraph):
        starts = [op.get_friendly_name() for op in graph.ops if op.get_type_name() == "Parameter"]
        self.inputs = starts
        self.nodes = set().union(*(graph.descendants(name) for name in starts)) if starts else set()
        self.next = {n: list(dict.fromkeys(s for s in graph.successors(n) if s in self.nodes)) for n in self.nodes}
        self.previous: dict[str, set[str]] = {n: set() for n in self.nodes}
        for name, consumers in self.next.items():
            for consumer in consumers:
                self.previous[consumer].add(name)
        self.out_ports = {
            n: {
                port
                for port, output in enumerate(graph.by_name[n].outputs())
                if any(t.get_node().get_friendly_name() in self.nodes for t in output.get_target_inputs())
            }
            for n in self.nodes
        }
        self.in_tensors = {
            n: {
                (v.get_node().get_friendly_name(), v.get_index())
                for v in graph.by_name[n].input_values()
                if v.get_node().get_friendly_name() in self.nodes
            }
            for n in self.nodes
        }


def _merged(paths: list[_Path]) -> list[_Path]:
    while True:
        result: list[_Path] = []
        for path in paths:
            for other in result:
                if not other.tensors.isdisjoint(path.tensors):
                    other.tensors |= path.tensors
                    other.starts |= path.starts
                    other.ends |= path.ends
                    break
            else:
                result.append(path)
        if len(result) == len(paths):
            return result
        paths = result


def _walk(g: _Graph, starts: list[str], targets: set[str], visited: dict[str, bool]) -> tuple[list[_Path], set[str]]:
    """One step's walk: the paths it ends, and the ops it left waiting."""
    reached = {n: {n} for n in starts}
    waiting: dict[str, int] = {}
    waited_on: dict[str, set[str]] = {}
    paths = []
    generation = list(starts)
    while generation:
        following = []
        for node in generation:
            for nxt in g.next[node]:
                if nxt in starts:
                    continue
                reached.setdefault(nxt, set()).update(reached[node])
                waiting.setdefault(nxt, len(g.previous[nxt]))
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    if nxt not in targets:
                        following.append(nxt)
                    elif not visited[nxt]:
                        paths.append(_Path(set(reached[nxt]), {nxt}))
                    visited[nxt] = True
                    del waiting[nxt]
                else:
                    waited_on.setdefault(nxt, set()).add(node)
        generation = following
    for node in waiting:
        if not visited[node]:
            paths.append(_Path(set(reached[node]), set(waited_on[node])))
    return paths, set(waiting)


def repeats(graph: ModelGraph, targets: list[str]) -> Counter[str]:
    """How many times more than once nncf's scheduler hands each of ``targets`` (MatMul names) to GPTQ."""
    g = _Graph(graph)
    wanted = {t for t in targets if t in g.nodes}
    visited = dict.fromkeys(g.nodes, False)
    handed: Counter[str] = Counter()
    starts = list(g.inputs)
    for _ in range(MAX_STEPS):
        if all(visited[t] for t in wanted):
            break
        paths, _ = _walk(g, starts, wanted, visited)
        tensors = {n: (g.in_tensors[n] if n in wanted else {(n, p) for p in g.out_ports[n]}) for n in starts}
        for path in paths:
            for start in path.starts:
                path.tensors |= tensors[start]
        old, new, kept = set(), set(), set()
        for path in _merged(paths):
            ends = [n for n in path.ends if n in wanted]
            extra = set()
            for node in path.ends - set(ends):
                if node in path.starts:
                    kept.add(node)
                elif any(prev not in path.ends for prev in g.previous[node]):
                    extra.add(node)
            if not ends:
                continue
            old |= path.starts
            new |= set(ends) | extra
            handed.update(ends)
        starts = list(new | kept | (set(starts) - old))
    return Counter({t: n - 1 for t, n in handed.items() if n > 1})
