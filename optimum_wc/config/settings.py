"""Validated settings of one :func:`optimum_wc.compress_weights` call.

:meth:`CompressionSettings.from_arguments` applies nncf 3.4.0's defaults and its validation rules in nncf's order, so
both libraries refuse the same inputs; every error is raised here, before the model is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import inspect
import logging
import numbers
from types import SimpleNamespace
from typing import Any

from optimum_wc.config.advanced import AdvancedCompressionParameters, coerce_advanced_parameters
from optimum_wc.config.enums import (
    CODE_BITS,
    BackupMode,
    CompressionFormat,
    CompressWeightsMode,
    SensitivityMetric,
    coerce_enum,
)
from optimum_wc.config.options import BY_NAME, COMPRESSION_OPTIONS
from optimum_wc.config.options import signature as options_signature
from optimum_wc.config.scope import IgnoredScope, coerce_ignored_scope
from optimum_wc.config.spqr import SpQRConfig
from optimum_wc.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    NotYetSupportedError,
    UnsupportedArgumentError,
)

logger = logging.getLogger(__name__)

INT8_MODES = (CompressWeightsMode.INT8_ASYM, CompressWeightsMode.INT8_SYM)
DEFAULT_GROUP_SIZE_4BIT = 128


@dataclass(frozen=True)
class LayerPrecision:
    """The precision chosen for one weight: a mode and its group size (-1 is per output channel)."""

    mode: CompressWeightsMode
    group_size: int = -1
    code_bits: int | None = None  # SPQR: the dense part's bits (the other modes' follow from the mode)

    @property
    def bits(self) -> int:
        return self.code_bits if self.mode == CompressWeightsMode.SPQR else CODE_BITS[self.mode]

    @property
    def label(self) -> str:
        if self.mode == CompressWeightsMode.SPQR:
            return f"spqr {self.bits}-bit, group size {self.group_size}"
        if self.group_size == -1:
            return f"{self.mode.value}, per-channel"
        return f"{self.mode.value}, group size {self.group_size}"


def _check_optional_bool(value: object, argument: str) -> None:
    if value is not None and not isinstance(value, bool):
        msg = f"`{argument}` must be True, False or None, got {type(value).__name__} ({value!r})."
        raise InvalidArgumentTypeError(msg)


def _check_optional_int(value: object, argument: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        msg = f"`{argument}` must be an int or None, got {type(value).__name__} ({value!r})."
        raise InvalidArgumentTypeError(msg)


def _check_optional_real(value: object, argument: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        msg = f"`{argument}` must be a float in [0, 1] or None, got {type(value).__name__} ({value!r})."
        raise InvalidArgumentTypeError(msg)


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

    @property
    def primary(self) -> LayerPrecision:
        return LayerPrecision(self.mode, self.group_size, None if self.spqr is None else self.spqr.bits)

    @property
    def backup(self) -> LayerPrecision | None:
        """Per-channel INT8 precision of the backup weights, or None when they stay in float."""
        if self.backup_mode == BackupMode.NONE:
            return None
        return LayerPrecision(CompressWeightsMode(self.backup_mode.value), -1)

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
        _check_optional_real(a.ratio, "ratio")
        _check_optional_int(a.group_size, "group_size")
        _check_optional_int(a.subset_size, "subset_size")
        if a.subset_size is None:
            raise InvalidArgumentTypeError("`subset_size` must be a positive int, got None.")
        for name in ("all_layers", "awq", "scale_estimation", "gptq", "lora_correction"):
            _check_optional_bool(getattr(a, name), name)
        a.ignored_scope = coerce_ignored_scope(a.ignored_scope)
        a.advanced_parameters = coerce_advanced_parameters(a.advanced_parameters)

        _check_like_nncf(a)
        _check_not_yet_supported(a)
        if a.mode == CompressWeightsMode.SPQR:
            a.spqr = _spqr_config(a)
            a.group_size, a.subset_size = a.spqr.group_size, a.spqr.num_samples
        elif a.spqr is not None:
            msg = f"`spqr` parameters apply to mode=SPQR only, got mode={a.mode.name}."
            raise InvalidArgumentError(msg)

        if a.group_size is None:
            a.group_size = -1 if a.mode in INT8_MODES else DEFAULT_GROUP_SIZE_4BIT
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
            backup_mode=a.backup_mode or BackupMode.INT8_ASYM,
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


def _check_like_nncf(a: SimpleNamespace) -> None:
    """nncf 3.4.0's checks on the OpenVINO path, in its order and with its error classes."""
    if any((a.scale_estimation, a.gptq, a.lora_correction)) and a.dataset is None:
        msg = "`scale_estimation`, `gptq` and `lora_correction` need a calibration `dataset`, but dataset is None."
        raise UnsupportedArgumentError(msg)
    if a.gptq and a.lora_correction:
        msg = "`gptq` and `lora_correction` cannot be used together: select one of them."
        raise UnsupportedArgumentError(msg)
    if a.compression_format != CompressionFormat.DQ:
        msg = f"`compression_format`={a.compression_format.name} is not supported for OpenVINO models. Allowed: DQ."
        raise UnsupportedArgumentError(msg)
    advanced = a.advanced_parameters
    if a.mode in INT8_MODES:
        if (a.ratio and a.ratio != 1) or (a.group_size and a.group_size != -1):
            msg = (
                f"`mode`={a.mode.name} quantizes all layers per channel in 8 bit: `ratio` must be None or 1 "
                f"and `group_size` None or -1, got ratio={a.ratio}, group_size={a.group_size}."
            )
            raise UnsupportedArgumentError(msg)
        if advanced and advanced.statistics_path:
            msg = f"`mode`={a.mode.name} does not support `advanced_parameters.statistics_path`."
            raise UnsupportedArgumentError(msg)
        names = (
            "all_layers",
            "sensitivity_metric",
            "dataset",
            "awq",
            "scale_estimation",
            "gptq",
            "lora_correction",
            "backup_mode",
        )
        given = [name for name in names if getattr(a, name) is not None]
        if given:
            msg = f"`mode`={a.mode.name} does not support the option(s) {', '.join(given)}: leave them as None."
            raise UnsupportedArgumentError(msg)
    if a.ratio is not None and not 0 <= a.ratio <= 1:
        msg = f"`ratio` must be between 0 and 1, got {a.ratio}."
        raise InvalidArgumentError(msg)
    sizes = {"subset_size": a.subset_size}
    if advanced:
        sizes.update(
            {
                "advanced_parameters.awq_params.subset_size": advanced.awq_params.subset_size,
                "advanced_parameters.scale_estimation_params.subset_size": advanced.scale_estimation_params.subset_size,
                "advanced_parameters.gptq_params.subset_size": advanced.gptq_params.subset_size,
                "advanced_parameters.lora_correction_params.subset_size": advanced.lora_correction_params.subset_size,
                "advanced_parameters.lora_adapter_rank": advanced.lora_adapter_rank,
                "advanced_parameters.lora_correction_params.adapter_rank": advanced.lora_correction_params.adapter_rank,
            }
        )
    for name, size in sizes.items():
        if size <= 0:
            msg = f"`{name}` must be positive, got {size}."
            raise InvalidArgumentError(msg)
    metric = a.sensitivity_metric
    if a.ratio and a.dataset is None and metric not in (None, SensitivityMetric.WEIGHT_QUANTIZATION_ERROR):
        msg = (
            f"`sensitivity_metric`={metric.name} needs a calibration `dataset`; without one, "
            "only WEIGHT_QUANTIZATION_ERROR is allowed."
        )
        raise InvalidArgumentError(msg)


def _check_not_yet_supported(a: SimpleNamespace) -> None:
    options = {
        "lora_correction": bool(a.lora_correction),
        "advanced_parameters.codebook": a.advanced_parameters is not None
        and a.advanced_parameters.codebook is not None,
    }
    given = [name for name, value in options.items() if value]
    if given:
        msg = (
            f"{', '.join(given)} is not supported by optimum-wc yet; data-free compression, data-aware mixed "
            "precision, awq, scale_estimation and gptq are. Leave these options unset."
        )
        raise NotYetSupportedError(msg)
