"""The enums of the public API, with the member names and values nncf 3.4.0 uses.

Members of nncf's own enums (or plain strings) are accepted wherever one of ours is expected:
:func:`coerce_enum` matches them by name or value, without importing nncf.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import TypeVar

from optimum_wc.errors import InvalidArgumentTypeError, NotYetSupportedError, UnsupportedArgumentError


class CompressWeightsMode(StrEnum):
    """How the weights of the primary precision are compressed.

    - ``INT8_ASYM``: 8-bit asymmetric, per output channel, with a zero point (the default).
    - ``INT8_SYM``: 8-bit symmetric, per output channel.
    - ``INT4_SYM``: 4-bit symmetric, group-wise; mixed with the backup precision by ``ratio``.
    - ``INT4_ASYM``: 4-bit asymmetric with a zero point, group-wise; mixed with the backup precision by ``ratio``.
    - ``NF4``: 4-bit NormalFloat levels with a group-wise scale; mixed with the backup precision by ``ratio``.
    - ``INT3_SYM``, ``INT2_SYM``: 3- and 2-bit symmetric, group-wise (stored unsigned, with a zero point of 4 / 2).
    - ``MXFP4``, ``MXFP8_E4M3``: OCP MX formats, FP4 E2M1 / FP8 E4M3 values sharing a power-of-two (E8M0) scale per
      group of 32; their default backup is MXFP8_E4M3.
    - ``FP8_E4M3``, ``FP4``: FP8 E4M3 / FP4 E2M1 values with a float16 scale per group; default backup FP8_E4M3.
    - ``NVFP4``: FP4 E2M1 values, an FP8 E4M3 scale per group of 16 and a float32 scale per weight.
    - ``CB4``: indices into a fixed 16-value codebook (stored as FP8 E4M3), an absmax scale per channel by default.
    - ``CODEBOOK``: the same with the codebook of ``advanced_parameters.codebook`` (u4/u8/u16 indices by its size).
    - ``ADAPTIVE_CODEBOOK``: a codebook per layer (or per family of layers), fitted by weighted k-means on a
      calibration ``dataset``, starting from ``advanced_parameters.codebook`` or CB4's
      (``advanced_parameters.adaptive_codebook_params``).
    - ``SPQR``: SpQR (an optimum-wc mode; not in nncf): 3- or 4-bit codes in groups of 16 with quantized statistics
      and 16-bit outliers, fitted on a calibration ``dataset`` (parameters in :class:`~optimum_wc.SpQRConfig`).
    """

    INT8_SYM = "int8_sym"
    INT8_ASYM = "int8_asym"
    INT4_SYM = "int4_sym"
    INT4_ASYM = "int4_asym"
    INT3_SYM = "int3_sym"
    INT2_SYM = "int2_sym"
    NF4 = "nf4"
    MXFP4 = "mxfp4"
    MXFP8_E4M3 = "mxfp8_e4m3"
    FP8_E4M3 = "fp8_e4m3"
    FP4 = "fp4"
    NVFP4 = "nvfp4"
    CB4 = "cb4"
    CODEBOOK = "codebook"
    ADAPTIVE_CODEBOOK = "adaptive_codebook"
    SPQR = "spqr"


# Bits per code of the modes with a fixed code width (SpQR's come from its config): the kernels store codes of
# this width, and the settings report it.
CODE_BITS: dict[CompressWeightsMode, int] = {
    CompressWeightsMode.INT8_SYM: 8,
    CompressWeightsMode.INT8_ASYM: 8,
    CompressWeightsMode.INT4_SYM: 4,
    CompressWeightsMode.INT4_ASYM: 4,
    CompressWeightsMode.NF4: 4,
    CompressWeightsMode.INT3_SYM: 3,
    CompressWeightsMode.INT2_SYM: 2,
    CompressWeightsMode.MXFP4: 4,
    CompressWeightsMode.MXFP8_E4M3: 8,
    CompressWeightsMode.FP8_E4M3: 8,
    CompressWeightsMode.FP4: 4,
    CompressWeightsMode.NVFP4: 4,
    CompressWeightsMode.CB4: 4,
}


class BackupMode(StrEnum):
    """Precision of the weights that are not in the primary precision (embeddings, the last layer, demoted layers).

    ``NONE`` keeps them in their original floating-point type; INT8 is per channel, ``MXFP8_E4M3`` in groups of 32,
    ``FP8_E4M3`` in groups of the primary ``group_size``.
    """

    NONE = "none"
    INT8_SYM = "int8_sym"
    INT8_ASYM = "int8_asym"
    MXFP8_E4M3 = "mxfp8_e4m3"
    FP8_E4M3 = "fp8_e4m3"


class SensitivityMetric(StrEnum):
    """How layers are ranked when ``ratio`` < 1 keeps some of them in the backup precision."""

    WEIGHT_QUANTIZATION_ERROR = "weight_quantization_error"
    HESSIAN_INPUT_ACTIVATION = "hessian_input_activation"
    MEAN_ACTIVATION_VARIANCE = "mean_activation_variance"
    MAX_ACTIVATION_VARIANCE = "max_activation_variance"
    MEAN_ACTIVATION_MAGNITUDE = "mean_activation_magnitude"


class GroupSizeFallbackMode(StrEnum):
    """What to do with a layer whose input-channel count the group size does not divide.

    ``ERROR`` raises, ``IGNORE`` keeps such layers in float, ``ADJUST`` uses the largest power of two that divides
    the channel count (at least ``min_adjusted_group_size``), or the backup precision when there is none.
    """

    ERROR = "error"
    IGNORE = "ignore"
    ADJUST = "adjust"


class CompressionFormat(StrEnum):
    """How the compressed weights are represented in the model; OpenVINO supports ``DQ`` only."""

    DQ = "dequantize"
    FQ = "fake_quantize"
    FQ_LORA = "fake_quantize_with_lora"
    FQ_LORA_NLS = "fake_quantize_with_lora_nls"


# How nncf 3.4.0 treats each mode.
INT8_MODES = (CompressWeightsMode.INT8_ASYM, CompressWeightsMode.INT8_SYM)
DEFAULT_GROUP_SIZE_4BIT = 128
# modes with a fixed group size: its default, the only value allowed
FIXED_GROUP_SIZES = {
    CompressWeightsMode.MXFP4: 32,
    CompressWeightsMode.MXFP8_E4M3: 32,
    CompressWeightsMode.NVFP4: 16,
}
# float formats, which nncf's data-aware algorithms (AWQ, scale estimation, GPTQ, LoRA correction) refuse
FLOAT_FORMAT_MODES = (
    CompressWeightsMode.MXFP4,
    CompressWeightsMode.MXFP8_E4M3,
    CompressWeightsMode.FP8_E4M3,
    CompressWeightsMode.FP4,
    CompressWeightsMode.NVFP4,
)
CODEBOOK_MODES = (  # per channel by default
    CompressWeightsMode.CB4,
    CompressWeightsMode.CODEBOOK,
    CompressWeightsMode.ADAPTIVE_CODEBOOK,
)


def codebook_bits(size: int) -> int:
    """Bits of the indices into a codebook of ``size`` values (4, 8 or 16, their OpenVINO types')."""
    return 4 if size <= 16 else 8 if size <= 256 else 16


# the backup precision when `backup_mode` is None, if not INT8_ASYM
DEFAULT_BACKUP_MODES = {
    CompressWeightsMode.MXFP4: BackupMode.MXFP8_E4M3,
    CompressWeightsMode.MXFP8_E4M3: BackupMode.MXFP8_E4M3,
    CompressWeightsMode.FP4: BackupMode.FP8_E4M3,
    CompressWeightsMode.FP8_E4M3: BackupMode.FP8_E4M3,
}


# Members nncf 3.4.0 has and optimum-wc does not implement yet, by enum: a clear error instead of "unknown".
NNCF_ONLY_MEMBERS: dict[type[Enum], dict[str, str]] = {}

E = TypeVar("E", bound=Enum)


def coerce_enum(value: object, enum_cls: type[E], argument: str) -> E:
    """Returns the member of ``enum_cls`` that ``value`` names.

    ``value`` may be a member of ``enum_cls``, a member of another enum with the same member name (e.g. nncf's),
    or a string equal to a member's name or value (case-insensitive).

    Raises:
        InvalidArgumentTypeError: ``value`` is neither an enum member nor a string.
        NotYetSupportedError: ``value`` names an nncf member that optimum-wc does not implement yet.
        UnsupportedArgumentError: ``value`` names no member.
    """
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, Enum):
        key = value.name
    elif isinstance(value, str):
        key = value
    else:
        allowed = ", ".join(m.name for m in enum_cls)
        msg = (
            f"`{argument}` must be a {enum_cls.__name__} member or its name, got {type(value).__name__} "
            f"({value!r}). Allowed: {allowed}."
        )
        raise InvalidArgumentTypeError(msg)
    for member in enum_cls:
        if key.upper() == member.name or key.lower() == member.value:
            return member
    for name, val in NNCF_ONLY_MEMBERS.get(enum_cls, {}).items():
        if key.upper() == name or key.lower() == val:
            supported = ", ".join(m.name for m in enum_cls)
            msg = f"`{argument}`={name} is an nncf option that optimum-wc does not support yet. Supported: {supported}."
            raise NotYetSupportedError(msg)
    allowed = ", ".join(m.name for m in enum_cls)
    msg = f"`{argument}`={value!r} is not a {enum_cls.__name__}. Allowed: {allowed}."
    raise UnsupportedArgumentError(msg)
