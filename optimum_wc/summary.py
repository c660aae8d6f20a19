"""The bit-width distribution of a compressed model: share of parameters and layers per precision."""

from __future__ import annotations

from dataclasses import dataclass

from optimum_wc.planning import Plan

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


@dataclass(frozen=True)
class CompressionSummary:
    """What a compression did, per precision; ``rows`` are sorted by decreasing bits."""

    rows: tuple[PrecisionRow, ...]
    total_parameters: int
    total_layers: int
    ratio_defining_parameters: int
    ratio_defining_layers: int

    @classmethod
    def from_plan(cls, plan: Plan) -> CompressionSummary:
        groups: dict[tuple[str, int], list[int]] = {}
        for weight in plan.weights:
            precision = weight.precision
            key = (FLOAT_LABEL, 32) if precision is None else (precision.label, precision.bits)
            row = groups.setdefault(key, [0, 0, 0, 0])
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
        rows = tuple(PrecisionRow(label, bits, *values) for (label, bits), values in groups.items())
        rows = tuple(sorted(rows, key=lambda r: (-r.bits, r.label)))
        ratio = plan.ratio_defining
        return cls(
            rows=rows,
            total_parameters=sum(r.num_parameters for r in rows),
            total_layers=sum(r.num_layers for r in rows),
            ratio_defining_parameters=sum(w.target.num_elements for w in ratio),
            ratio_defining_layers=len(ratio),
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
        return "\n".join([sep, body[0], sep.replace("-", "="), *body[1:], sep])


def _share(parameters: int, total_parameters: int, layers: int, total_layers: int) -> str:
    return f"{parameters / max(total_parameters, 1) * 100:.0f}% ({layers} / {total_layers})"
