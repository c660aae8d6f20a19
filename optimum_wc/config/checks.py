"""nncf 3.4.0's checks of the arguments of ``compress_weights``, in its order and with its error classes (ours
subclass ``ValueError``/``TypeError`` under nncf's names), and what optimum-wc does not do yet."""

from __future__ import annotations

import numbers
from types import SimpleNamespace
from typing import Any

import numpy as np

from optimum_wc.config.enums import (
    FIXED_GROUP_SIZES,
    FLOAT_FORMAT_MODES,
    INT8_MODES,
    CompressionFormat,
    CompressWeightsMode,
    GroupSizeFallbackMode,
    SensitivityMetric,
)
from optimum_wc.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    UnsupportedArgumentError,
)


def check_optional_bool(value: object, argument: str) -> None:
    if value is not None and not isinstance(value, bool):
        msg = f"`{argument}` must be True, False or None, got {type(value).__name__} ({value!r})."
        raise InvalidArgumentTypeError(msg)


def check_optional_int(value: object, argument: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        msg = f"`{argument}` must be an int or None, got {type(value).__name__} ({value!r})."
        raise InvalidArgumentTypeError(msg)


def _check_adaptive(a: SimpleNamespace) -> None:
    """nncf's rule for ``across_blocks`` (which nncf checks only with a codebook given, and fails on later
    without one), and the calibration data that the estimation needs (nncf fails without it)."""
    if a.advanced_parameters and a.advanced_parameters.adaptive_codebook_params.across_blocks:
        if a.group_size and a.group_size != -1:
            msg = (
                "`advanced_parameters.adaptive_codebook_params.across_blocks`=True needs `group_size` -1 "
                f"(per channel) or None, got {a.group_size}."
            )
            raise InvalidArgumentError(msg)
    if a.dataset is None:
        msg = "`mode`=ADAPTIVE_CODEBOOK estimates codebooks from a calibration `dataset`, but dataset is None."
        raise UnsupportedArgumentError(msg)


def check_optional_real(value: object, argument: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        msg = f"`{argument}` must be a float in [0, 1] or None, got {type(value).__name__} ({value!r})."
        raise InvalidArgumentTypeError(msg)


def check_like_nncf(a: SimpleNamespace) -> None:
    """nncf 3.4.0's checks on the OpenVINO path, in its order and with its error classes."""
    if any((a.scale_estimation, a.gptq, a.lora_correction)) and a.dataset is None:
        msg = "`scale_estimation`, `gptq` and `lora_correction` need a calibration `dataset`, but dataset is None."
        raise UnsupportedArgumentError(msg)
    if any((a.awq, a.scale_estimation, a.gptq, a.lora_correction)) and a.mode in FLOAT_FORMAT_MODES:
        names = ", ".join(m.name for m in FLOAT_FORMAT_MODES)
        msg = f"`awq`, `scale_estimation`, `gptq` and `lora_correction` do not support `mode`={a.mode.name} ({names})."
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
    if advanced and advanced.codebook is not None:
        values = _checked_codebook(advanced.codebook)
        params = advanced.adaptive_codebook_params
        if a.mode == CompressWeightsMode.ADAPTIVE_CODEBOOK and params.num_elements != values.size:
            msg = (
                "`advanced_parameters.adaptive_codebook_params.num_elements` must equal the size of the codebook "
                f"given: expected {values.size}, got {params.num_elements}."
            )
            raise InvalidArgumentError(msg)
    if a.mode == CompressWeightsMode.ADAPTIVE_CODEBOOK:
        _check_adaptive(a)
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
    if a.mode == CompressWeightsMode.CODEBOOK and (advanced is None or advanced.codebook is None):
        msg = "`mode`=CODEBOOK needs its codebook: set `advanced_parameters.codebook` (a sorted 1-D array)."
        raise InvalidArgumentError(msg)
    fixed = FIXED_GROUP_SIZES.get(a.mode)
    if fixed is not None:
        if a.group_size not in (None, fixed):
            msg = f"`mode`={a.mode.name} uses groups of {fixed}: `group_size` must be None or {fixed}, "
            msg += f"got {a.group_size}."
            raise InvalidArgumentError(msg)
        if advanced and advanced.group_size_fallback_mode == GroupSizeFallbackMode.ADJUST:
            msg = (
                f"`mode`={a.mode.name} has a fixed group size: `advanced_parameters.group_size_fallback_mode` "
                "cannot be ADJUST. Use ERROR or IGNORE."
            )
            raise InvalidArgumentError(msg)


def codebook_values(codebook: Any) -> np.ndarray:
    """A codebook as a numpy array: an OpenVINO tensor's data, or any array-like."""
    return np.asarray(getattr(codebook, "data", codebook))


def _checked_codebook(codebook: Any) -> np.ndarray:
    """The codebook as a numpy array, refused unless 1-D, sorted and of at least two unique values, as nncf
    refuses it."""
    values = codebook_values(codebook)
    problem = None
    if values.ndim != 1:
        problem = f"must be a 1-D array, got shape {values.shape}"
    elif values.size < 2:
        problem = f"must hold at least two unique values, got {values.size}"
    elif np.any(values[:-1] >= values[1:]):
        problem = f"must be sorted, with unique values, got {values.tolist()}"
    if problem:
        raise InvalidArgumentError(f"`advanced_parameters.codebook` {problem}.")
    return values
