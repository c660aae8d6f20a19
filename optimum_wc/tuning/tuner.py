"""``tune``: the smallest compressed model that keeps its accuracy within a budget.

1. Everything is checked before any work: the budget, the search space, the output folder, the texts.
2. The uncompressed model is exported to IR once (or read, when the folder holds one) and scored as the reference.
3. Every candidate of the grid is compressed data-free (its layout, hence its size, does not depend on AWQ, scale
   estimation or GPTQ) and its ``.bin`` size measured: this is cheap next to an evaluation.
4. Candidates are evaluated smallest first and, at equal size, cheapest to compute first. The first size that
   meets the budget ends the search (``exhaustive=True`` evaluates the whole grid): no smaller candidate met it,
   so the choice is the smallest of the grid that does. Equal-size, equal-cost candidates are all evaluated and
   the best-scoring one is kept.
5. Data-aware candidates share one statistics folder, so the activation statistics are collected once.
6. The chosen model (saved with its config) and the report (``tuning.md``, ``tuning.json``, ``tuning.png``) are
   written to a staging folder that replaces ``output_dir`` at the end.

Every compression goes through ``OVModelForCausalLM.compress`` and so through ``compress_weights``.
"""

from __future__ import annotations

from contextlib import contextmanager
import logging
import os
import pathlib
import tempfile
import time
from typing import Any, Iterator

from tqdm.auto import tqdm

import openvino as ov
from optimum_wc._utils.atomic import atomic_directory, check_output_folder
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, OptimumWCError, UnsupportedModelError
from optimum_wc.evaluation import load_rows
from optimum_wc.evaluation.perplexity import model_context
from optimum_wc.openvino.ir_files import check_ir_files
from optimum_wc.tuning.budget import Budget
from optimum_wc.tuning.report import Trial, TuningResult, write_report
from optimum_wc.tuning.scorers import SCORERS, EvaluationOptions
from optimum_wc.tuning.search import Candidate, SearchSpace

logger = logging.getLogger(__name__)

MODEL_XML = "openvino_model.xml"
EVALUATION_OV_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}


class Tuner:
    """The search over one model: holds the reference IR, the scorer and the calibration settings."""

    def __init__(self, fp32_dir: pathlib.Path, scorer: Any, budget: Budget, calibration: dict[str, Any]):
        self.fp32_dir, self.scorer, self.budget, self.calibration = fp32_dir, scorer, budget, calibration

    def config(self, candidate: Candidate, data: bool) -> WeightCompressionConfig:
        """The candidate's config; ``data`` adds the calibration set (and so the data-aware sensitivity metric)."""
        return WeightCompressionConfig(**candidate.compress_kwargs(), **(self.calibration if data else {}))

    def load(self, candidate: Candidate, config: WeightCompressionConfig) -> Any:
        """The reference IR, compressed with ``config`` (quietly: one summary table per candidate would flood)."""
        from optimum_wc.hf.modeling import OVModelForCausalLM

        logger.debug("Compressing %s", candidate.name)
        model = OVModelForCausalLM.from_pretrained(
            self.fp32_dir, load_in_8bit=False, ov_config=EVALUATION_OV_CONFIG, compile=False
        )
        with _quiet("optimum_wc.compress", "optimum_wc.pipeline.data_aware", "optimum_wc.openvino"):
            model.compress(config, progress=False)
        return model

    def size(self, candidate: Candidate, folder: pathlib.Path) -> int:
        """The ``.bin`` size of the candidate's IR, from a data-free compression with the same layout."""
        sizing = candidate.sizing()
        data = candidate.data_aware and candidate.ratio < 1  # the data-aware metric may pick other layers
        model = self.load(sizing, self.config(sizing, data)).model
        ov.save_model(model, folder / MODEL_XML, compress_to_fp16=False)
        size = (folder / MODEL_XML).with_suffix(".bin").stat().st_size
        for file in folder.iterdir():
            file.unlink()
        return size

    def evaluate(self, candidate: Candidate, size: int) -> tuple[Trial, Any]:
        start = time.perf_counter()
        model = self.load(candidate, self.config(candidate, candidate.data_aware))
        scores = self.scorer.score(model)
        trial = Trial(
            candidate, size, scores, self.budget.meets(scores.get(self.budget.metric)), time.perf_counter() - start
        )
        return trial, model


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Raises the given loggers to WARNING for the duration."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [item.level for item in loggers]
    for item in loggers:
        item.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for item, level in zip(loggers, levels):
            item.setLevel(level)


def _check_output(output_dir: pathlib.Path, overwrite: bool) -> None:
    check_output_folder(output_dir)
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise InvalidArgumentError(
            f"`output_dir` {output_dir} is not empty; pass overwrite=True (--overwrite) to replace it."
        )


def _check_int(value: Any, argument: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"`{argument}` must be an int >= {minimum}, got {value!r}.")


def _coerce_search(search: SearchSpace | dict | None) -> SearchSpace:
    if search is None:
        return SearchSpace()
    if isinstance(search, dict):
        return SearchSpace(**search)
    if not isinstance(search, SearchSpace):
        raise InvalidArgumentTypeError(
            f"`search` must be a SearchSpace or a dict of its fields, got {type(search).__name__}."
        )
    return search


def _reference_ir(model: str | os.PathLike, work: pathlib.Path, trust_remote_code: bool) -> pathlib.Path:
    """The folder of the uncompressed IR: ``model`` itself when it holds one, else an export into ``work``."""
    from optimum_wc.hf.modeling import OVModelForCausalLM
    from optimum_wc.saving.folder import is_compressed

    folder = pathlib.Path(str(model))
    if (folder / MODEL_XML).is_file():
        check_ir_files(folder / MODEL_XML)
        if is_compressed(ov.Core().read_model(folder / MODEL_XML)):
            raise UnsupportedModelError(
                f"`model` {model} holds compressed weights; tune needs the uncompressed model (its Transformers "
                "checkpoint or an FP32/FP16 IR)."
            )
        return folder
    exported = OVModelForCausalLM.from_pretrained(
        model, export=True, load_in_8bit=False, compile=False, trust_remote_code=trust_remote_code
    )
    exported.save_pretrained(work / "reference")
    return work / "reference"


def _order(trials: list[Trial]) -> list[Trial]:
    """Smallest first; at equal size, cheapest to compute first; then grid order (a stable sort)."""
    return sorted(trials, key=lambda t: (t.size_bytes, t.candidate.compute_cost))


def tune(
    model: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    dataset: Any = "wikitext2",
    max_perplexity_increase: float | str | None = None,
    min_similarity: float | None = None,
    max_kl: float | None = None,
    search: SearchSpace | dict | None = None,
    calibration_dataset: Any = None,
    num_samples: int = 128,
    window_length: int = 256,
    num_windows: int = 32,
    num_prompts: int = 8,
    max_new_tokens: int = 32,
    embedding_model: str | None = None,
    exhaustive: bool = False,
    statistics_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    progress: bool = True,
) -> TuningResult:
    """Finds the smallest compression of ``model`` within an accuracy budget, saves it and a Pareto report.

    Args:
        model: A Transformers checkpoint (folder or Hub id) or a folder with an uncompressed OpenVINO IR.
        output_dir: Folder for the chosen model and ``tuning.{md,json,png}``; must be empty unless ``overwrite``.
        dataset: Evaluation text (a file, a list of strings, a ``datasets.Dataset`` or ``"wikitext2"``).
        max_perplexity_increase: Budget: at most this relative perplexity increase over the uncompressed model
            (``0.05`` or ``"5%"``).
        min_similarity: Budget: at least this mean similarity of greedy answers to the uncompressed model's.
        max_kl: Budget: at most this mean KL divergence to the uncompressed model's next-token distribution.
        search: The grid (:class:`SearchSpace`, or a dict of its fields); the default is data-free.
        calibration_dataset: Calibration text for data-aware candidates (``awq``/``scale_estimation``/``gptq``).
        num_samples: Calibration samples.
        window_length: Tokens per evaluation window (perplexity and KL budgets).
        num_windows: Evaluation windows.
        num_prompts: Prompts (the first words of the dataset's first lines) for the similarity budget.
        max_new_tokens: Answer length for the similarity budget.
        embedding_model: Sentence-embedding model for the similarity budget.
        exhaustive: Evaluate every candidate rather than stopping at the first size that meets the budget.
        statistics_path: Folder for the activation statistics of data-aware candidates (default: a temporary one).
        overwrite: Replace a non-empty ``output_dir``.
        trust_remote_code: Passed to the export.
        progress: Show a progress bar over the candidates.

    Returns:
        A :class:`TuningResult`. When no candidate meets the budget, ``chosen`` is None, ``closest`` names the
        nearest one, and ``output_dir`` holds the report only.

    Raises:
        InvalidArgumentError: No budget or more than one, a limit out of range, an empty search space, data-aware
            candidates without ``calibration_dataset``, a non-empty ``output_dir``, an empty text, or windows
            longer than the model's context (all before any compression).
        UnsupportedModelError: ``model`` is already compressed.
    """
    budget = Budget.from_arguments(
        max_perplexity_increase=max_perplexity_increase, min_similarity=min_similarity, max_kl=max_kl
    )
    space = _coerce_search(search)
    candidates = space.candidates()
    if space.data_aware and calibration_dataset is None:
        raise InvalidArgumentError(
            "`search` has data-aware candidates (awq, scale_estimation or gptq): pass "
            "`calibration_dataset` (e.g. a text file)."
        )
    for value, argument, minimum in (
        (num_samples, "num_samples", 1),
        (window_length, "window_length", 2),
        (num_windows, "num_windows", 1),
        (num_prompts, "num_prompts", 1),
        (max_new_tokens, "max_new_tokens", 1),
    ):
        _check_int(value, argument, minimum)
    output = pathlib.Path(output_dir).absolute()
    _check_output(output, overwrite)
    if not any(row.strip() for row in load_rows(dataset)):
        raise InvalidArgumentError(f"`dataset` {dataset!r} holds no text.")
    if calibration_dataset is not None and not any(row.strip() for row in load_rows(calibration_dataset)):
        raise InvalidArgumentError(f"`calibration_dataset` {calibration_dataset!r} holds no text.")

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".optimum-wc-tune-", dir=output.parent) as temporary:
        work = pathlib.Path(temporary)
        return _search(
            model,
            output,
            work,
            budget,
            candidates,
            calibration_dataset,
            num_samples,
            EvaluationOptions(dataset, window_length, num_windows, num_prompts, max_new_tokens, embedding_model),
            exhaustive,
            statistics_path,
            trust_remote_code,
            progress,
        )


def _search(
    model,
    output,
    work,
    budget,
    candidates,
    calibration_dataset,
    num_samples,
    options,
    exhaustive,
    statistics_path,
    trust_remote_code,
    progress,
) -> TuningResult:  # noqa: ANN001 (private, called once)
    from transformers import AutoTokenizer

    from optimum_wc.hf.modeling import OVModelForCausalLM

    fp32_dir = _reference_ir(model, work, trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(fp32_dir)
    reference = OVModelForCausalLM.from_pretrained(fp32_dir, ov_config=EVALUATION_OV_CONFIG)
    context = model_context(reference)
    if budget.metric != "similarity" and context is not None and options.window_length > context:
        raise InvalidArgumentError(
            f"`window_length` {options.window_length} is longer than the model's context of {context} tokens."
        )
    scorer = SCORERS[budget.metric](reference, tokenizer, options)
    calibration = {}
    if calibration_dataset is not None:
        calibration = {
            "dataset": calibration_dataset,
            "tokenizer": str(fp32_dir),
            "num_samples": num_samples,
            "statistics_path": str(statistics_path or work / "statistics"),
        }
    tuner = Tuner(fp32_dir, scorer, budget, calibration)

    sizes: dict[Candidate, int | None] = {}
    notes: list[str] = []
    (work / "sizing").mkdir()
    for candidate in tqdm(candidates, desc="Sizing candidates", disable=not progress):
        if candidate.sizing() not in sizes:
            try:
                sizes[candidate.sizing()] = tuner.size(candidate, work / "sizing")
            except OptimumWCError as exc:  # e.g. a group size that does not divide this model's channels
                sizes[candidate.sizing()] = None
                notes.append(f"Skipped {candidate.sizing().name}: {exc}")
                logger.warning(notes[-1])
    runnable = [c for c in candidates if sizes[c.sizing()] is not None]
    if not runnable:
        raise InvalidArgumentError("No configuration of `search` can compress this model: " + " ".join(notes))
    trials = _order([Trial(c, sizes[c.sizing()]) for c in runnable])

    done: dict[Candidate, Trial] = {}
    chosen, chosen_model, tier = None, None, None
    bar = tqdm(trials, desc="Evaluating candidates", disable=not progress)
    for trial in bar:
        key = (trial.size_bytes, trial.candidate.compute_cost)
        if tier is not None and key != tier and not exhaustive:
            break
        result, compressed = tuner.evaluate(trial.candidate, trial.size_bytes)
        done[trial.candidate] = result
        value = result.scores.get(budget.metric)
        logger.info(
            "%s: %.2f MB, %s %s -> %s",
            trial.candidate.name,
            trial.size_bytes / 2**20,
            budget.kind.label,
            budget.kind.describe(value),
            "meets the budget" if result.meets else "misses it",
        )
        if result.meets and (tier is None or key == tier):
            if chosen is None or budget.loss(value) < budget.loss(chosen.scores.get(budget.metric)):
                chosen, chosen_model = result, compressed
            tier = key
    bar.close()
    trials = [done.get(t.candidate, t) for t in trials]
    evaluated = [t for t in trials if t.evaluated]
    closest = None
    if chosen is None:
        closest = min(evaluated, key=lambda t: (budget.shortfall(t.scores.get(budget.metric)), t.size_bytes))
        logger.warning(
            "No configuration meets the budget (%s); the closest is %s with %s %s.",
            budget.describe(),
            closest.candidate.name,
            budget.kind.label,
            budget.kind.describe(closest.scores.get(budget.metric)),
        )
    label = pathlib.Path(str(model)).name if pathlib.Path(str(model)).exists() else str(model)
    result = TuningResult(
        budget,
        scorer.reference_scores,
        tuple(trials),
        chosen,
        closest,
        output,
        label,
        (fp32_dir / MODEL_XML).with_suffix(".bin").stat().st_size,
        tuple(notes),
    )
    with atomic_directory(output) as staging:
        if chosen_model is not None:
            chosen_model._wc_config = _without_temporary_path(chosen_model.quantization_config, statistics_path)
            chosen_model.save_pretrained(staging)
        write_report(result, staging)
    logger.info("Wrote %s", output)
    return result


def _without_temporary_path(config: WeightCompressionConfig, statistics_path: Any) -> WeightCompressionConfig:
    """The config to save: the temporary statistics folder is gone after the search, so it is not recorded."""
    values = config.to_dict()
    advanced = {k: v for k, v in (values["advanced_parameters"] or {}).items() if k != "statistics_path"}
    if statistics_path is not None:
        advanced["statistics_path"] = str(statistics_path)
    values["advanced_parameters"] = advanced or None
    return WeightCompressionConfig.from_dict(values)
