"""ADAPTIVE_CODEBOOK in the pipeline: which weights get their own codebook, nncf's failures refused before any work,
and the estimation, which runs after AWQ and before GPTQ or scale estimation (they then use the new codebooks)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from optimum_wc._utils.parallel import ordered_map
from optimum_wc.algorithms.activations import InputStatistics
from optimum_wc.algorithms.codebook_estimation import (
    VALUE_TYPES,
    CodebookTask,
    family_codebook,
    family_name,
    layer_codebook,
)
from optimum_wc.config.advanced import AdvancedAdaptiveCodebookParameters
from optimum_wc.config.enums import CompressWeightsMode, codebook_bits
from optimum_wc.errors import UnsupportedModelError
from optimum_wc.kernels.codebook import CB4_LEVELS
from optimum_wc.pipeline.planning import Plan, WeightPlan, check_2d_matmuls


def estimated(plan: Plan) -> list[WeightPlan]:
    """The weights that get a codebook of their own: ADAPTIVE_CODEBOOK ones with 4-bit indices (nncf's rule; a
    starting codebook of more than 16 values is kept as it is)."""
    return [
        w
        for w in plan.to_compress
        if w.precision.mode == CompressWeightsMode.ADAPTIVE_CODEBOOK and w.precision.bits == 4
    ]


def check_estimation(plan: Plan, params: AdvancedAdaptiveCodebookParameters) -> None:
    """Refuses, before any work, the weights nncf's estimation fails on once it meets them."""
    targets = estimated(plan)
    check_2d_matmuls(targets, "ADAPTIVE_CODEBOOK")
    for weight in targets:
        target = weight.target
        if params.across_blocks and target.reduction_axes[0] != 1:
            msg = (
                "`adaptive_codebook_params.across_blocks` needs weights stored [out, in]; "
                f"{target.constant_name} is stored [in, out]."
            )
            raise UnsupportedModelError(msg)
    if params.across_blocks:
        for family in _families(plan, targets):
            inputs = {w.target.shape[1] for w in family}
            if len(inputs) > 1:  # nncf stacks their rows and fails
                names = ", ".join(w.target.constant_name for w in family)
                msg = (
                    "`adaptive_codebook_params.across_blocks` fits one codebook to the weights whose names differ "
                    f"only in digits, and needs their input sizes equal; {names} have {sorted(inputs)}."
                )
                raise UnsupportedModelError(msg)


def estimate_codebooks(
    plan: Plan,
    stats: dict[str, InputStatistics],
    params: AdvancedAdaptiveCodebookParameters,
    workers: int,
    progress: bool,
) -> None:
    """Replaces the codebook of each estimated weight's precision with its own (or its family's)."""
    convert, storage = VALUE_TYPES[params.value_type]
    targets = estimated(plan)
    if not targets:
        return
    start = targets[0].precision.codebook
    start = CB4_LEVELS if start is None else np.asarray(start)
    families = _families(plan, targets) if params.across_blocks else [[w] for w in targets]

    def tasks(family: list[WeightPlan]) -> list[CodebookTask]:
        return [CodebookTask(w.target.read(), w.target.reduction_axes, stats[w.target.op_name]) for w in family]

    def estimate(item: tuple[list[WeightPlan], list[CodebookTask]]) -> np.ndarray:
        family, work = item
        try:
            if params.across_blocks:
                return family_codebook(work, start, params.num_elements, convert)
            return layer_codebook(work[0], family[0].precision.group_size, start, params.num_elements, convert)
        except UnsupportedModelError as error:
            names = ", ".join(w.target.constant_name for w in family)
            msg = f"ADAPTIVE_CODEBOOK on {names}: {error}. Leave it out with `ignored_scope`."
            raise UnsupportedModelError(msg) from error

    work = ((family, tasks(family)) for family in families)
    for (family, _), codebook in tqdm(
        ordered_map(estimate, work, workers, blas_exact=True),
        total=len(families),
        desc="Estimating codebooks",
        disable=not progress,
    ):
        for weight in family:
            if any(weight is target for target in targets):
                precision = replace(weight.precision, code_bits=codebook_bits(codebook.size), codebook=codebook)
                weight.precision = replace(precision, codebook_storage=storage)


def _families(plan: Plan, targets: list[WeightPlan]) -> list[list[WeightPlan]]:
    """Each estimated weight not yet in a family, with every other weight to compress whose name has the same
    letters, in the plan's order (8-bit ones too: their values count in the fit, as in nncf)."""
    families, seen = [], set()
    for weight in targets:
        if weight.target.constant_name in seen:
            continue
        name = family_name(weight.target.constant_name)
        family = [weight] + [
            other
            for other in plan.to_compress
            if other.target.constant_name != weight.target.constant_name
            and family_name(other.target.constant_name) == name
        ]
        seen.update(w.target.constant_name for w in family)
        families.append(family)
    return families
