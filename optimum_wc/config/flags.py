"""The flags of ``optimum-wc export`` that set nested fields: SpQR's parameters and the data-aware algorithms'
parameters (one flag per field, made from the records), and the record of one flag."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
import json
from typing import Any, Callable

from optimum_wc.config.advanced import (
    ADAPTIVE_VALUE_TYPES,
    AdvancedAdaptiveCodebookParameters,
    AdvancedAWQParameters,
    AdvancedGPTQParameters,
    AdvancedLoraCorrectionParameters,
    AdvancedScaleEstimationParameters,
)
from optimum_wc.config.spqr import PERMUTATION_ORDERS
from optimum_wc.errors import InvalidArgumentError


@dataclass(frozen=True)
class Flag:
    """One ``optimum-wc export`` flag and the config key it sets.

    Attributes:
        name: The flag, e.g. ``--group-size``.
        arguments: Keyword arguments of ``argparse``'s ``add_argument`` (type, choices, action, help, ...).
        key: The ``WeightCompressionConfig`` key it sets; ``spqr.bits`` sets a field of the nested ``spqr`` dict.
        to_config: The parsed value -> the config value (default: as parsed).
    """

    name: str
    arguments: dict[str, Any]
    key: str
    to_config: Callable[[Any], Any] | None = None

    @property
    def dest(self) -> str:
        """The attribute ``argparse`` stores the value in."""
        return self.arguments.get("dest") or self.name.lstrip("-").replace("-", "_")


def scope_patterns(patterns: list[str]) -> dict[str, list[str]]:
    return {"patterns": patterns}


def advanced_json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        example = '{"gptq_params": {"act_order": true}}'
        raise InvalidArgumentError(f"--advanced-parameters must be JSON, e.g. '{example}': {exc}.") from exc


def _spqr_flag(name: str, field: str, help: str, **arguments: Any) -> Flag:
    return Flag(name, {"help": help, **arguments}, f"spqr.{field}")


SPQR_FLAGS = (
    _spqr_flag("--spqr-bits", "bits", "Bits of the dense weights (default 4).", type=int, choices=(3, 4)),
    _spqr_flag("--qq-scale-bits", "qq_scale_bits", "Bits of the quantized group scales (default 3).", type=int),
    _spqr_flag("--qq-zero-bits", "qq_zero_bits", "Bits of the quantized group zero points (default 3).", type=int),
    _spqr_flag("--qq-groupsize", "qq_groupsize", "Rows sharing second-level statistics (default 16).", type=int),
    _spqr_flag(
        "--outlier-threshold", "outlier_threshold", "Relative outlier threshold; higher keeps fewer (0.2).", type=float
    ),
    _spqr_flag(
        "--permutation-order", "permutation_order", "Column order (default act_order).", choices=PERMUTATION_ORDERS
    ),
    _spqr_flag("--percdamp", "percdamp", "Hessian damping relative to its mean diagonal (default 1.0).", type=float),
    _spqr_flag("--simplified-outliers", "simplified_outliers", "Skip the leave-one-out pre-pass.", action="store_true"),
    _spqr_flag(
        "--round-zero",
        "round_zero",
        "Integer zero points: OpenVINO's fast int4 kernels run the dense part.",
        action="store_true",
    ),
)


FIELD_CHOICES = {"value_type": ADAPTIVE_VALUE_TYPES}  # the string fields' allowed values


def _algorithm_flags() -> tuple[Flag, ...]:
    """A flag per field of the data-aware algorithms' parameters, made from the records themselves:
    ``--gptq-act-order`` sets ``advanced_parameters.gptq_params.act_order``, ``--no-awq-prefer-data-aware-scaling``
    clears ``advanced_parameters.awq_params.prefer_data_aware_scaling``."""
    flags = []
    for record, prefix, attribute in (
        (AdvancedAWQParameters, "awq", "awq_params"),
        (AdvancedScaleEstimationParameters, "scale-estimation", "scale_estimation_params"),
        (AdvancedGPTQParameters, "gptq", "gptq_params"),
        (AdvancedLoraCorrectionParameters, "lora", "lora_correction_params"),
        (AdvancedAdaptiveCodebookParameters, "adaptive-codebook", "adaptive_codebook_params"),
    ):
        for field in dataclasses.fields(record):
            kind = type(field.default)
            arguments: dict[str, Any] = {"action": argparse.BooleanOptionalAction} if kind is bool else {"type": kind}
            if field.name in FIELD_CHOICES:
                arguments["choices"] = FIELD_CHOICES[field.name]
            arguments["help"] = f"advanced_parameters.{attribute}.{field.name} (default {field.default})."
            name = f"--{prefix}-{field.name.replace('_', '-')}"
            flags.append(Flag(name, arguments, f"advanced_parameters.{attribute}.{field.name}"))
    return tuple(flags)


ALGORITHM_FLAGS = _algorithm_flags()
# optimum-cli's, then the other nncf formats (cb4: a clear "not yet supported" rather than an argparse error)
WEIGHT_FORMATS = (
    "fp32",
    "fp16",
    "int8",
    "int4",
    "mxfp4",
    "nf4",
    "cb4",
    "mxfp8_e4m3",
    "fp8_e4m3",
    "fp4",
    "nvfp4",
    "int3",
    "int2",
    "adaptive_codebook",
    "spqr",
)
