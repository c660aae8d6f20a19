"""``SpQRConfig``: the parameters of SpQR compression (``mode=CompressWeightsMode.SPQR``), validated on creation.

The defaults are the recipe of the SpQR authors (4-bit weights in groups of 16, 3-bit statistics over 16 rows,
relative outlier threshold 0.2, act order, damping 1.0, 128 calibration samples), which stores about 4.6 bits per
parameter; ``bits=3`` gives about 3.6 bits plus the outliers.

OpenVINO's CPU plugin runs the dense part fastest with groups of 32 or more and integer zero points
(``round_zero=True``), and every outlier costs time at run time; the trade-offs are measured in
benchmarks/README.md ("SpQR").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
import numbers

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError

PERMUTATION_ORDERS = ("identity", "act_order")


def _check_int(name: str, value: object, allowed: range | tuple[int, ...] | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentTypeError(f"`spqr.{name}` must be an int, got {type(value).__name__} ({value!r}).")
    if allowed is not None and value not in allowed:
        shown = f"{allowed.start}..{allowed.stop - 1}" if isinstance(allowed, range) else " or ".join(map(str, allowed))
        raise InvalidArgumentError(f"`spqr.{name}`={value} is not supported. Allowed: {shown}.")
    if allowed is None and value <= 0:
        raise InvalidArgumentError(f"`spqr.{name}` must be a positive int, got {value}.")


def _check_real(name: str, value: object, minimum: float, inclusive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise InvalidArgumentTypeError(f"`spqr.{name}` must be a number, got {type(value).__name__} ({value!r}).")
    if value < minimum or (value == minimum and not inclusive):
        relation = ">=" if inclusive else ">"
        raise InvalidArgumentError(f"`spqr.{name}` must be {relation} {minimum}, got {value}.")


@dataclass(frozen=True)
class SpQRConfig:
    """SpQR's parameters, with the names of the authors' implementation.

    Attributes:
        bits: Bits per weight of the dense part (3 or 4).
        group_size: Input columns per first-level group (beta_1); must divide every compressed layer's inputs.
        qq_scale_bits, qq_zero_bits: Bits of the quantized first-level scales and zero points (2..8).
        qq_groupsize: Output rows per second-level group (beta_2); must divide every compressed layer's outputs.
        outlier_threshold: Relative threshold of the outlier rule; higher keeps fewer outliers, ``inf`` none.
        permutation_order: ``"act_order"`` (columns by decreasing Hessian diagonal) or ``"identity"``.
        percdamp: Damping added to the Hessian's diagonal, relative to its mean.
        num_samples: Calibration samples.
        simplified_outliers: Fit the statistics on all weights, skipping the leave-one-out pre-pass (faster).
        round_zero: Integer zero points (their second-level quantization keeps them integers): OpenVINO's CPU
            plugin then runs the dense part with its fast integer-zero-point kernels.
    """

    bits: int = 4
    group_size: int = 16
    qq_scale_bits: int = 3
    qq_zero_bits: int = 3
    qq_groupsize: int = 16
    outlier_threshold: float = 0.2
    permutation_order: str = "act_order"
    percdamp: float = 1.0
    num_samples: int = 128
    simplified_outliers: bool = False
    round_zero: bool = False

    def __post_init__(self) -> None:
        _check_int("bits", self.bits, (3, 4))
        _check_int("group_size", self.group_size)
        _check_int("qq_scale_bits", self.qq_scale_bits, range(2, 9))
        _check_int("qq_zero_bits", self.qq_zero_bits, range(2, 9))
        _check_int("qq_groupsize", self.qq_groupsize)
        _check_real("outlier_threshold", self.outlier_threshold, 0.0, inclusive=False)
        _check_real("percdamp", self.percdamp, 0.0, inclusive=True)
        _check_int("num_samples", self.num_samples)
        if self.permutation_order not in PERMUTATION_ORDERS:
            allowed = ", ".join(PERMUTATION_ORDERS)
            msg = f"`spqr.permutation_order`={self.permutation_order!r} is not supported. Allowed: {allowed}."
            raise InvalidArgumentError(msg)
        for name in ("simplified_outliers", "round_zero"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentTypeError(f"`spqr.{name}` must be True or False, got {getattr(self, name)!r}.")

    @property
    def act_order(self) -> bool:
        return self.permutation_order == "act_order"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: object) -> SpQRConfig:
        """A ``SpQRConfig``, a dict of its fields, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(cls.__dataclass_fields__))
            if unknown:
                msg = f"`spqr` has unknown keys {unknown}. Allowed: {', '.join(cls.__dataclass_fields__)}."
                raise InvalidArgumentError(msg)
            return cls(**value)
        raise InvalidArgumentTypeError(f"`spqr` must be a SpQRConfig, a dict or None, got {type(value).__name__}.")
