"""``IgnoredScope``: the layers to leave uncompressed, by name, regular expression, op type or subgraph."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
import re

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError


def _string_list(value: object, argument: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        msg = f"`{argument}` must be a list of strings, got {type(value).__name__}."
        raise InvalidArgumentTypeError(msg)
    items = list(value)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        msg = f"`{argument}` must hold strings only, got {bad[:3]!r}."
        raise InvalidArgumentTypeError(msg)
    return items


@dataclass
class Subgraph:
    """Every node on a path from one of ``inputs`` to one of ``outputs`` (node names, both ends included)."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inputs = _string_list(self.inputs, "Subgraph.inputs")
        self.outputs = _string_list(self.outputs, "Subgraph.outputs")


@dataclass
class IgnoredScope:
    """Layers excluded from compression, as in ``nncf.IgnoredScope``.

    Args:
        names: Node names (the ``friendly_name`` of an op, or of a weight constant).
        patterns: Regular expressions matched (``re.match``) against node names.
        types: OpenVINO op type names, e.g. ``"MatMul"``.
        subgraphs: :class:`Subgraph` objects; every node on a path from an input to an output is ignored.
        validate: When True, a rule that matches no node raises :class:`~optimum_wc.errors.InvalidArgumentError`.
    """

    names: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    subgraphs: list[Subgraph] = field(default_factory=list)
    validate: bool = True

    def __post_init__(self) -> None:
        self.names = _string_list(self.names, "ignored_scope.names")
        self.patterns = _string_list(self.patterns, "ignored_scope.patterns")
        self.types = _string_list(self.types, "ignored_scope.types")
        for pattern in self.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                msg = f"`ignored_scope.patterns` holds an invalid regular expression {pattern!r}: {exc}."
                raise InvalidArgumentError(msg) from exc
        if not isinstance(self.subgraphs, (list, tuple)):
            msg = f"`ignored_scope.subgraphs` must be a list of Subgraph, got {type(self.subgraphs).__name__}."
            raise InvalidArgumentTypeError(msg)
        self.subgraphs = [_to_subgraph(s) for s in self.subgraphs]
        if not isinstance(self.validate, bool):
            msg = f"`ignored_scope.validate` must be a bool, got {type(self.validate).__name__}."
            raise InvalidArgumentTypeError(msg)

    @property
    def is_empty(self) -> bool:
        return not (self.names or self.patterns or self.types or self.subgraphs)

    def rt_info_entries(self) -> dict[str, str]:
        """The entries nncf writes for this scope under ``weight_compression/ignored_scope``: non-empty fields only."""
        entries = dataclasses.asdict(self)
        entries.pop("validate")
        return {key: str(value) for key, value in entries.items() if value}


def _to_subgraph(value: object) -> Subgraph:
    if isinstance(value, Subgraph):
        return value
    if hasattr(value, "inputs") and hasattr(value, "outputs"):  # nncf.Subgraph, matched by shape
        return Subgraph(list(value.inputs), list(value.outputs))
    msg = f"`ignored_scope.subgraphs` must hold Subgraph objects, got {type(value).__name__}."
    raise InvalidArgumentTypeError(msg)


def coerce_ignored_scope(value: object) -> IgnoredScope | None:
    """Returns an :class:`IgnoredScope` for ours, nncf's (matched by its fields) or None."""
    if value is None or isinstance(value, IgnoredScope):
        return value
    fields = ("names", "patterns", "types", "subgraphs", "validate")
    if all(hasattr(value, name) for name in fields):
        return IgnoredScope(**{name: getattr(value, name) for name in fields})
    msg = f"`ignored_scope` must be an IgnoredScope (ours or nncf's) or None, got {type(value).__name__}."
    raise InvalidArgumentTypeError(msg)
