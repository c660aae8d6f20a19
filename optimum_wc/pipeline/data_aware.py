"""Data-aware compression, composed as nncf composes it: AWQ, then GPTQ or scale estimation; or SpQR alone.

Each step updates the plan in place: AWQ and GPTQ write new float weights into the model (and AWQ may insert a
Multiply), GPTQ and scale estimation set precomputed quantization parameters that the final lowering uses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
import logging
import os
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

import openvino as ov
from optimum_wc._utils.parallel import default_workers, ordered_map, single_threaded_blas
from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples
from optimum_wc.algorithms.awq import (
    PreviousLayer,
    data_aware_expert_scales,
    data_aware_scale,
    data_free_scale,
)
from optimum_wc.algorithms.gptq import GPTQResult, gptq_quantize_stacked, stack_experts
from optimum_wc.algorithms.scale_estimation import (
    EstimatedParameters,
    estimate_expert_scales,
    estimate_scale,
    estimated_group_parameters,
)
from optimum_wc.algorithms.spqr import spqr_quantize
from optimum_wc.algorithms.spqr_storage import share_permutations, to_spqr_storage
from optimum_wc.config.advanced import AdvancedGPTQParameters, AdvancedScaleEstimationParameters
from optimum_wc.config.enums import CompressWeightsMode
from optimum_wc.config.settings import INT8_MODES, CompressionSettings
from optimum_wc.errors import InvalidGroupSizeError, UnsupportedModelError
from optimum_wc.openvino.awq import find_awq_matches, insert_scale, weight_constants
from optimum_wc.openvino.graph import ModelGraph, set_constant
from optimum_wc.openvino.layerwise import TensorStore, layerwise_inputs
from optimum_wc.openvino.nncf_schedule import repeats
from optimum_wc.openvino.pages import release
from optimum_wc.openvino.scratch import ScratchIR
from optimum_wc.openvino.statistics import activation_channel_axis, activation_point, input_statistics, run_points
from optimum_wc.openvino.statistics_cache import cached
from optimum_wc.pipeline.calibration import inference_items
from optimum_wc.pipeline.layer_inputs import LayerInputs, batches
from optimum_wc.pipeline.orientation import constant_values, oriented, to_stored_layout
from optimum_wc.pipeline.planning import Plan, WeightPlan

logger = logging.getLogger(__name__)

# GPTQ's inner scale estimation uses nncf's function defaults, not advanced_parameters.scale_estimation_params.
GPTQ_SCALE_ESTIMATION = AdvancedScaleEstimationParameters(
    subset_size=32, initial_steps=5, scale_steps=10, weight_penalty=-1.0
)


def needs_data_aware(settings: CompressionSettings) -> bool:
    return settings.awq or settings.scale_estimation or settings.gptq or settings.mode == CompressWeightsMode.SPQR


class DataAwareCompression:
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
        stats = None
        if settings.dataset is not None and (awq_data_aware or (settings.scale_estimation and not settings.gptq)):
            stats = self._input_statistics(
                [w.target for w in self.matmuls + self.experts], self.items(settings.subset_size)
            )
        if settings.awq:
            self.awq(stats if awq_data_aware else None)
            self.graph = ModelGraph(self.model)
        if settings.gptq:
            self.gptq()
        elif settings.scale_estimation:
            self.scale_estimation(stats)

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
        candidates = self.matmuls + self.experts if experts else self.matmuls
        return [w for w in candidates if w.precision.mode not in INT8_MODES]

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
                mode, group_size, inputs = weight.precision.mode.value, weight.precision.group_size, stats[match.target]
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
                weight.precision.mode.value,
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

    def _one_pass(
        self,
        targets: list[WeightPlan],
        count: int,
        keep_means: bool,
        description: str,
        compute: Callable[[list[WeightPlan], LayerInputs, list[np.ndarray]], list[Any]],
        apply: Callable[[WeightPlan, Any], None],
    ) -> None:
        """``apply(weight, result)`` for each target, the results of ``compute(batch, inputs, data)`` for each
        batch of targets (:func:`~optimum_wc.pipeline.layer_inputs.batches`), with their inputs in the model before
        quantization (summed Hessians, and the item means with ``keep_means``) from one pass over ``count``
        calibration items; ``compute`` runs on worker threads (the targets no longer depend on each other), the
        weights are read and the graph changed on this thread."""
        points = {w.target.op_name: activation_point(self.graph, w.target) for w in targets}
        inputs: dict = {}
        for weight in targets:
            inputs.setdefault(
                points[weight.target.op_name], LayerInputs(weight.target.shape[1], keep_means, summed=True)
            )
        with single_threaded_blas():  # the Hessian sums beside the plugin's streams (2.05 -> 1.78 s, CPU 3.9 -> 2.8 s)
            run_points(self.model, list(inputs), self.items(count), lambda point, values: inputs[point].add(values[0]))
        groups = batches(targets, lambda w: inputs[points[w.target.op_name]])
        work = ((batch, shared, [w.target.read_float32() for w in batch]) for batch, shared in groups)
        # BLAS on one thread for any number of workers, so that the products, and the result, do not depend on it
        with tqdm(total=len(targets), desc=description, disable=not self.progress) as bar, single_threaded_blas():
            for (batch, _, _), results in ordered_map(lambda item: compute(*item), work, self.workers):
                for weight, result in zip(batch, results):
                    apply(weight, result)
                bar.update(len(batch))

    def _layer_by_layer(
        self,
        targets: list[WeightPlan],
        count: int,
        keep_means: bool,
        description: str,
        quantize: Callable[[list[WeightPlan], LayerInputs], None],
        again: Counter[str] | None = None,
    ) -> None:
        """Runs ``quantize`` on each batch of targets (:func:`~optimum_wc.pipeline.layer_inputs.batches`) with the
        inputs
        they see after the targets before them were quantized (the Hessian, and the item means with ``keep_means``),
        from ``count`` calibration items; then ``again[name]`` more times on that target alone, with those inputs."""
        inputs: dict[str, LayerInputs] = {}
        again = again or Counter()

        def consumer(group: list) -> Callable[[np.ndarray], None]:
            experts = group[0].shape[0] if len(group[0].shape) == 3 else None
            shared = LayerInputs(group[0].shape[-1], keep_means, experts=experts)
            inputs.update({target.op_name: shared for target in group})
            return shared.add

        with tqdm(total=len(targets), desc=description, disable=not self.progress) as bar:
            store = TensorStore(self.spill_dir)
            on_targets = [w.target for w in targets]
            for stage in layerwise_inputs(self.model, self.graph, on_targets, self.items(count), consumer, store):
                for batch, shared in batches(
                    [self.by_op[t.op_name] for t in stage], lambda w: inputs[w.target.op_name]
                ):
                    quantize(batch, shared)
                    for weight in batch:
                        for _ in range(again[weight.target.op_name]):
                            quantize([weight], shared)
                    bar.update(len(batch))
                for target in stage:
                    del inputs[target.op_name]

    def gptq(self) -> None:
        gptq_settings = self.settings.advanced_parameters.gptq_params
        targets = self._four_bit(experts=True)
        for weight in targets:
            self._check_layout(weight, "GPTQ", "or use scale_estimation instead of gptq")
        experts = [w.target.op_name for w in targets if len(w.target.shape) == 3]
        if experts and (gptq_settings.act_order or gptq_settings.one_pass):
            option = "act_order" if gptq_settings.act_order else "one_pass"
            raise UnsupportedModelError(
                f"GPTQ's `{option}` does not take 3-D expert weights yet: {', '.join(experts[:3])}"
                + (" ..." if len(experts) > 3 else "")
                + ". Leave them out with `ignored_scope`, or unset it."
            )
        description = "Applying GPTQ" + (" with Scale Estimation" if self.settings.scale_estimation else "")

        def compute(batch: list[WeightPlan], inputs: LayerInputs, data: list[np.ndarray]) -> list[GPTQResult]:
            return self._gptq_results(batch, inputs, data, gptq_settings)

        def quantize(batch: list[WeightPlan], inputs: LayerInputs) -> None:
            for weight, result in zip(batch, compute(batch, inputs, [w.target.read_float32() for w in batch])):
                self._gptq_apply(weight, result)

        count, keep_means = gptq_settings.subset_size, self.settings.scale_estimation
        if gptq_settings.one_pass:
            self._one_pass(targets, count, keep_means, description, compute, self._gptq_apply)
            return
        # the MatMuls nncf's scheduler hands to GPTQ more than once (each planned MatMul is one of its stops)
        again = repeats(self.graph, [w.target.op_name for w in self.matmuls + self.experts])
        self._layer_by_layer(targets, count, keep_means, description, quantize, again)

    def spqr(self) -> None:
        config = self.settings.spqr
        targets = [w for w in self.matmuls if w.precision.mode == CompressWeightsMode.SPQR]
        for weight in targets:
            self._check_layout(weight, "SpQR", "or keep it in the backup precision")
        uneven = [
            f'"{w.target.op_name}" ({w.target.shape[0]} outputs)'
            for w in targets
            if w.target.shape[0] % config.qq_groupsize
        ]
        if uneven:
            msg = (
                f"`spqr.qq_groupsize`={config.qq_groupsize} does not divide the output channels of these layers:"
                "\n\t" + "\n\t".join(uneven) + "\nChoose a qq_groupsize that divides them, or leave them out "
                "with `ignored_scope`."
            )
            raise InvalidGroupSizeError(msg)

        def quantize(batch: list[WeightPlan], inputs: LayerInputs) -> None:
            inverse = inputs.inverse(config.percdamp, config.act_order)
            for weight in batch:
                settings = replace(config, group_size=weight.precision.group_size)
                result = spqr_quantize(weight.target.read_float32(), inverse, settings)
                self._replace_weight(weight.target.constant, result.weight)  # later layers see it quantized
                weight.spqr = to_spqr_storage(result)

        self._layer_by_layer(targets, config.num_samples, False, "Applying SpQR", quantize)
        for weight, stored in zip(targets, share_permutations([w.spqr for w in targets])):
            weight.spqr = stored

    def _check_layout(self, weight: WeightPlan, algorithm: str, alternative: str) -> None:
        op = self.graph.by_name[weight.target.op_name]
        attributes = op.get_attributes()
        if weight.target.port != 1 or not attributes["transpose_b"] or attributes["transpose_a"]:
            msg = (
                f"{algorithm} needs MatMuls with the activation on input 0 (not transposed) and a transposed weight "
                f"on input 1; {weight.target.op_name!r} is not one. Leave it out with `ignored_scope`, {alternative}."
            )
            raise UnsupportedModelError(msg)

    def _gptq_results(
        self, batch: list[WeightPlan], inputs: LayerInputs, data: list[np.ndarray], settings: AdvancedGPTQParameters
    ) -> list[GPTQResult]:
        """GPTQ on the float32 weights ``data`` ``[out_i, in]`` of a batch, one pass over their stacked rows (no graph
        access: it may run on a worker thread)."""
        mode, group_size = batch[0].precision.mode.value, batch[0].precision.group_size
        inverse = inputs.inverse(settings.damp_percent, settings.act_order)
        if inputs.experts is not None:  # each expert on its own, with its own Hessian and inputs (as nncf does)
            per_expert = [
                self._gptq_quantize(
                    [w[e] for w in data],
                    inverse[e],
                    mode,
                    group_size,
                    settings,
                    [m[e] for m in inputs.means],
                    inputs.tokens,
                )
                for e in range(inputs.experts)
            ]
            return [stack_experts([results[i] for results in per_expert]) for i in range(len(data))]
        return self._gptq_quantize(data, inverse, mode, group_size, settings, inputs.means, inputs.tokens)

    def _gptq_quantize(
        self,
        data: list[np.ndarray],
        inverse,
        mode: str,
        group_size: int,
        settings: AdvancedGPTQParameters,
        means: list[np.ndarray],
        tokens: list[int],
    ) -> list[GPTQResult]:
        """GPTQ of 2-D weights ``[out_i, in]`` sharing ``inverse``; ``means`` and ``tokens`` of their inputs, per item,
        for scale estimation."""
        group_parameters = None
        if self.settings.scale_estimation:
            item_means = np.stack(means)
            if inverse.order is not None and not settings.static_groups:  # groups of the permuted columns
                item_means = item_means[:, inverse.order]
            inputs = InputStatistics(item_means, tuple(tokens))
            group_parameters = estimated_group_parameters(inputs, mode, GPTQ_SCALE_ESTIMATION)
        return gptq_quantize_stacked(data, inverse, mode, group_size, settings, group_parameters)

    def _gptq_apply(self, weight: WeightPlan, result: GPTQResult) -> None:
        self._replace_weight(weight.target.constant, result.weight)  # original order: later layers see it quantized
        weight.parameters = (result.scale, result.zero_point)
        weight.permutation = result.order


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
