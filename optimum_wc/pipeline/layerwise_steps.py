"""The layer-by-layer steps of data-aware compression: GPTQ and SpQR, which quantize each layer on the inputs it
gets with the layers before it already quantized (as nncf runs GPTQ), or on one pass's inputs (``one_pass``).

:class:`LayerwiseSteps` is a part of :class:`~optimum_wc.pipeline.data_aware.DataAwareCompression`: it uses that
class's model, graph, plan, settings and calibration items.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
import logging
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from optimum_wc._utils.parallel import ordered_map, single_threaded_blas
from optimum_wc.algorithms.activations import InputStatistics
from optimum_wc.algorithms.gptq import GPTQResult, gptq_quantize_stacked, stack_experts
from optimum_wc.algorithms.scale_estimation import (
    estimated_group_parameters,
)
from optimum_wc.algorithms.spqr import spqr_quantize
from optimum_wc.algorithms.spqr_storage import share_permutations, to_spqr_storage
from optimum_wc.config.advanced import AdvancedGPTQParameters, AdvancedScaleEstimationParameters
from optimum_wc.config.enums import CompressWeightsMode
from optimum_wc.errors import InvalidGroupSizeError, UnsupportedModelError
from optimum_wc.kernels.registry import Kernel, kernel_for
from optimum_wc.openvino.layerwise import TensorStore, layerwise_inputs
from optimum_wc.openvino.nncf_schedule import repeats
from optimum_wc.openvino.statistics import activation_point, run_points
from optimum_wc.pipeline.layer_inputs import LayerInputs, batches
from optimum_wc.pipeline.planning import WeightPlan, kernel_mode

logger = logging.getLogger(__name__)

# GPTQ's inner scale estimation uses nncf's function defaults, not advanced_parameters.scale_estimation_params.
GPTQ_SCALE_ESTIMATION = AdvancedScaleEstimationParameters(
    subset_size=32, initial_steps=5, scale_steps=10, weight_penalty=-1.0
)


class LayerwiseSteps:
    """GPTQ and SpQR, layer by layer or in one pass (see the module docstring)."""

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
        targets = self._not_int8()
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
        mode, group_size = kernel_mode(batch[0].precision), batch[0].precision.group_size
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
        if not _one_codebook(batch):  # adaptive codebooks: each weight quantized with its own
            return [
                self._gptq_quantize(
                    [w], inverse, kernel_mode(p.precision), group_size, settings, inputs.means, inputs.tokens
                )[0]
                for w, p in zip(data, batch)
            ]
        return self._gptq_quantize(data, inverse, mode, group_size, settings, inputs.means, inputs.tokens)

    def _gptq_quantize(
        self,
        data: list[np.ndarray],
        inverse,
        mode: str | Kernel,
        group_size: int,
        settings: AdvancedGPTQParameters,
        means: list[np.ndarray],
        tokens: list[int],
    ) -> list[GPTQResult]:
        """GPTQ of 2-D weights ``[out_i, in]`` sharing ``inverse``; ``means`` and ``tokens`` of their inputs, per item,
        for scale estimation."""
        group_parameters = None
        kernel = kernel_for(mode)
        if self.settings.scale_estimation and kernel.integer and kernel.bits <= 4:  # nncf's rule: no NF4, codebooks
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


def _one_codebook(batch: list[WeightPlan]) -> bool:
    """Whether the weights of a batch share their codebook (or have none), so that their rows can be stacked."""
    first = batch[0].precision.codebook
    return all(
        (w.precision.codebook is None) == (first is None)
        and (first is None or np.array_equal(np.asarray(w.precision.codebook), np.asarray(first)))
        for w in batch
    )
