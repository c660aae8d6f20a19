"""Data-aware compression, composed as nncf composes it: AWQ, then GPTQ or scale estimation; or SpQR alone.

Each step updates the plan in place: AWQ and GPTQ write new float weights into the model (and AWQ may insert a
Multiply), GPTQ and scale estimation set precomputed quantization parameters that the final lowering uses.
"""

from __future__ import annotations

from dataclasses import replace
import logging
import os
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

import openvino as ov
from optimum_wc._utils.parallel import default_workers, ordered_map
from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples
from optimum_wc.algorithms.awq import (
    PreviousLayer,
    data_aware_expert_scales,
    data_aware_scale,
    data_free_scale,
)
from optimum_wc.algorithms.scale_estimation import (
    EstimatedParameters,
    estimate_expert_scales,
    estimate_scale,
)
from optimum_wc.config.enums import CompressWeightsMode
from optimum_wc.config.settings import INT8_MODES, CompressionSettings
from optimum_wc.openvino.awq import find_awq_matches, insert_scale, weight_constants
from optimum_wc.openvino.graph import ModelGraph, set_constant
from optimum_wc.openvino.pages import release
from optimum_wc.openvino.scratch import ScratchIR
from optimum_wc.openvino.statistics import activation_channel_axis, input_statistics
from optimum_wc.openvino.statistics_cache import cached
from optimum_wc.pipeline.calibration import inference_items
from optimum_wc.pipeline.codebooks import check_estimation, estimate_codebooks
from optimum_wc.pipeline.correction import check_correction, corrected, fit_adapters
from optimum_wc.pipeline.layerwise_steps import LayerwiseSteps
from optimum_wc.pipeline.orientation import constant_values, oriented, to_stored_layout
from optimum_wc.pipeline.planning import Plan, WeightPlan, kernel_mode

logger = logging.getLogger(__name__)


def needs_data_aware(settings: CompressionSettings) -> bool:
    return (
        settings.awq
        or settings.scale_estimation
        or settings.gptq
        or settings.lora_correction
        or settings.mode in (CompressWeightsMode.SPQR, CompressWeightsMode.ADAPTIVE_CODEBOOK)
    )


class DataAwareCompression(LayerwiseSteps):
    """Runs the data-aware steps on a model whose precisions are planned."""

    def __init__(
        self,
        model: ov.Model,
        plan: Plan,
        settings: CompressionSettings,
        items: Callable[[int], list[Any]],
        progress: bool,
        spill_dir: str | os.PathLike | None = None,
        workers: int | None = None,
    ):
        self.workers = workers or default_workers()
        self.spill_dir = spill_dir  # where cached activations and rewritten weights go (None: memory)
        self._hold: Callable[[ov.Node], None] | None = None
        self.model = model
        self.plan = plan
        self.settings = settings
        self.items = items
        self.progress = progress
        self.graph = ModelGraph(model)
        self.matmuls = [w for w in plan.to_compress if w.target.kind == "matmul" and len(w.target.shape) == 2]
        # fused MoE experts: 3-D weights [experts, out, in] on inputs [experts, tokens, in] (GPTQ, scale estimation)
        self.experts = [w for w in plan.to_compress if w.target.kind == "matmul" and len(w.target.shape) == 3]
        self.by_op = {w.target.op_name: w for w in self.matmuls + self.experts}

    def run(self) -> None:
        """With ``spill_dir``, the weights the steps rewrite are memory-mapped from temporary files there, not kept
        in anonymous memory (see :class:`~optimum_wc.openvino.scratch.ScratchIR`)."""
        if self.spill_dir is None:
            self._run()
            return
        with ScratchIR(self.spill_dir, on_mapped=lambda _, mapped: self._point_to(mapped)) as scratch:
            self._hold = scratch.hold
            try:
                self._run()
            finally:
                self._hold = None

    def _run(self) -> None:
        settings, advanced = self.settings, self.settings.advanced_parameters
        if settings.mode == CompressWeightsMode.SPQR:
            self.spqr()
            return
        awq_data_aware = settings.awq and advanced.awq_params.prefer_data_aware_scaling
        adaptive = settings.mode == CompressWeightsMode.ADAPTIVE_CODEBOOK
        if adaptive:
            check_estimation(self.plan, advanced.adaptive_codebook_params)
        if settings.lora_correction:
            check_correction(self.plan, self.graph)
        stats = None
        statistics_users = (settings.scale_estimation or settings.lora_correction) and not settings.gptq
        if settings.dataset is not None and (awq_data_aware or statistics_users or adaptive):
            stats = self._input_statistics(
                [w.target for w in self.matmuls + self.experts], self.items(settings.subset_size)
            )
        if settings.awq:
            self.awq(stats if awq_data_aware else None)
            self.graph = ModelGraph(self.model)
        if adaptive:
            estimate_codebooks(self.plan, stats, advanced.adaptive_codebook_params, self.workers, self.progress)
        if settings.gptq:
            self.gptq()
            return
        if settings.scale_estimation:
            self.scale_estimation(stats)
        if settings.lora_correction:
            params = advanced.lora_correction_params
            fit_adapters(corrected(self.plan), stats, params, self.workers, self.progress)

    def _input_statistics(self, targets: list, items: list[Any]) -> dict[str, InputStatistics]:
        """Per-target input means, from ``statistics_path`` when a previous run saved them there."""
        names = [t.op_name for t in targets]

        def compute() -> dict[str, np.ndarray]:
            stats = input_statistics(self.model, self.graph, targets, items)
            return {
                **{f"means/{i}": stats[name].means for i, name in enumerate(names)},
                **{f"tokens/{i}": np.asarray(stats[name].tokens, dtype=np.int64) for i, name in enumerate(names)},
            }

        path = self.settings.advanced_parameters.statistics_path
        arrays = cached(path, self.model, items, "input_means", names, compute)
        return {
            name: InputStatistics(arrays[f"means/{i}"], tuple(int(t) for t in arrays[f"tokens/{i}"]))
            for i, name in enumerate(names)
        }

    def _replace_weight(self, constant: ov.Node, values: np.ndarray) -> None:
        new = set_constant(constant, values)
        self._point_to(new, in_memory=True)
        if self._hold is not None:
            self._hold(new)

    def _point_to(self, constant: ov.Node, in_memory: bool = False) -> None:
        """The plan's weights of that name now read ``constant`` (built in memory, or mapped from a file)."""
        name = constant.get_friendly_name()
        for weight in self.plan.weights:
            if weight.target.constant_name == name:
                weight.target = replace(weight.target, constant=constant, in_memory=in_memory)

    def _four_bit(self, experts: bool = False) -> list[WeightPlan]:
        """AWQ's and scale estimation's weights: those of at most 4 bits (nncf skips wider codes, such as the
        indices into a codebook of more than 16 values)."""
        candidates = self.matmuls + self.experts if experts else self.matmuls
        return [w for w in candidates if w.precision.bits <= 4]

    def _not_int8(self) -> list[WeightPlan]:
        """GPTQ's weights: all but the INT8 ones (nncf's rule)."""
        return [w for w in self.matmuls + self.experts if w.precision.mode not in INT8_MODES]

    def awq(self, stats: dict[str, InputStatistics] | None) -> None:
        awq_settings = self.settings.advanced_parameters.awq_params
        matches = find_awq_matches(self.graph, [w.target.op_name for w in self._four_bit(experts=True)])
        if not matches:
            logger.info("No pattern for AWQ was found in the model; AWQ is skipped.")
        description = "Applying data-aware AWQ" if stats is not None else "Applying data-free AWQ"
        for match in tqdm(matches, desc=description, disable=not (matches and self.progress)):
            weight = self.by_op[match.target]
            w, transposed = oriented(weight)
            merge_constants = []
            if self.graph.type_of(match.merge) == "MatMul":
                merge_constants = weight_constants(self.graph, match.merge)
            mergeable = any(len(c.get_output_shape(0)) == len(weight.target.shape) for c in merge_constants)
            if stats is None:
                c = data_free_scale(w)
            else:
                previous = self._previous(match.merge, merge_constants, weight, stats) if mergeable else None
                mode, group_size, inputs = (
                    kernel_mode(weight.precision),
                    weight.precision.group_size,
                    stats[match.target],
                )
                if w.ndim == 3:  # fused experts
                    c = data_aware_expert_scales(w, inputs, mode, group_size, awq_settings, previous)
                else:
                    s, x = magnitudes_and_samples(inputs, awq_settings.subset_size)
                    c = data_aware_scale(w, s, x, mode, group_size, awq_settings, previous)
            self._fold(weight, match.merge, merge_constants if mergeable else [], c, transposed)
            if stats is not None:
                stats[match.target] = stats[match.target].scaled(1.0 / c)

    def _previous(self, merge: str, constants: list[ov.Node], weight: WeightPlan, stats) -> PreviousLayer | None:
        if merge not in stats:
            return None
        axis = weight.target.reduction_axes[0]
        values = constant_values(constants[0])
        largest = float(np.max(np.abs(stats[merge].means)))  # of every item, channel (and expert)
        return PreviousLayer(np.mean(np.abs(values), axis=axis), largest, values.shape[axis])

    def _fold(
        self, weight: WeightPlan, merge: str, merge_constants: list[ov.Node], c: np.ndarray, transposed: bool
    ) -> None:
        original = weight.target.read()
        scaled = (original.astype(np.float32) * np.expand_dims(c, -1 if transposed else -2)).astype(original.dtype)
        weight.target.release_pages()
        self._replace_weight(weight.target.constant, scaled)
        inverse = (1.0 / c).astype(np.float32)
        if merge_constants:
            rows = np.expand_dims(inverse, -2 if transposed else -1)
            for constant in merge_constants:
                scaled_merge = (constant_values(constant) * rows).astype(original.dtype)
                release(constant.data)
                self._replace_weight(constant, scaled_merge)
        else:
            output = self.graph.by_name[merge].output(0)
            rank = len(output.get_partial_shape())
            axis = activation_channel_axis(self.graph, weight.target)
            leading = iter(inverse.shape[:-1])  # the experts axis, on the activation's first non-hidden axis
            shape = [inverse.shape[-1] if dim == axis else next(leading, 1) for dim in range(rank)]
            insert_scale(self.graph, merge, inverse.reshape(shape))

    def scale_estimation(self, stats: dict[str, InputStatistics]) -> None:
        """Per weight, on worker threads (the weights are read, and the results set, on this thread)."""
        se = self.settings.advanced_parameters.scale_estimation_params
        weights = self._four_bit(experts=True)

        def estimate(item: tuple[WeightPlan, np.ndarray, bool]) -> EstimatedParameters:
            weight, w, _ = item
            mode, group_size, inputs = (
                kernel_mode(weight.precision),
                weight.precision.group_size,
                stats[weight.target.op_name],
            )
            if w.ndim == 3:  # fused experts
                return estimate_expert_scales(w, inputs, mode, group_size, se)
            s, x = magnitudes_and_samples(inputs, se.subset_size)
            return estimate_scale(w, s, x, mode, group_size, se)

        work = ((weight, *oriented(weight)) for weight in weights)
        for (weight, _, transposed), estimated in tqdm(
            ordered_map(estimate, work, self.workers, blas_exact=True),
            total=len(weights),
            desc="Applying Scale Estimation",
            disable=not self.progress,
        ):
            per_channel = weight.precision.group_size == -1
            weight.parameters = (
                to_stored_layout(estimated.scale, transposed, per_channel),
                to_stored_layout(estimated.zero_point, transposed, per_channel),
            )


def apply_data_aware(
    model: ov.Model,
    plan: Plan,
    settings: CompressionSettings,
    progress: bool = True,
    spill_dir: str | os.PathLike | None = None,
    workers: int | None = None,
) -> None:
    """Runs AWQ, GPTQ and scale estimation as ``settings`` asks, updating ``model`` and ``plan`` in place; the
    layer-by-layer pass keeps its cached activations in files under ``spill_dir`` when given. ``workers`` threads
    (default: all cores) share the per-weight work; the result does not depend on their number."""
    if not needs_data_aware(settings):
        return
    cache: dict[int, list[Any]] = {}

    def items(count: int) -> list[Any]:
        if count not in cache:
            cache[count] = inference_items(settings.dataset, count)
        return cache[count]

    DataAwareCompression(model, plan, settings, items, progress, spill_dir, workers).run()
