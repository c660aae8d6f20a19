"""The bit-width distribution of a compressed model: share of parameters and layers per precision, and for SpQR
the bits per parameter actually stored."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math

from optimum_wc.kernels import stored_bits_per_weight
from optimum_wc.pipeline.planning import Plan, WeightPlan, kernel_mode

FLOAT_LABEL = "float"


@dataclass(frozen=True)
class PrecisionRow:
    """One precision of the distribution table."""

    label: str
    bits: int
    num_parameters: int
    num_layers: int
    num_ratio_defining_parameters: int
    num_ratio_defining_layers: int
    stored_bits: float | None = None  # mean bits stored per weight, scales included (None: float, SpQR)


def _stored_bits(weight: WeightPlan) -> float | None:
    precision = weight.precision
    if precision is None:
        return None
    axes = weight.target.reduction_axes
    group = precision.group_size if precision.group_size != -1 else math.prod(weight.target.shape[a] for a in axes)
    return stored_bits_per_weight(kernel_mode(precision), group)


@dataclass(frozen=True)
class StoredFootprint:
    """What the SpQR-compressed weights store: bytes by part (codes, statistics, outliers, permutation) over
    their parameters. Weights in other precisions (embeddings, the last layer) are not included."""

    parameters: int
    parts: dict[str, int]
    outliers: int
    layers: int

    @property
    def bits_per_parameter(self) -> float:
        return sum(self.parts.values()) * 8 / max(self.parameters, 1)

    @property
    def outlier_fraction(self) -> float:
        return self.outliers / max(self.parameters, 1)

    def describe(self) -> str:
        shares = ", ".join(f"{name} {size * 8 / max(self.parameters, 1):.3f}" for name, size in self.parts.items())
        return (
            f"SpQR: {self.bits_per_parameter:.3f} bits per parameter over {self.parameters} parameters in "
            f"{self.layers} layers ({shares}); outliers {self.outlier_fraction:.3%}"
        )

    @classmethod
    def total(cls, layers: list[tuple[int, dict[str, int], int]]) -> StoredFootprint | None:
        """The sum over ``(parameters, bytes by part, outliers)`` of each SpQR layer (None for no layer)."""
        if not layers:
            return None
        parts: dict[str, int] = {}
        for _, layer_parts, _ in layers:
            for name, size in layer_parts.items():
                parts[name] = parts.get(name, 0) + size
        return cls(sum(p for p, _, _ in layers), parts, sum(o for _, _, o in layers), len(layers))

    @classmethod
    def from_records(cls, records: dict[str, dict]) -> StoredFootprint | None:
        """From the per-weight records of the rt_info (None when no weight is SpQR-compressed)."""
        return cls.total(
            [(math.prod(r["shape"]), r["stored_bytes"], r["outliers"]) for r in records.values() if "stored_bytes" in r]
        )


@dataclass(frozen=True)
class CompressionSummary:
    """What a compression did, per precision; ``rows`` are sorted by decreasing bits."""

    rows: tuple[PrecisionRow, ...]
    total_parameters: int
    total_layers: int
    ratio_defining_parameters: int
    ratio_defining_layers: int
    stored: StoredFootprint | None = None

    @classmethod
    def from_plan(cls, plan: Plan) -> CompressionSummary:
        groups: dict[tuple[str, int], list[int]] = {}
        bits: dict[tuple[str, int], float | None] = {}  # stored bits summed over the weights
        for weight in plan.weights:
            precision = weight.precision
            key = (FLOAT_LABEL, 32) if precision is None else (precision.label, precision.bits)
            row = groups.setdefault(key, [0, 0, 0, 0])
            stored = _stored_bits(weight)
            bits[key] = None if stored is None else bits.get(key, 0.0) + stored * weight.target.num_elements
            row[0] += weight.target.num_elements
            row[1] += 1
            if weight.ratio_defining:
                row[2] += weight.target.num_elements
                row[3] += 1
        skipped = list({t.constant_name: t for t in plan.skipped}.values())
        if skipped:
            row = groups.setdefault((FLOAT_LABEL, 32), [0, 0, 0, 0])
            row[0] += sum(t.num_elements for t in skipped)
            row[1] += len(skipped)
        rows = tuple(
            PrecisionRow(*key, *values, None if bits.get(key) is None else bits[key] / max(values[0], 1))
            for key, values in groups.items()
        )
        rows = tuple(sorted(rows, key=lambda r: (-r.bits, r.label)))
        ratio = plan.ratio_defining
        stored = StoredFootprint.total(
            [(w.target.num_elements, w.spqr.parts, w.spqr.num_outliers) for w in plan.weights if w.spqr is not None]
        )
        return cls(
            rows=rows,
            total_parameters=sum(r.num_parameters for r in rows),
            total_layers=sum(r.num_layers for r in rows),
            ratio_defining_parameters=sum(w.target.num_elements for w in ratio),
            ratio_defining_layers=len(ratio),
            stored=stored,
        )

    @classmethod
    def combined(cls, summaries: list[CompressionSummary]) -> CompressionSummary:
        """One summary for the OpenVINO models of a pipeline: the rows of one precision summed over them."""
        merged: dict[tuple[str, int], list] = {}
        for summary in summaries:
            for row in summary.rows:
                into = merged.setdefault((row.label, row.bits), [0, 0, 0, 0, 0.0])
                into[0] += row.num_parameters
                into[1] += row.num_layers
                into[2] += row.num_ratio_defining_parameters
                into[3] += row.num_ratio_defining_layers
                weighted = None if row.stored_bits is None else row.stored_bits * row.num_parameters
                into[4] = None if weighted is None or into[4] is None else into[4] + weighted
        rows = tuple(
            PrecisionRow(*key, *values[:4], None if values[4] is None else values[4] / max(values[0], 1))
            for key, values in merged.items()
        )
        footprints = [s.stored for s in summaries if s.stored is not None]
        stored = StoredFootprint.total([(f.parameters, f.parts, f.outliers) for f in footprints])
        return cls(
            rows=tuple(sorted(rows, key=lambda r: (-r.bits, r.label))),
            total_parameters=sum(s.total_parameters for s in summaries),
            total_layers=sum(s.total_layers for s in summaries),
            ratio_defining_parameters=sum(s.ratio_defining_parameters for s in summaries),
            ratio_defining_layers=sum(s.ratio_defining_layers for s in summaries),
            stored=None if stored is None else dataclasses.replace(stored, layers=sum(f.layers for f in footprints)),
        )

    def to_table(self) -> str:
        """A fixed-width text table, as nncf logs it."""
        header = ("Weight compression mode", "% all parameters (layers)", "% ratio-defining parameters (layers)")
        lines = [header]
        for row in self.rows:
            lines.append(
                (
                    row.label,
                    _share(row.num_parameters, self.total_parameters, row.num_layers, self.total_layers),
                    _share(
                        row.num_ratio_defining_parameters,
                        self.ratio_defining_parameters,
                        row.num_ratio_defining_layers,
                        self.ratio_defining_layers,
                    ),
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(3)]
        sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        body = [f"| {' | '.join(cell.ljust(w) for cell, w in zip(line, widths))} |" for line in lines]
        table = "\n".join([sep, body[0], sep.replace("-", "="), *body[1:], sep])
        return table if self.stored is None else f"{table}\n{self.stored.describe()}"


def _share(parameters: int, total_parameters: int, layers: int, total_layers: int) -> str:
    return f"{parameters / max(total_parameters, 1) * 100:.0f}% ({layers} / {total_layers})"
