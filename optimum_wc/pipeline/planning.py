"""Choosing a precision for every weight, before any weight is compressed.

The rules are nncf 3.4.0's:

- every weight that may be compressed starts in the backup precision (INT8_ASYM per channel by default, or float);
- the *ratio-defining* set gets the primary precision: all weights in INT8 modes, otherwise the MatMul weights
  without the last MatMul (unless ``all_layers`` or that op was skipped), plus embeddings with ``all_layers``;
- with ``ratio`` < 1, mixed precision moves the most sensitive ratio-defining weights back to the backup precision;
- convolutions always stay in the backup precision; ignored ops and unsupported types stay in float;
- a shared weight belongs to its first compressible use, in topological order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import logging
from typing import Callable, TypeVar

import numpy as np

from optimum_wc._utils.parallel import ordered_map
from optimum_wc.algorithms.lora import StoredAdapters
from optimum_wc.algorithms.mixed_precision import SENSITIVITIES, Sensitivity, select_primary
from optimum_wc.algorithms.spqr_storage import SpQRStored
from optimum_wc.config.enums import CompressWeightsMode, GroupSizeFallbackMode
from optimum_wc.config.settings import INT8_MODES, CompressionSettings, LayerPrecision
from optimum_wc.errors import (
    InvalidArgumentError,
    InvalidGroupSizeError,
    NonFiniteWeightError,
    ParameterNotSupportedError,
    UnsupportedModelError,
)
from optimum_wc.kernels.codebook import CB4_LEVELS
from optimum_wc.kernels.errors import sensitivity_of, weight_sensitivity
from optimum_wc.kernels.registry import Kernel, codebook_kernel
from optimum_wc.openvino import engine
from optimum_wc.openvino.weights import FLOAT_TYPES, WeightTarget

logger = logging.getLogger(__name__)
R = TypeVar("R")
# (MatMul weights, metric) -> aggregated activation statistic by MatMul name
ActivationStats = Callable[[list[WeightTarget], Sensitivity], dict[str, float]]
F8_TYPES = ("f8e4m3", "f8e5m2")


@dataclass
class WeightPlan:
    """The decision for one weight: its precision, or None to keep it in float."""

    target: WeightTarget
    precision: LayerPrecision | None
    ratio_defining: bool = False
    # (scale, zero point) in the grouped layout, when a data-aware algorithm chose them
    parameters: tuple[np.ndarray, np.ndarray | None] | None = None
    # the stored form of a weight that SpQR compressed (then ``parameters`` is unused)
    spqr: SpQRStored | None = None
    # the input-channel order of the stored weight (GPTQ act order): its columns are stored in this order, and the
    # activation is gathered in it at run time
    permutation: np.ndarray | None = None
    # LoRA correction's adapters, added to the MatMul's output
    adapters: StoredAdapters | None = None


@dataclass
class Plan:
    """Every weight the model uses, with the precision chosen for it."""

    weights: list[WeightPlan]  # compressible weights, in topological order
    skipped: list[WeightTarget]  # weights left in float because they are ignored or of an unsupported type

    @property
    def to_compress(self) -> list[WeightPlan]:
        return [w for w in self.weights if w.precision is not None]

    @property
    def ratio_defining(self) -> list[WeightPlan]:
        return [w for w in self.weights if w.ratio_defining]


def check_2d_matmuls(weights: list[WeightPlan], feature: str) -> None:
    """``feature`` fits each of ``weights`` to the inputs of its MatMul: refuses, before any work, a weight without
    them (an embedding, e.g. with ``all_layers``) or with fused experts, which nncf fails on once it meets them."""
    for weight in weights:
        target = weight.target
        if target.kind != "matmul":
            msg = (
                f"{feature} needs the inputs of every weight it applies to, and {target.op_name} ({target.kind}) has "
                "none; leave `all_layers` unset or ignore that layer."
            )
            raise ParameterNotSupportedError(msg)
        if len(target.shape) != 2:
            msg = f"{feature} supports 2-D MatMul weights only; {target.op_name} has shape {target.shape}."
            raise UnsupportedModelError(msg)


def kernel_mode(precision: LayerPrecision) -> str | Kernel:
    """What the kernels and data-aware algorithms take for ``precision``: its mode's name, or for a precision with a
    codebook (CODEBOOK, ADAPTIVE_CODEBOOK) the kernel of its codebook."""
    if precision.codebook is not None:
        return codebook_kernel(np.asarray(precision.codebook), precision.codebook_storage)
    if precision.mode == CompressWeightsMode.ADAPTIVE_CODEBOOK:  # nncf's starting codebook, kept in float32
        return codebook_kernel(CB4_LEVELS)
    return precision.mode.value


def _supports(element_type: str, precision: LayerPrecision | None) -> bool:
    if precision is None:
        return False
    return element_type in FLOAT_TYPES and not (precision.mode in INT8_MODES and element_type in F8_TYPES)


def _backup_for(settings: CompressionSettings, element_type: str) -> LayerPrecision | None:
    backup = settings.backup
    return backup if _supports(element_type, backup) else None


def _collect(targets: list[WeightTarget], ignored: set[str], settings: CompressionSettings) -> tuple[Plan, bool]:
    ops = list(dict.fromkeys(t.op_name for t in targets))
    last_op = ops[-1] if ops else None
    owned: set[str] = set()
    plan = Plan([], [])
    last_skipped = False
    for target in targets:
        is_last = target.op_name == last_op
        if target.constant_name in owned:
            last_skipped = is_last
            continue
        wanted = target.op_name not in ignored and target.constant_name not in ignored
        if wanted and _supports(target.element_type, settings.primary):
            plan.weights.append(WeightPlan(target, _backup_for(settings, target.element_type)))
            owned.add(target.constant_name)
        else:
            last_skipped = is_last
            plan.skipped.append(target)
    return plan, last_skipped


def _ratio_defining(plan: Plan, settings: CompressionSettings, last_skipped: bool) -> list[WeightPlan]:
    if settings.mode in INT8_MODES:
        return list(plan.weights)
    chosen = [w for w in plan.weights if w.target.kind == "matmul"]
    if not settings.all_layers and not last_skipped:
        chosen = chosen[:-1]
    if settings.all_layers:
        chosen += [w for w in plan.weights if w.target.kind == "embedding" and len(w.target.reduction_axes) == 1]
    return chosen


def _channels(weight: WeightPlan) -> int:
    axes = weight.target.reduction_axes
    if len(axes) != 1:
        msg = (
            f"Group-wise quantization needs one reduction axis, but {weight.target.op_name!r} has "
            f"{len(axes)} (weight shape {weight.target.shape})."
        )
        raise UnsupportedModelError(msg)
    return weight.target.shape[axes[0]]


def _apply_group_size_fallback(plan: Plan, chosen: list[WeightPlan], settings: CompressionSettings) -> dict[int, int]:
    """Returns the group size of each ratio-defining weight (by id), dropping those the fallback mode excludes, and
    logs what nncf logs (a warning for IGNORE, notes for ADJUST) with the layers and sizes."""
    group_size = settings.group_size
    sizes = {id(w): group_size for w in chosen}
    fallback = settings.advanced_parameters.group_size_fallback_mode
    if group_size == -1 or fallback == GroupSizeFallbackMode.ERROR:
        return sizes
    ignored, adjusted, to_backup = [], [], []
    for weight in list(chosen):
        channels = _channels(weight)
        if channels % group_size == 0:
            continue
        chosen.remove(weight)
        del sizes[id(weight)]
        if fallback == GroupSizeFallbackMode.IGNORE:
            plan.weights.remove(weight)
            plan.skipped.append(weight.target)
            ignored.append(f"{weight.target.op_name} ({channels} channels)")
            continue
        size = channels & -channels  # largest power of two dividing the channel count
        if size >= settings.advanced_parameters.min_adjusted_group_size:
            chosen.append(weight)
            sizes[id(weight)] = size
            adjusted.append(f"{weight.target.op_name} ({channels} channels): {size}")
        else:
            to_backup.append(f"{weight.target.op_name} ({channels} channels; {size} < min_adjusted_group_size)")
    chosen.sort(key=lambda w: plan.weights.index(w))
    if ignored:
        logger.warning(
            "Group-wise quantization with group size %d cannot be applied to %d layer(s); they are kept in their "
            "original precision (group_size_fallback_mode=IGNORE; ADJUST would use a smaller group size):\n\t%s",
            group_size,
            len(ignored),
            "\n\t".join(ignored),
        )
    if adjusted:
        logger.info(
            "Group size %d does not divide the channels of %d layer(s); adjusted group sizes are used:\n\t%s",
            group_size,
            len(adjusted),
            "\n\t".join(adjusted),
        )
    if to_backup:
        logger.info(
            "No valid adjusted group size for %d layer(s); they are compressed in the %s backup mode:\n\t%s",
            len(to_backup),
            settings.backup_mode.value,
            "\n\t".join(to_backup),
        )
    return sizes


def _map_read_weights(
    fn: Callable[[tuple[WeightPlan, np.ndarray]], R], weights: list[WeightPlan], workers: int, release: bool = True
) -> list[R]:
    """``[fn((w, w.target.read())) for w in weights]`` on ``workers`` threads; with ``release``, each weight's pages
    of a memory-mapped ``.bin`` are given back once used (the float weights are read again, one at a time, when
    compressed); without, they stay mapped for that second read."""
    results = []
    for (weight, _), value in ordered_map(fn, ((w, w.target.read()) for w in weights), workers):
        if release:
            weight.target.release_pages()
        results.append(value)
    return results


def _mixed_precision(
    chosen: list[WeightPlan],
    settings: CompressionSettings,
    workers: int,
    activation_stats: ActivationStats | None,
    release: bool = True,
) -> None:
    if settings.ratio >= 1 or not chosen:
        return
    metric = SENSITIVITIES[settings.sensitivity_metric]
    stats: dict[str, float] = {}
    if metric.data_aware:
        if activation_stats is None:
            raise InvalidArgumentError(f"`sensitivity_metric`={settings.sensitivity_metric.name} needs a `dataset`.")
        stats = activation_stats([w.target for w in chosen if w.target.kind == "matmul"], metric)

    blocks = _error_blocks(chosen, workers) if metric.weight_term is weight_sensitivity else {}

    def score(item: tuple[WeightPlan, np.ndarray]) -> float:
        weight, data = item
        if metric.data_aware and weight.target.kind == "embedding":
            return 0.0  # no activation statistics: compressed first, as nncf does
        prepared = blocks.get(id(weight))
        if prepared is not None and prepared.shape.dtype == data.dtype and data.flags.c_contiguous:
            value = sensitivity_of(engine.int8_error(data, prepared), data.dtype)
        else:
            value = metric.weight_term(data, weight.target.reduction_axes)
        return value * stats[weight.target.op_name] if metric.data_aware else value

    scores = _map_read_weights(score, chosen, workers, release)
    primary = set(select_primary([w.target.num_elements for w in chosen], scores, settings.ratio))
    for index, weight in enumerate(chosen):
        if index not in primary:
            weight.precision = _backup_for(settings, weight.target.element_type)


def _error_blocks(chosen: list[WeightPlan], workers: int) -> dict[int, engine.Prepared]:
    """The engine's block shapes for the weights whose INT8 error nncf computes through OpenVINO (by ``id`` of the
    weight), their models compiled here, on the main thread (the workers only infer)."""
    blocks = {}
    for weight in chosen:
        target = weight.target
        block = engine.BlockShape.of_layout(
            target.shape, target.read_dtype, target.reduction_axes, engine.ERROR_MODE, -1, workers
        )
        if block is not None:
            blocks[id(weight)] = engine.prepare(block)
    return blocks


def _check_group_sizes(chosen: list[WeightPlan], group_size: int) -> None:
    failed = []
    for weight in chosen:
        if weight.precision is None or weight.precision.group_size == -1:
            continue
        channels = _channels(weight)
        if channels % weight.precision.group_size:
            failed.append(f'"{weight.target.op_name}" (channel size: {channels})')
    if failed:
        msg = (
            f"`group_size`={group_size} does not divide the input channels of these layers:\n\t"
            + "\n\t".join(failed)
            + "\nChoose a group size that divides them, or set advanced_parameters.group_size_fallback_mode "
            "to IGNORE (keep them in float) or ADJUST (use a smaller power-of-two group)."
        )
        raise InvalidGroupSizeError(msg)


FINITE_CHECK_BLOCK = 2**18  # float16 elements: read once from memory, both maxima from the cache
POSITIVE_NON_FINITE = 0x7C00  # float16 bits from which a value with the sign bit clear is Inf or NaN
NEGATIVE_NON_FINITE = 0xFC00  # the same with the sign bit set


def _is_finite(data: np.ndarray) -> bool:
    """Whether ``data`` holds no NaN or Inf. float16 is checked on its bits, in blocks: as ``int16`` its positive
    Inf and NaN are the largest values, as ``uint16`` its negative ones are (numpy's float16 comparisons are
    emulated, far slower than two integer maxima)."""
    if not data.size:
        return True
    if data.dtype == np.float16 and data.flags.c_contiguous:
        unsigned = data.reshape(-1).view(np.uint16)
        signed = unsigned.view(np.int16)
        return not any(
            signed[start : start + FINITE_CHECK_BLOCK].max() >= POSITIVE_NON_FINITE
            or unsigned[start : start + FINITE_CHECK_BLOCK].max() >= NEGATIVE_NON_FINITE
            for start in range(0, unsigned.size, FINITE_CHECK_BLOCK)
        )
    return bool(np.isfinite(np.min(data)) and np.isfinite(np.max(data)))


def check_finite(weights: list[WeightPlan], workers: int = 1, release: bool = True) -> None:
    """Raises :class:`NonFiniteWeightError` naming every weight that holds NaN or Inf."""
    finite = _map_read_weights(lambda item: _is_finite(item[1]), weights, workers, release)
    bad = [f"{w.target.constant_name!r} (used by {w.target.op_name!r})" for w, ok in zip(weights, finite) if not ok]
    if bad:
        raise NonFiniteWeightError("These weights hold NaN or Inf values and cannot be compressed: " + ", ".join(bad))


def make_plan(
    targets: list[WeightTarget],
    ignored: set[str],
    settings: CompressionSettings,
    workers: int = 1,
    activation_stats: ActivationStats | None = None,
    release_pages: bool = True,
) -> Plan:
    """Chooses the precision of every weight; raises before anything is changed if the settings cannot apply.
    ``release_pages``: give back the pages of a memory-mapped ``.bin`` once a weight is read (see
    ``WeightTarget.release_pages``)."""
    plan, last_skipped = _collect(targets, ignored, settings)
    chosen = _ratio_defining(plan, settings, last_skipped)
    group_sizes = _apply_group_size_fallback(plan, chosen, settings)
    for weight in chosen:
        weight.ratio_defining = True
        weight.precision = replace(settings.primary, group_size=group_sizes[id(weight)])
    _mixed_precision(chosen, settings, workers, activation_stats, release_pages)
    _check_group_sizes(chosen, settings.group_size)
    check_finite(plan.to_compress, workers, release_pages)
    return plan
