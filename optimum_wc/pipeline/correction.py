"""LoRA correction in the pipeline: which weights get adapters, nncf's refusals (made before any work), and the
fit, which runs after AWQ and scale estimation, on the weights as they will be compressed."""

from __future__ import annotations

from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from optimum_wc import kernels
from optimum_wc._utils.parallel import ordered_map
from optimum_wc.algorithms.activations import InputStatistics
from optimum_wc.algorithms.lora import least_squares, low_rank_adapters, store_adapters
from optimum_wc.config.advanced import AdvancedLoraCorrectionParameters
from optimum_wc.config.enums import CompressWeightsMode
from optimum_wc.errors import InternalError, UnsupportedModelError
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.pipeline.planning import Plan, WeightPlan, check_2d_matmuls, kernel_mode

# the modes whose dequantization nncf's LoRA correction knows; another mode of at most 4 bits is refused
CORRECTED_MODES = frozenset(
    {
        CompressWeightsMode.INT4_SYM,
        CompressWeightsMode.INT4_ASYM,
        CompressWeightsMode.INT3_SYM,
        CompressWeightsMode.INT2_SYM,
        CompressWeightsMode.NF4,
    }
)


def corrected(plan: Plan) -> list[WeightPlan]:
    """The weights that get adapters: those of at most 4 bits (nncf's rule; 8-bit backups get none)."""
    return [w for w in plan.to_compress if w.precision.bits <= 4]


def check_correction(plan: Plan, graph: ModelGraph) -> None:
    """Refuses, before any work, what nncf refuses (or fails on) only once it meets it."""
    least_squares()  # scipy, from the ``lora`` extra
    for weight in plan.to_compress:
        op = graph.by_name[weight.target.op_name]
        if op.get_type_name() == "MatMul" and op.get_attributes().get("transpose_a"):
            msg = f"LoRA correction does not support MatMuls with transposed activations: {weight.target.op_name}."
            raise UnsupportedModelError(msg)
    targets = corrected(plan)
    for weight in targets:
        mode = weight.precision.mode
        if mode not in CORRECTED_MODES:
            allowed = ", ".join(m.name for m in sorted(CORRECTED_MODES, key=lambda m: m.value))
            msg = f"`mode`={mode.name} cannot be used with `lora_correction`; it supports {allowed}."
            raise InternalError(msg)
    check_2d_matmuls(targets, "`lora_correction`")


def fit_adapters(
    weights: list[WeightPlan],
    stats: dict[str, InputStatistics],
    params: AdvancedLoraCorrectionParameters,
    workers: int,
    progress: bool,
) -> None:
    """Sets ``adapters`` on each weight: the fit of the error between it and its compressed form (with the
    parameters that scale estimation chose, if it ran). The SVD and solvers run at the caller's BLAS thread count,
    as nncf's do."""

    def reads() -> Iterator[tuple[WeightPlan, np.ndarray]]:
        for weight in weights:
            yield weight, weight.target.read_float32()

    def fit(item: tuple[WeightPlan, np.ndarray]):
        weight, data = item
        target, precision = weight.target, weight.precision
        scale, zero_point = weight.parameters or (None, None)
        compressed = kernels.compress(
            data, target.reduction_axes, kernel_mode(precision), precision.group_size, scale, zero_point
        )
        try:
            adapters = low_rank_adapters(
                data,
                kernels.decompress(compressed),
                target.reduction_axes[0] % data.ndim,
                precision.group_size,
                stats[target.op_name],
                params,
            )
        except np.linalg.LinAlgError as exc:  # nncf fails the same way, without naming the layer
            msg = (
                f"LoRA correction of {target.op_name} failed: {exc}. Its calibration inputs are zero (or not finite) "
                "in a whole quantization group of channels; use more varied calibration data or ignore the layer."
            )
            raise np.linalg.LinAlgError(msg) from exc
        return store_adapters(adapters, target.reduction_axes, params.use_int8_adapters)

    for (weight, _), adapters in tqdm(
        ordered_map(fit, reads(), workers, blas_exact=True),
        total=len(weights),
        desc="Fitting low-rank adapters",
        disable=not progress,
    ):
        weight.adapters = adapters
