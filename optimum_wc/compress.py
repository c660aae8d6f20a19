"""``compress_weights``: the one verb. Find weights -> choose precisions -> quantize -> rewrite the graph.

Everything else in optimum-wc (the Hugging Face model class, the CLI, the tuner) calls this function.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
import inspect
import logging
import os
import pathlib
import tempfile
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import openvino as ov
from optimum_wc import kernels
from optimum_wc._utils.forks import forks_held_off
from optimum_wc._utils.parallel import default_workers, ordered_map
from optimum_wc.algorithms.mixed_precision import Sensitivity
from optimum_wc.algorithms.spqr_storage import SpQRStored, index_storage
from optimum_wc.config.options import OPTIONS, RUN_OPTIONS, args_doc
from optimum_wc.config.options import signature as options_signature
from optimum_wc.config.settings import CompressionSettings, bind_options
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError
from optimum_wc.kernels.packing import StoredWeight, pack
from optimum_wc.openvino import engine
from optimum_wc.openvino.activation_side import OutlierTerm, insert_permutation
from optimum_wc.openvino.adapters import insert_adapters
from optimum_wc.openvino.decompression import (
    Hold,
    build_decompression,
    dequantize,
    needs_output_convert,
    replace_constant,
    spqr_parts,
)
from optimum_wc.openvino.fusion import Projection, fuse_and_add_outliers
from optimum_wc.openvino.graph import ModelGraph, dedupe_friendly_names
from optimum_wc.openvino.ignored import ignored_scope_names, positional_embedding_matmuls
from optimum_wc.openvino.ir_files import check_ir_files
from optimum_wc.openvino.items import check_calibration_items
from optimum_wc.openvino.scratch import ScratchIR, detach_from_file, spill_threshold
from optimum_wc.openvino.statistics import activation_point, collect_statistics
from optimum_wc.openvino.statistics_cache import cached
from optimum_wc.openvino.weights import WeightTarget, find_weight_targets
from optimum_wc.pipeline.calibration import inference_items
from optimum_wc.pipeline.data_aware import apply_data_aware
from optimum_wc.pipeline.planning import ActivationStats, Plan, WeightPlan, kernel_mode, make_plan
from optimum_wc.pipeline.rt_info import write_rt_info
from optimum_wc.pipeline.summary import CompressionSummary

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompressionResult:
    """The compressed model (the same object that was passed in) and what was done to it."""

    model: ov.Model
    summary: CompressionSummary
    plan: Plan


def compress_weights(model: ov.Model | str | os.PathLike, **options: Any) -> ov.Model:
    """Compresses the weights of an OpenVINO model in place and returns it, as ``nncf.compress_weights`` does.

        Arguments, defaults and validation are those of nncf 3.4.0, and for the same inputs the compressed model is
        the same, byte for byte. nncf's own enum members, ``nncf.IgnoredScope`` and
        ``nncf.AdvancedCompressionParameters`` are accepted too.

        Args:
            model: The ``openvino.Model`` to compress, or the path of an IR (``.xml``, or a folder holding
                ``openvino_model.xml``): it is then read memory-mapped and compressed with the codes moved out of
                anonymous memory as they are made (see ``scratch_dir``), and the compressed model is returned.
    {options}

        Returns:
            The same ``model`` object, compressed.

        Raises:
            InvalidArgumentTypeError: ``model`` is not an ``openvino.Model``, or an argument has the wrong type.
            InvalidArgumentError, UnsupportedArgumentError: An argument value or combination that nncf refuses too.
            InternalError, UnsupportedModelError: ``lora_correction`` on weights it cannot correct (nncf fails on
                them once it meets them).
            InvalidGroupSizeError: ``group_size`` does not divide the input channels of some layers (all are listed).
            NonFiniteWeightError: A weight holds NaN or Inf (all such weights are listed).
    """
    path = None
    if isinstance(model, (str, os.PathLike)):
        path = pathlib.Path(model)
        path = path / "openvino_model.xml" if path.is_dir() else path
    elif not isinstance(model, ov.Model):
        msg = (
            f"`model` must be an openvino.Model or the path of an IR (.xml, or its folder), got {type(model).__name__}."
        )
        raise InvalidArgumentTypeError(msg)
    run = bind_options({k: v for k, v in options.items() if k in RUN_OPTIONS}, RUN_OPTIONS)
    check_run_options(**vars(run))
    settings = CompressionSettings.from_arguments(**{k: v for k, v in options.items() if k not in RUN_OPTIONS})
    if path is not None:
        return compress_ir(path, settings, **vars(run)).model
    return compress_model(model, settings, **vars(run)).model


compress_weights.__signature__ = options_signature(
    [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="ov.Model | str | os.PathLike")],
    tuple(option.name for option in OPTIONS),
)
compress_weights.__doc__ = compress_weights.__doc__.format(options=args_doc(tuple(option.name for option in OPTIONS)))


def compress_ir(path: pathlib.Path, settings: CompressionSettings, **run: Any) -> CompressionResult:
    """:func:`compress_model` on the IR at ``path``: read memory-mapped (the float weights come from the page
    cache), with the codes in memory-mapped scratch files, and detached from the IR's ``.bin`` at the end, so that
    the model can be saved over it. ``run`` takes ``compress_weights``'s run options."""
    check_ir_files(path)
    model = ov.Core().read_model(path)
    scratch_dir = run.get("scratch_dir") or tempfile.gettempdir()
    result = compress_model(model, settings, **{**run, "scratch_dir": scratch_dir})
    detach_from_file(result.model, pathlib.Path(path).with_suffix(".bin"), scratch_dir)
    return result


def check_run_options(
    num_workers: object = None, progress: object = True, scratch_dir: object = None, **others: object
) -> None:
    """Refuses bad run options before any work, naming the option; creates a ``scratch_dir`` that does not exist.
    ``others``: run options that need no check here."""
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
    ):
        raise InvalidArgumentTypeError(f"`num_workers` must be a positive int or None, got {num_workers!r}.")
    if not isinstance(progress, bool):
        raise InvalidArgumentTypeError(f"`progress` must be True or False, got {progress!r}.")
    if scratch_dir is None:
        return
    if not isinstance(scratch_dir, (str, os.PathLike)):
        raise InvalidArgumentTypeError(
            f"`scratch_dir` must be a folder path or None, got {type(scratch_dir).__name__}."
        )
    folder = pathlib.Path(scratch_dir)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentError(f"`scratch_dir` {folder} is not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(f"`scratch_dir` {folder} cannot be created ({exc}).") from exc


def compress_model(
    model: ov.Model,
    settings: CompressionSettings,
    *,
    num_workers: int | None = None,
    progress: bool = True,
    scratch_dir: str | os.PathLike | None = None,
) -> CompressionResult:
    """Compresses ``model`` in place with validated ``settings``; returns it with a summary of what was done.

    The compressed codes of models whose weights take half the available memory or more (``spill_threshold``), or
    of any model when ``scratch_dir`` is given, are memory-mapped by OpenVINO from temporary files (in
    ``scratch_dir``, default the system's temporary folder) rather than kept in anonymous memory, and so are the
    activations that GPTQ and SpQR cache between layers and the weights the data-aware algorithms rewrite; the
    output is the same. Other threads' forks wait until it returns (they would stall its threaded BLAS calls).
    """
    with forks_held_off():
        return _compress_model(model, settings, num_workers, progress, scratch_dir)


def _compress_model(
    model: ov.Model,
    settings: CompressionSettings,
    num_workers: int | None,
    progress: bool,
    scratch_dir: str | os.PathLike | None,
) -> CompressionResult:
    check_run_options(num_workers, progress, scratch_dir)
    dedupe_friendly_names(model)
    graph = ModelGraph(model)
    targets = find_weight_targets(graph)
    ignored = ignored_scope_names(graph, settings.ignored_scope) | positional_embedding_matmuls(graph)
    workers = num_workers or default_workers()
    stats = None if settings.dataset is None else _activation_stats_source(model, graph, settings)
    # large: codes and caches go to scratch files, and the pages of a mapped .bin are given back once read
    float_bytes = sum(t.num_elements * t.constant.get_output_element_type(0).size for t in _unique(targets))
    large = scratch_dir is not None or float_bytes >= spill_threshold()
    plan = make_plan(targets, ignored, settings, workers, stats, release_pages=large)
    if not plan.weights:
        logger.warning("The model has no weights that can be compressed; it is returned unchanged.")
        return CompressionResult(model, CompressionSummary.from_plan(plan), plan)
    work = sorted(plan.to_compress, key=lambda w: w.target.num_elements, reverse=True)
    total = sum(w.target.num_elements for w in work)
    apply_data_aware(
        model,
        plan,
        settings,
        progress,
        spill_dir=(scratch_dir or tempfile.gettempdir()) if large else None,
        workers=workers,
    )
    summary = CompressionSummary.from_plan(plan)
    on_activations = any(w.spqr is not None or w.permutation is not None or w.adapters for w in plan.weights)
    context = _GraphContext(graph.by_name) if on_activations else None

    scratch = ScratchIR(scratch_dir, on_mapped=context.remap if context is not None else None) if large else None
    with (
        scratch or nullcontext(),
        tqdm(total=total, desc="Compressing weights", unit="weights", unit_scale=True, disable=not progress) as bar,
    ):
        hold = scratch.hold if scratch is not None else None
        reads = ((w, _read(w, workers)) for w in work)
        for (weight, _), stored in ordered_map(_quantize, reads, workers):
            REWRITERS[type(stored)](weight, stored, hold, context)
            if large:
                weight.target.release_pages()  # of a memory-mapped .bin: resident memory stays bounded too
            bar.update(weight.target.num_elements)
    if context is not None:
        context.finish()
    write_rt_info(model, settings, plan)
    logger.info("Statistics of the bitwidth distribution:\n%s", summary.to_table())
    return CompressionResult(model, summary, plan)


def _unique(targets: list[WeightTarget]) -> list[WeightTarget]:
    """One target per weight constant (a shared weight is a target once per use)."""
    return list({t.constant_name: t for t in targets}.values())


def _activation_stats_source(model: ov.Model, graph: ModelGraph, settings: CompressionSettings) -> ActivationStats:
    """Collects activation statistics on first use only (when a data-aware metric needs them)."""
    items = inference_items(settings.dataset, settings.subset_size)  # refuse an empty dataset before any work
    check_calibration_items(model, graph, items)

    path = settings.advanced_parameters.statistics_path

    def stats(targets: list[WeightTarget], metric: Sensitivity) -> dict[str, float]:
        points = {t.op_name: activation_point(graph, t) for t in targets}
        unique = list(dict.fromkeys(points.values()))

        def compute() -> dict[str, np.ndarray]:
            reduced = collect_statistics(model, unique, items, metric.reducer)
            return {str(i): np.asarray(reduced[point]) for i, point in enumerate(unique)}

        names = [f"{p.node}:{p.port}" for p in unique]
        arrays = cached(path, model, items, settings.sensitivity_metric.value, names, compute)
        reduced = {point: list(arrays[str(i)]) for i, point in enumerate(unique)}
        return {name: metric.aggregate(reduced[point]) for name, point in points.items()}

    return stats


def _engine_block(weight: WeightPlan, data: np.ndarray, workers: int) -> engine.BlockShape | None:
    """The block shape of the OpenVINO engine for a data-free weight it can quantize, else None (numpy kernels)."""
    if weight.parameters is not None or weight.permutation is not None:
        return None
    precision = weight.precision
    mode, axes = kernel_mode(precision), weight.target.reduction_axes
    return engine.BlockShape.of(data, axes, mode, precision.group_size, workers)


def _read(weight: WeightPlan, workers: int) -> tuple[np.ndarray | None, engine.Prepared | None]:
    """Reads a weight on the main thread, and prepares there the engine's model for it if it has one (workers only
    infer). No data for SpQR weights: they are compressed already."""
    if weight.spqr is not None:
        return None, None
    data = weight.target.read()
    block = _engine_block(weight, data, workers)
    return data, None if block is None else engine.prepare(block)


def _quantize(item: tuple[WeightPlan, tuple[np.ndarray | None, engine.Prepared | None]]) -> StoredWeight | SpQRStored:
    """Runs in a worker thread, on a weight read on the main thread: quantize and pack (numpy and OpenVINO's
    inference release the GIL for the heavy parts; the model being compressed is never touched here)."""
    weight, (data, prepared) = item
    if weight.spqr is not None:
        return weight.spqr
    target, precision = weight.target, weight.precision
    if prepared is not None:
        return engine.store(data, prepared, precision.group_size)
    scale, zero_point = weight.parameters or (None, None)
    if weight.permutation is not None:  # stored in the order GPTQ quantized it (layout [out, in], checked there)
        data = data[:, weight.permutation]
    compressed = kernels.compress(
        data, target.reduction_axes, kernel_mode(precision), precision.group_size, scale, zero_point
    )
    return kernels.store(compressed)


def _output_type(target: WeightTarget) -> ov.Type | None:
    return target.constant.get_output_element_type(0) if needs_output_convert(target.constant) else None


class _GraphContext:
    """What rewriting weights on the activation side needs: ops by name, the Gathers made so far (shared), the
    SpQR projections, fused at the end (``finish``) where they share an input, and the outliers of each activation,
    inserted then."""

    def __init__(self, ops: dict[str, ov.Node]):
        self.ops = ops  # the MatMuls are the ones found before the data-aware steps replaced weight constants
        self.gathers: dict = {}
        self.projections: list[Projection] = []
        self.outliers: dict[tuple[str, int], list[OutlierTerm]] = {}

    def add_outliers(self, term: OutlierTerm) -> None:
        key = (term.activation.get_node().get_friendly_name(), term.activation.get_index())
        self.outliers.setdefault(key, []).append(term)

    def remap(self, held: ov.Node, mapped: ov.Node) -> None:
        """A held Constant was replaced by its memory-mapped copy: the projections to fuse read the copy."""
        for index, projection in enumerate(self.projections):
            parts = projection.parts
            if parts.codes.get_friendly_name() == held.get_friendly_name():  # names are unique (deduplicated first)
                self.projections[index] = replace(projection, parts=replace(parts, codes=mapped))

    def finish(self) -> None:
        fuse_and_add_outliers(self.projections, list(self.outliers.values()))


def _rewrite(weight: WeightPlan, stored: StoredWeight, hold: Hold | None, context: _GraphContext | None) -> None:
    target = weight.target
    replace_constant(
        target.constant, build_decompression(stored, target.constant_name, target.port, _output_type(target), hold)
    )
    if weight.permutation is not None:
        permutation = pack(weight.permutation, index_storage(len(weight.permutation)))
        insert_permutation(
            context.ops[target.op_name], target.port, permutation, target.constant_name, shared=context.gathers
        )
    if weight.adapters is not None:
        insert_adapters(context.ops[target.op_name], weight.adapters, hold)


def _rewrite_spqr(weight: WeightPlan, stored: SpQRStored, hold: Hold | None, context: _GraphContext) -> None:
    """The dense part in place of the weight; the outliers and the permutation on the MatMul's activation."""
    target = weight.target
    name = target.constant_name
    parts, output_type = spqr_parts(stored, name, hold), _output_type(target)
    replace_constant(target.constant, dequantize(parts, list(stored.original_shape), name, target.port, output_type))
    matmul = context.ops[target.op_name]
    projection = Projection.of(matmul, target.port, parts, name, output_type)
    if projection is not None:
        context.projections.append(projection)
    if stored.outliers is not None:  # its activation before the permutation below
        context.add_outliers(OutlierTerm.of(matmul, target.port, stored.outliers, name))
    if stored.permutation is not None:
        insert_permutation(matmul, target.port, stored.permutation, name, shared=context.gathers)


# stored form -> how it is written into the graph
REWRITERS = {StoredWeight: _rewrite, SpQRStored: _rewrite_spqr}
