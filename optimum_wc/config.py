"""Validated settings of one :func:`optimum_wc.compress_weights` call.

:meth:`CompressionSettings.from_arguments` applies nncf 3.4.0's defaults and its validation rules in nncf's order, so
both libraries refuse the same inputs; every error is raised here, before the model is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import numbers
from typing import Any

from optimum_wc.advanced import AdvancedCompressionParameters, coerce_advanced_parameters
from optimum_wc.enums import (
    BackupMode,
    CompressionFormat,
    CompressWeightsMode,
    SensitivityMetric,
    coerce_enum,
)
from optimum_wc.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    NotYetSupportedError,
    UnsupportedArgumentError,
)
from optimum_wc.kernels import KERNELS
from optimum_wc.scope import IgnoredScope, coerce_ignored_scope
from optimum_wc.spqr_config import SpQRConfig

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
        return self.code_bits if self.mode == CompressWeightsMode.SPQR else KERNELS[self.mode.value].bits

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
    def from_arguments(
        cls,
        *,
        mode: object = CompressWeightsMode.INT8_ASYM,
        ratio: float | None = None,
        group_size: int | None = None,
        ignored_scope: object = None,
        all_layers: bool | None = None,
        dataset: object = None,
        sensitivity_metric: object = None,
        subset_size: int = 128,
        awq: bool | None = None,
        scale_estimation: bool | None = None,
        gptq: bool | None = None,
        lora_correction: bool | None = None,
        backup_mode: object = None,
        compression_format: object = CompressionFormat.DQ,
        advanced_parameters: object = None,
        spqr: object = None,
    ) -> CompressionSettings:
        """Validates the arguments of ``compress_weights`` and resolves their defaults as nncf 3.4.0 does."""
        mode = coerce_enum(mode, CompressWeightsMode, "mode")
        sensitivity_metric = (
            None if sensitivity_metric is None else coerce_enum(sensitivity_metric, SensitivityMetric, "sensitivity_metric")
        )
        backup_mode = None if backup_mode is None else coerce_enum(backup_mode, BackupMode, "backup_mode")
        compression_format = coerce_enum(compression_format, CompressionFormat, "compression_format")
        _check_optional_real(ratio, "ratio")
        _check_optional_int(group_size, "group_size")
        _check_optional_int(subset_size, "subset_size")
        if subset_size is None:
            raise InvalidArgumentTypeError("`subset_size` must be a positive int, got None.")
        for name, value in [
            ("all_layers", all_layers),
            ("awq", awq),
            ("scale_estimation", scale_estimation),
            ("gptq", gptq),
            ("lora_correction", lora_correction),
        ]:
            _check_optional_bool(value, name)
        scope = coerce_ignored_scope(ignored_scope)
        advanced = coerce_advanced_parameters(advanced_parameters)

        _check_like_nncf(
            mode, ratio, group_size, all_layers, dataset, sensitivity_metric, subset_size, awq,
            scale_estimation, gptq, lora_correction, backup_mode, compression_format, advanced,
        )  # fmt: skip
        _check_not_yet_supported(lora_correction, advanced)
        if mode == CompressWeightsMode.SPQR:
            spqr = _spqr_config(
                spqr, ratio, group_size, all_layers, dataset, sensitivity_metric, subset_size, awq,
                scale_estimation, gptq,
            )  # fmt: skip
            group_size, subset_size = spqr.group_size, spqr.num_samples
        elif spqr is not None:
            msg = f"`spqr` parameters apply to mode=SPQR only, got mode={mode.name}."
            raise InvalidArgumentError(msg)

        if group_size is None:
            group_size = -1 if mode in INT8_MODES else DEFAULT_GROUP_SIZE_4BIT
        if group_size == 0 or group_size < -1:
            msg = f"`group_size`={group_size} is invalid: use a positive int or -1 (per output channel)."
            raise InvalidArgumentError(msg)
        if sensitivity_metric is None:
            sensitivity_metric = (
                SensitivityMetric.WEIGHT_QUANTIZATION_ERROR if dataset is None else SensitivityMetric.MAX_ACTIVATION_VARIANCE
            )
        if ratio == 0:
            logger.warning("`ratio`=0 is taken as 1.0 (every ratio-defining layer in %s), as nncf takes it.", mode.name)
        return cls(
            mode=mode,
            ratio=ratio or 1,
            group_size=int(group_size),
            all_layers=all_layers or False,
            sensitivity_metric=sensitivity_metric,
            backup_mode=backup_mode or BackupMode.INT8_ASYM,
            ignored_scope=scope or IgnoredScope(),
            advanced_parameters=advanced or AdvancedCompressionParameters(),
            subset_size=int(subset_size),
            awq=awq or False,
            scale_estimation=scale_estimation or False,
            gptq=gptq or False,
            lora_correction=lora_correction or False,
            compression_format=compression_format,
            spqr=spqr,
            dataset=dataset,
        )


def _spqr_config(
    spqr, ratio, group_size, all_layers, dataset, sensitivity_metric, subset_size, awq, scale_estimation, gptq
) -> SpQRConfig:
    """The SpQR parameters, with ``group_size`` and ``subset_size`` taken as its ``group_size`` and
    ``num_samples`` when ``spqr`` leaves them at their defaults; refuses what SPQR cannot combine with."""
    config = SpQRConfig.coerce(spqr)
    if dataset is None:
        msg = "`mode`=SPQR fits each layer on calibration data: pass a `dataset` (see the calibration docs)."
        raise UnsupportedArgumentError(msg)
    conflicting = {
        "ratio": ratio not in (None, 1),
        "all_layers": bool(all_layers),
        "sensitivity_metric": sensitivity_metric is not None,
        "awq": bool(awq),
        "scale_estimation": bool(scale_estimation),
        "gptq": bool(gptq),
    }
    given = [name for name, value in conflicting.items() if value]
    if given:
        msg = (f"`mode`=SPQR compresses every layer but embeddings and the last one with SpQR (its own GPTQ): "
               f"{', '.join(given)} cannot be combined with it. Leave them unset.")  # fmt: skip
        raise UnsupportedArgumentError(msg)
    updates = {}
    for name, value, field_name, default in (
        ("group_size", group_size, "group_size", SpQRConfig.group_size),
        ("subset_size", None if subset_size == 128 else subset_size, "num_samples", 128),  # 128: not given
    ):
        if value is None or value == getattr(config, field_name):
            continue
        if getattr(config, field_name) != default:
            msg = f"`{name}`={value} contradicts `spqr.{field_name}`={getattr(config, field_name)}: set one of them."
            raise InvalidArgumentError(msg)
        updates[field_name] = value
    return SpQRConfig(**{**config.to_dict(), **updates}) if updates else config


def _check_like_nncf(
    mode, ratio, group_size, all_layers, dataset, sensitivity_metric, subset_size, awq,
    scale_estimation, gptq, lora_correction, backup_mode, compression_format, advanced,
) -> None:  # fmt: skip
    """nncf 3.4.0's checks on the OpenVINO path, in its order and with its error classes."""
    if any((scale_estimation, gptq, lora_correction)) and dataset is None:
        msg = "`scale_estimation`, `gptq` and `lora_correction` need a calibration `dataset`, but dataset is None."
        raise UnsupportedArgumentError(msg)
    if gptq and lora_correction:
        msg = "`gptq` and `lora_correction` cannot be used together: select one of them."
        raise UnsupportedArgumentError(msg)
    if compression_format != CompressionFormat.DQ:
        msg = f"`compression_format`={compression_format.name} is not supported for OpenVINO models. Allowed: DQ."
        raise UnsupportedArgumentError(msg)
    if mode in INT8_MODES:
        if (ratio and ratio != 1) or (group_size and group_size != -1):
            msg = (
                f"`mode`={mode.name} quantizes all layers per channel in 8 bit: `ratio` must be None or 1 "
                f"and `group_size` None or -1, got ratio={ratio}, group_size={group_size}."
            )
            raise UnsupportedArgumentError(msg)
        if advanced and advanced.statistics_path:
            msg = f"`mode`={mode.name} does not support `advanced_parameters.statistics_path`."
            raise UnsupportedArgumentError(msg)
        options = {
            "all_layers": all_layers,
            "sensitivity_metric": sensitivity_metric,
            "dataset": dataset,
            "awq": awq,
            "scale_estimation": scale_estimation,
            "gptq": gptq,
            "lora_correction": lora_correction,
            "backup_mode": backup_mode,
        }
        given = [name for name, value in options.items() if value is not None]
        if given:
            msg = f"`mode`={mode.name} does not support the option(s) {', '.join(given)}: leave them as None."
            raise UnsupportedArgumentError(msg)
    if ratio is not None and not 0 <= ratio <= 1:
        msg = f"`ratio` must be between 0 and 1, got {ratio}."
        raise InvalidArgumentError(msg)
    sizes = {"subset_size": subset_size}
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
    if ratio and dataset is None and sensitivity_metric not in (None, SensitivityMetric.WEIGHT_QUANTIZATION_ERROR):
        msg = (
            f"`sensitivity_metric`={sensitivity_metric.name} needs a calibration `dataset`; without one, "
            "only WEIGHT_QUANTIZATION_ERROR is allowed."
        )
        raise InvalidArgumentError(msg)


def _check_not_yet_supported(lora_correction, advanced) -> None:
    options = {
        "lora_correction": bool(lora_correction),
        "advanced_parameters.codebook": advanced is not None and advanced.codebook is not None,
    }
    given = [name for name, value in options.items() if value]
    if given:
        msg = (
            f"{', '.join(given)} is not supported by optimum-wc yet; data-free compression, data-aware mixed "
            "precision, awq, scale_estimation and gptq are. Leave these options unset."
        )
        raise NotYetSupportedError(msg)
