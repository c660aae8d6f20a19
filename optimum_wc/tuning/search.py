"""The configurations ``tune`` may try: a validated grid, expanded into candidates that ``compress_weights`` accepts.

A :class:`SearchSpace` lists values per parameter; :meth:`SearchSpace.candidates` takes their product, folds the
combinations that give the same model into one (INT8 modes ignore group size, ratio, ``all_layers`` and the 4-bit
algorithms), and drops the ones ``compress_weights`` refuses (e.g. GPTQ with NF4), so every candidate can run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
import itertools
import logging
import numbers
from typing import Any

from optimum_wc.config.enums import BackupMode, CompressWeightsMode, coerce_enum
from optimum_wc.config.settings import INT8_MODES, CompressionSettings
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, OptimumWCError

logger = logging.getLogger(__name__)

# Relative compute cost of each data-aware algorithm: equal-size candidates are tried cheapest first.
ALGORITHM_COST = {"awq": 1, "scale_estimation": 2, "gptq": 4}
ALGORITHMS = tuple(ALGORITHM_COST)


@dataclass(frozen=True)
class Candidate:
    """One configuration to try: the ``compress_weights`` arguments that define it."""

    mode: CompressWeightsMode
    group_size: int = -1
    ratio: float = 1.0
    all_layers: bool = False
    backup_mode: BackupMode = BackupMode.INT8_ASYM
    awq: bool = False
    scale_estimation: bool = False
    gptq: bool = False

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(name for name in ALGORITHMS if getattr(self, name))

    @property
    def data_aware(self) -> bool:
        return bool(self.algorithms)

    @property
    def compute_cost(self) -> int:
        return sum(ALGORITHM_COST[name] for name in self.algorithms)

    @property
    def name(self) -> str:
        """NNCF's naming (``INT4_ASYM,group_size=64,ratio=0.8``), then the options that differ from the defaults."""
        if self.mode in INT8_MODES:
            return self.mode.name
        parts = [self.mode.name, f"group_size={self.group_size}", f"ratio={self.ratio}"]
        if self.all_layers:
            parts.append("all_layers")
        if self.backup_mode != BackupMode.INT8_ASYM and self.ratio < 1:
            parts.append(f"backup_mode={self.backup_mode.name}")
        return ",".join(parts + list(self.algorithms))

    def compress_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``compress_weights`` / ``WeightCompressionConfig`` (our vocabulary)."""
        if self.mode in INT8_MODES:
            return {"mode": self.mode.value}
        options: dict[str, Any] = {
            "mode": self.mode.value,
            "group_size": self.group_size,
            "ratio": self.ratio,
            "all_layers": self.all_layers,
            "backup_mode": self.backup_mode.value,
        }
        options.update({name: True for name in self.algorithms})
        return options

    def sizing(self) -> Candidate:
        """The candidate whose model has the same size: the algorithms change values, not the layout."""
        return replace(self, awq=False, scale_estimation=False, gptq=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.compress_kwargs()}


def _as_tuple(value: Any, argument: str) -> tuple:
    values = tuple(value) if isinstance(value, (list, tuple, set, frozenset)) else (value,)
    if not values:
        raise InvalidArgumentError(f"`{argument}` must list at least one value.")
    return values


def _check_group_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (value != -1 and value <= 0):
        raise InvalidArgumentError(f"`group_sizes` values must be positive ints or -1 (per channel), got {value!r}.")
    return int(value)


def _check_ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise InvalidArgumentError(f"`ratios` values must be numbers in (0, 1], got {value!r}.")
    return float(value)


def _check_flag(value: Any, argument: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentTypeError(f"`{argument}` values must be True or False, got {value!r}.")
    return value


@dataclass(frozen=True)
class SearchSpace:
    """The grid ``tune`` searches: one tuple of values per parameter (a single value is accepted too).

    The default covers the data-free 4-bit modes with group sizes 128, 64, 32 and per channel, ratios 1.0, 0.8 and
    0.6, with and without ``all_layers``, and INT8_ASYM as the fallback. ``awq``, ``scale_estimation`` and
    ``gptq`` take ``(False, True)`` to add data-aware variants (they need a calibration dataset).

    Raises:
        InvalidArgumentError: An empty tuple, or a value ``compress_weights`` never accepts (names the field).
    """

    modes: tuple = (
        CompressWeightsMode.INT4_SYM,
        CompressWeightsMode.INT4_ASYM,
        CompressWeightsMode.NF4,
        CompressWeightsMode.INT8_ASYM,
    )
    group_sizes: tuple = (128, 64, 32, -1)
    ratios: tuple = (1.0, 0.8, 0.6)
    all_layers: tuple = (False, True)
    backup_modes: tuple = (BackupMode.INT8_ASYM,)
    awq: tuple = (False,)
    scale_estimation: tuple = (False,)
    gptq: tuple = (False,)

    def __post_init__(self) -> None:
        checks = {
            "modes": lambda v: coerce_enum(v, CompressWeightsMode, "modes"),
            "group_sizes": _check_group_size,
            "ratios": _check_ratio,
            "all_layers": lambda v: _check_flag(v, "all_layers"),
            "backup_modes": lambda v: coerce_enum(v, BackupMode, "backup_modes"),
            **{name: (lambda v, name=name: _check_flag(v, name)) for name in ALGORITHMS},
        }
        for item in fields(self):
            values = tuple(dict.fromkeys(checks[item.name](v) for v in _as_tuple(getattr(self, item.name), item.name)))
            object.__setattr__(self, item.name, values)

    @property
    def data_aware(self) -> bool:
        """Whether some candidate runs a data-aware algorithm (then a calibration dataset is needed)."""
        return any(True in getattr(self, name) for name in ALGORITHMS)

    def candidates(self) -> list[Candidate]:
        """Every distinct configuration of the grid that ``compress_weights`` accepts, in grid order."""
        found: dict[Candidate, None] = {}
        refused: list[str] = []
        grid = itertools.product(
            self.modes,
            self.group_sizes,
            self.ratios,
            self.all_layers,
            self.backup_modes,
            self.awq,
            self.scale_estimation,
            self.gptq,
        )
        for mode, group_size, ratio, all_layers, backup, awq, se, gptq in grid:
            if mode in INT8_MODES:
                if awq or se or gptq:
                    continue
                candidate = Candidate(mode)
            else:
                candidate = Candidate(mode, group_size, ratio, all_layers, backup, awq, se, gptq)
            if candidate in found:
                continue
            try:
                CompressionSettings.from_arguments(**_settings_kwargs(candidate))
            except OptimumWCError as exc:
                refused.append(f"{candidate.name} ({exc})")
                continue
            found[candidate] = None
        if refused:
            logger.info("Skipped %d combinations that compress_weights refuses, e.g. %s", len(refused), refused[0])
        if not found:
            raise InvalidArgumentError(
                f"`search` holds no configuration that compress_weights accepts; refused: {'; '.join(refused[:3])}."
            )
        return list(found)


def _settings_kwargs(candidate: Candidate) -> dict[str, Any]:
    """Arguments that validate ``candidate`` as ``compress_weights`` would (a placeholder stands for the dataset)."""
    options = candidate.compress_kwargs()
    if candidate.data_aware:
        options["dataset"] = [{}]
    return options


SEARCH_KEYS = {field.name: field.name for field in fields(SearchSpace)} | {
    "mode": "modes",
    "group_size": "group_sizes",
    "ratio": "ratios",
    "backup_mode": "backup_modes",
}
BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def _parse_value(key: str, text: str) -> Any:
    if key in ("group_sizes",):
        try:
            return int(text)
        except ValueError:
            raise InvalidArgumentError(f"--search {key}: {text!r} is not an int (use -1 for per channel).") from None
    if key == "ratios":
        try:
            return float(text)
        except ValueError:
            raise InvalidArgumentError(f"--search {key}: {text!r} is not a number in (0, 1].") from None
    if key in ("all_layers",) + ALGORITHMS:
        if text.lower() not in BOOLEAN_WORDS:
            raise InvalidArgumentError(f"--search {key}: {text!r} is not one of true, false.")
        return BOOLEAN_WORDS[text.lower()]
    return text.lower()


def parse_search(items: list[str] | None) -> SearchSpace:
    """A :class:`SearchSpace` from ``KEY=V1,V2`` strings (the CLI's ``--search``); unnamed keys keep their defaults.

    Example: ``["modes=int4_sym,int4_asym", "group_sizes=128,64", "ratios=1,0.8", "awq=false,true"]``.
    """
    values: dict[str, tuple] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        field_name = SEARCH_KEYS.get(key.strip().replace("-", "_"))
        if not sep or field_name is None or not text.strip():
            raise InvalidArgumentError(
                f"--search {item!r}: expected KEY=V1,V2 with KEY one of "
                f"{', '.join(f.name for f in fields(SearchSpace))}."
            )
        values[field_name] = tuple(_parse_value(field_name, v.strip()) for v in text.split(",") if v.strip())
    return SearchSpace(**values)
