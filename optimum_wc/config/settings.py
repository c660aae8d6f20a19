"""Validated settings of one :func:`optimum_wc.compress_weights` call.

:meth:`CompressionSettings.from_arguments` applies nncf 3.4.0's defaults and its validation rules in nncf's order, so
both libraries refuse the same inputs; every error is raised here, before the model is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import functools
import inspect
import logging
from types import SimpleNamespace
from typing import Any

from optimum_wc.config.advanced import AdvancedCompressionParameters, coerce_advanced_parameters
from optimum_wc.config.checks import (
    check_like_nncf,
    check_optional_bool,
    check_optional_int,
    check_optional_real,
    codebook_values,
)
from optimum_wc.config.enums import (
    CODE_BITS,
    CODEBOOK_MODES,
    DEFAULT_BACKUP_MODES,
    DEFAULT_GROUP_SIZE_4BIT,
    FIXED_GROUP_SIZES,
    INT8_MODES,
    BackupMode,
    CompressionFormat,
    CompressWeightsMode,
    SensitivityMetric,
    codebook_bits,
    coerce_enum,
)
from optimum_wc.config.options import BY_NAME, COMPRESSION_OPTIONS
from optimum_wc.config.options import signature as options_signature
from optimum_wc.config.scope import IgnoredScope, coerce_ignored_scope
from optimum_wc.config.spqr import SpQRConfig
from optimum_wc.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    UnsupportedArgumentError,
)

logger = logging.getLogger(__name__)

ADAPTIVE = CompressWeightsMode.ADAPTIVE_CODEBOOK


@dataclass(frozen=True)
class LayerPrecision:
    """The precision chosen for one weight: a mode and its group size (-1 is per output channel)."""

    mode: CompressWeightsMode
    group_size: int = -1
    code_bits: int | None = None  # SPQR, CODEBOOK: the bits of a code (the other modes' follow from the mode)
    codebook: Any = field(default=None, compare=False)  # CODEBOOK: the values, a 1-D numpy array
    # the codebook's element type in the IR when it is not its numpy dtype's (an adaptive codebook's f8e4m3)
    codebook_storage: str | None = field(default=None, compare=False)

    @property
    def bits(self) -> int:
        return self.code_bits if self.code_bits is not None else CODE_BITS[self.mode]

    @property
    def label(self) -> str:
        if self.mode == CompressWeightsMode.SPQR:
            return f"spqr {self.bits}-bit, group size {self.group_size}"
        if self.group_size == -1:
            return f"{self.mode.value}, per-channel"
        return f"{self.mode.value}, group size {self.group_size}"


@dataclass(frozen=True)
class CompressionSettings:
    """What to do, with every ``None`` resolved as nncf resolves it."""

    mode: CompressWeightsMode
    ratio: float
    group_size: int
    all_layers: bool
    sensitivity_metric: SensitivityMetric
    backup_mode: BackupMode
    ignored_scope: IgnoredScope
    advanced_parameters: AdvancedCompressionParameters
    subset_size: int = 128
    awq: bool = False
    scale_estimation: bool = False
    gptq: bool = False
    lora_correction: bool = False
    compression_format: CompressionFormat = CompressionFormat.DQ
    spqr: SpQRConfig | None = None  # mode SPQR only
    dataset: Any = field(default=None, compare=False)

    @functools.cached_property
    def primary(self) -> LayerPrecision:
        """The precision of the ratio-defining weights (the codebook converted to numpy once)."""
        codebook = self.advanced_parameters.codebook
        if self.mode == CompressWeightsMode.CODEBOOK or (self.mode == ADAPTIVE and codebook is not None):
            codebook = codebook_values(codebook)
            return LayerPrecision(self.mode, self.group_size, codebook_bits(codebook.size), codebook)
        if self.mode == ADAPTIVE:  # starts from CB4's 16 values
            return LayerPrecision(self.mode, self.group_size, codebook_bits(16))
        return LayerPrecision(self.mode, self.group_size, None if self.spqr is None else self.spqr.bits)

    @property
    def backup(self) -> LayerPrecision | None:
        """Precision of the backup weights (INT8 per channel, MXFP8 in groups of 32, FP8 in groups of the primary
        group size), or None when they stay in float."""
        if self.backup_mode == BackupMode.NONE:
            return None
        mode = CompressWeightsMode(self.backup_mode.value)
        group_size = {BackupMode.FP8_E4M3: self.group_size}.get(self.backup_mode, FIXED_GROUP_SIZES.get(mode, -1))
        return LayerPrecision(mode, group_size)

    def rt_info(self) -> dict[str, str]:
        """The ``nncf/weight_compression`` entries nncf 3.4.0 writes, keyed by path below that section."""
        entries = {
            "mode": self.mode.value,
            "group_size": str(self.group_size),
            "ratio": str(self.ratio),
            "all_layers": str(self.all_layers),
            "sensitivity_metric": self.sensitivity_metric.value,
            "awq": str(self.awq),
            "scale_estimation": str(self.scale_estimation),
            "gptq": str(self.gptq),
            "lora_correction": str(self.lora_correction),
            "backup_mode": self.backup_mode.value,
            "compression_format": self.compression_format.value,
            "advanced_parameters": str(self.advanced_parameters.to_dict()),
        }
        scope = self.ignored_scope.rt_info_entries()
        if scope:
            entries.update({f"ignored_scope/{key}": value for key, value in scope.items()})
        else:
            entries["ignored_scope"] = "[]"
        return entries

    @classmethod
    def from_arguments(cls, **arguments: Any) -> CompressionSettings:
        """Validates the arguments of ``compress_weights`` (all but its run options) and resolves their defaults as
        nncf 3.4.0 does."""
        a = bind_options(arguments)
        a.mode = coerce_enum(a.mode, CompressWeightsMode, "mode")
        if a.sensitivity_metric is not None:
            a.sensitivity_metric = coerce_enum(a.sensitivity_metric, SensitivityMetric, "sensitivity_metric")
        if a.backup_mode is not None:
            a.backup_mode = coerce_enum(a.backup_mode, BackupMode, "backup_mode")
        a.compression_format = coerce_enum(a.compression_format, CompressionFormat, "compression_format")
        check_optional_real(a.ratio, "ratio")
        check_optional_int(a.group_size, "group_size")
        check_optional_int(a.subset_size, "subset_size")
        if a.subset_size is None:
            raise InvalidArgumentTypeError("`subset_size` must be a positive int, got None.")
        for name in ("all_layers", "awq", "scale_estimation", "gptq", "lora_correction"):
            check_optional_bool(getattr(a, name), name)
        a.ignored_scope = coerce_ignored_scope(a.ignored_scope)
        a.advanced_parameters = coerce_advanced_parameters(a.advanced_parameters)

        check_like_nncf(a)
        if a.mode == CompressWeightsMode.SPQR:
            a.spqr = _spqr_config(a)
            a.group_size, a.subset_size = a.spqr.group_size, a.spqr.num_samples
        elif a.spqr is not None:
            msg = f"`spqr` parameters apply to mode=SPQR only, got mode={a.mode.name}."
            raise InvalidArgumentError(msg)

        if a.group_size is None:
            per_channel = a.mode in INT8_MODES or a.mode in CODEBOOK_MODES
            a.group_size = -1 if per_channel else FIXED_GROUP_SIZES.get(a.mode, DEFAULT_GROUP_SIZE_4BIT)
        if a.group_size == 0 or a.group_size < -1:
            msg = f"`group_size`={a.group_size} is invalid: use a positive int or -1 (per output channel)."
            raise InvalidArgumentError(msg)
        if a.sensitivity_metric is None:
            with_data = SensitivityMetric.MAX_ACTIVATION_VARIANCE
            a.sensitivity_metric = SensitivityMetric.WEIGHT_QUANTIZATION_ERROR if a.dataset is None else with_data
        if a.ratio == 0:
            logger.warning(
                "`ratio`=0 is taken as 1.0 (every ratio-defining layer in %s), as nncf takes it.", a.mode.name
            )
        return cls(
            mode=a.mode,
            ratio=a.ratio or 1,
            group_size=int(a.group_size),
            all_layers=a.all_layers or False,
            sensitivity_metric=a.sensitivity_metric,
            backup_mode=a.backup_mode or DEFAULT_BACKUP_MODES.get(a.mode, BackupMode.INT8_ASYM),
            ignored_scope=a.ignored_scope or IgnoredScope(),
            advanced_parameters=a.advanced_parameters or AdvancedCompressionParameters(),
            subset_size=int(a.subset_size),
            awq=a.awq or False,
            scale_estimation=a.scale_estimation or False,
            gptq=a.gptq or False,
            lora_correction=a.lora_correction or False,
            compression_format=a.compression_format,
            spqr=a.spqr,
            dataset=a.dataset,
        )


CompressionSettings.from_arguments.__func__.__signature__ = options_signature(
    [inspect.Parameter("cls", inspect.Parameter.POSITIONAL_ONLY)], COMPRESSION_OPTIONS
)


def bind_options(arguments: dict[str, Any], names: tuple[str, ...] = COMPRESSION_OPTIONS) -> SimpleNamespace:
    """The options ``names`` with ``arguments`` given and the others at ``compress_weights``'s defaults.

    Raises:
        InvalidArgumentTypeError: An argument that is not one of ``names`` (a ``TypeError``, as Python raises).
    """
    unknown = sorted(set(arguments) - set(names))
    if unknown:
        msg = f"compress_weights() got unexpected keyword argument(s) {unknown}. Allowed: {', '.join(names)}."
        raise InvalidArgumentTypeError(msg)
    return SimpleNamespace(**{name: arguments.get(name, BY_NAME[name].default) for name in names})


def _spqr_config(a: SimpleNamespace) -> SpQRConfig:
    """The SpQR parameters, with ``group_size`` and ``subset_size`` taken as its ``group_size`` and
    ``num_samples`` when ``spqr`` leaves them at their defaults; refuses what SPQR cannot combine with."""
    config = SpQRConfig.coerce(a.spqr)
    if a.dataset is None:
        msg = "`mode`=SPQR fits each layer on calibration data: pass a `dataset` (see the calibration docs)."
        raise UnsupportedArgumentError(msg)
    conflicting = {
        "ratio": a.ratio not in (None, 1),
        "all_layers": bool(a.all_layers),
        "sensitivity_metric": a.sensitivity_metric is not None,
        "awq": bool(a.awq),
        "scale_estimation": bool(a.scale_estimation),
        "gptq": bool(a.gptq),
    }
    given = [name for name, value in conflicting.items() if value]
    if given:
        msg = (
            "`mode`=SPQR compresses every layer but embeddings and the last one with SpQR (its own GPTQ): "
            f"{', '.join(given)} cannot be combined with it. Leave them unset."
        )
        raise UnsupportedArgumentError(msg)
    updates = {}
    for name, value, field_name, default in (
        ("group_size", a.group_size, "group_size", SpQRConfig.group_size),
        ("subset_size", None if a.subset_size == 128 else a.subset_size, "num_samples", 128),  # 128: not given
    ):
        if value is None or value == getattr(config, field_name):
            continue
        if getattr(config, field_name) != default:
            msg = f"`{name}`={value} contradicts `spqr.{field_name}`={getattr(config, field_name)}: set one of them."
            raise InvalidArgumentError(msg)
        updates[field_name] = value
    return SpQRConfig(**{**config.to_dict(), **updates}) if updates else config
