"""Advanced parameters, field for field those of ``nncf.AdvancedCompressionParameters`` (3.4.0).

Only ``group_size_fallback_mode`` and ``min_adjusted_group_size`` change what the data-free core does; the other
fields belong to the data-aware algorithms. All of them are recorded in the model's rt_info exactly as nncf
records them, so the compressed IR is the same. Options of our own carry the ``OUR_EXTENSION`` mark: they are
recorded only when set away from their default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
import numbers
from typing import Any

from optimum_wc.config.enums import GroupSizeFallbackMode, coerce_enum
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError

OUR_EXTENSION = "optimum_wc_extension"  # field metadata: an option nncf does not have


@dataclass
class AdvancedAWQParameters:
    subset_size: int = 32
    percent_to_apply: float = 0.002
    alpha_min: float = 0.0
    alpha_max: float = 1.0
    steps: int = 100
    prefer_data_aware_scaling: bool = True


@dataclass
class AdvancedScaleEstimationParameters:
    subset_size: int = 64
    initial_steps: int = 5
    scale_steps: int = 5
    weight_penalty: float = -1.0


@dataclass
class AdvancedGPTQParameters:
    """nncf's GPTQ options, plus optimum-wc's ``act_order`` (off by default; when on, the result differs from
    nncf's): quantize the columns by decreasing Hessian diagonal, in groups of consecutive columns in that order;
    the weight is stored with its columns in that order and a Gather puts the activation in the same order (shared by
    the MatMuls that read one input). ``static_groups`` keeps the groups and the stored layout of the original
    column order instead (no Gather), each group's parameters fixed beforehand from the original weight; it is less
    accurate. ``one_pass`` (ours too, off by default) takes every layer's inputs from one pass of the model before
    quantization, where nncf runs the calibration set again for each stage of layers with the layers before them
    already quantized; the Hessians are then summed in float64. It is several times faster, not identical to nncf,
    and holds all layers' Hessians at once (``in^2`` float64 numbers per distinct input)."""

    damp_percent: float = 0.1
    block_size: int = 128
    subset_size: int = 128
    act_order: bool = dataclasses.field(default=False, metadata={OUR_EXTENSION: True})
    static_groups: bool = dataclasses.field(default=False, metadata={OUR_EXTENSION: True})
    one_pass: bool = dataclasses.field(default=False, metadata={OUR_EXTENSION: True})


@dataclass
class AdvancedLoraCorrectionParameters:
    adapter_rank: int = 8
    num_iterations: int = 3
    apply_regularization: bool = True
    subset_size: int = 128
    use_int8_adapters: bool = True


# the element types an adaptive codebook may be stored in (nncf's TensorDataType values)
ADAPTIVE_VALUE_TYPES = ("f8e4m3", "float16", "float32")


@dataclass
class AdvancedAdaptiveCodebookParameters:
    """ADAPTIVE_CODEBOOK's options: the codebook's element type (``value_type``, one of
    :data:`ADAPTIVE_VALUE_TYPES`, or nncf's ``TensorDataType`` member), one codebook per family of same-named layers
    (``across_blocks``) rather than per layer, and the number of values (``num_elements``)."""

    value_type: str = "f8e4m3"
    across_blocks: bool = False
    num_elements: int = 16

    def __post_init__(self) -> None:
        if isinstance(self.value_type, Enum):
            self.value_type = self.value_type.value
        if self.value_type not in ADAPTIVE_VALUE_TYPES:
            msg = (
                f"`advanced_parameters.adaptive_codebook_params.value_type` must be one of "
                f"{', '.join(ADAPTIVE_VALUE_TYPES)}, got {self.value_type!r}."
            )
            raise InvalidArgumentError(msg)
        count = self.num_elements
        if isinstance(count, bool) or not isinstance(count, int) or count < 2:
            msg = f"`advanced_parameters.adaptive_codebook_params.num_elements` must be an int >= 2, got {count!r}."
            raise InvalidArgumentError(msg)


@dataclass
class AdvancedCompressionParameters:
    """Advanced options of :func:`optimum_wc.compress_weights`, named as in nncf.

    Args:
        statistics_path: Directory of cached activation statistics (data-aware compression).
        lora_adapter_rank: Rank of the LoRA adapters of nncf's FQ_LORA format (recorded only).
        group_size_fallback_mode: What to do with layers the group size does not divide.
        min_adjusted_group_size: Smallest group size the ``ADJUST`` fallback may choose.
    """

    statistics_path: str | None = None
    lora_adapter_rank: int = 256
    group_size_fallback_mode: GroupSizeFallbackMode = GroupSizeFallbackMode.ERROR
    min_adjusted_group_size: int = 32
    awq_params: AdvancedAWQParameters = field(default_factory=AdvancedAWQParameters)
    scale_estimation_params: AdvancedScaleEstimationParameters = field(
        default_factory=AdvancedScaleEstimationParameters
    )
    gptq_params: AdvancedGPTQParameters = field(default_factory=AdvancedGPTQParameters)
    lora_correction_params: AdvancedLoraCorrectionParameters = field(default_factory=AdvancedLoraCorrectionParameters)
    backend_params: dict[str, Any] = field(default_factory=dict)
    codebook: Any | None = None
    adaptive_codebook_params: AdvancedAdaptiveCodebookParameters = field(
        default_factory=AdvancedAdaptiveCodebookParameters
    )

    def __post_init__(self) -> None:
        self.group_size_fallback_mode = coerce_enum(
            self.group_size_fallback_mode, GroupSizeFallbackMode, "advanced_parameters.group_size_fallback_mode"
        )
        size = self.min_adjusted_group_size
        if not isinstance(size, numbers.Real):  # any number, as nncf compares it (0 or less: no minimum)
            msg = f"`advanced_parameters.min_adjusted_group_size` must be a number, got {size!r}."
            raise InvalidArgumentTypeError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Nested dict with enums as their values, in field order (the text nncf stores in rt_info)."""
        return _as_dict(self)


def _as_dict(obj: Any) -> dict[str, Any]:
    result = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get(OUR_EXTENSION) and value == f.default:
            continue  # an option nncf lacks, left at its default: the text stays nncf's
        if dataclasses.is_dataclass(value):
            result[f.name] = _as_dict(value)
        elif isinstance(value, Enum):
            result[f.name] = value.value
        else:
            result[f.name] = value
    return result


def _from_foreign(cls: type, value: Any, argument: str) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not hasattr(value, f.name):
            continue
        item = getattr(value, f.name)
        if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            item = _from_foreign(f.default_factory, item, f"{argument}.{f.name}")
        elif isinstance(item, Enum) and f.name != "group_size_fallback_mode":
            item = item.value
        kwargs[f.name] = item
    return cls(**kwargs)


def advanced_from_dict(values: dict[str, Any]) -> AdvancedCompressionParameters:
    """``AdvancedCompressionParameters`` from a dict of its fields, with dicts for its nested parameters (what
    ``WeightCompressionConfig`` saves and takes)."""
    return _from_dict(AdvancedCompressionParameters, values, "advanced_parameters")


def _from_dict(cls: type, values: dict, argument: str) -> Any:
    """``cls`` from a dict of its fields, with dicts for its nested records; unknown keys are named."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidArgumentError(f"`{argument}` has unknown keys {unknown}. Allowed: {', '.join(fields)}.")
    kwargs = {}
    for name, item in values.items():
        nested = fields[name].default_factory
        if isinstance(nested, type) and dataclasses.is_dataclass(nested):
            if not isinstance(item, dict):
                raise InvalidArgumentTypeError(f"`{argument}.{name}` must be a dict, got {type(item).__name__}.")
            item = _from_dict(nested, item, f"{argument}.{name}")
        kwargs[name] = item
    return cls(**kwargs)


def changed_fields(value: AdvancedCompressionParameters) -> dict[str, Any]:
    """The fields that differ from their defaults, nested, enums as their values: what a saved config keeps."""
    return _changes(value, AdvancedCompressionParameters())


def _changes(value: Any, default: Any) -> dict[str, Any]:
    result = {}
    for f in dataclasses.fields(value):
        item, base = getattr(value, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(item):
            nested = _changes(item, base)
            if nested:
                result[f.name] = nested
        elif item != base:
            result[f.name] = item.value if isinstance(item, Enum) else item
    return result


def coerce_advanced_parameters(value: object) -> AdvancedCompressionParameters | None:
    """Returns ours for ours, for nncf's ``AdvancedCompressionParameters`` (read field by field) or for None."""
    if value is None or isinstance(value, AdvancedCompressionParameters):
        return value
    if dataclasses.is_dataclass(value) and hasattr(value, "group_size_fallback_mode"):
        return _from_foreign(AdvancedCompressionParameters, value, "advanced_parameters")
    msg = (
        "`advanced_parameters` must be an AdvancedCompressionParameters (ours or nncf's) or None, "
        f"got {type(value).__name__}."
    )
    raise InvalidArgumentTypeError(msg)
