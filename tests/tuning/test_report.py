"""The Pareto front (checked against the definition of dominance) and the written report."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from optimum_wc import CompressWeightsMode
from optimum_wc.tuning import Budget, Candidate, Scores, Trial, TuningResult, pareto_front
from optimum_wc.tuning.report import write_report


def _trials(sizes, values, metric):
    return [
        Trial(Candidate(CompressWeightsMode.INT4_SYM, 16 * (i + 1)), int(size), Scores(**{metric: float(value)}))
        for i, (size, value) in enumerate(zip(sizes, values))
    ]


def _dominated(trial, others, budget):
    mine = budget.loss(trial.scores.get(budget.metric))
    for other in others:
        theirs = budget.loss(other.scores.get(budget.metric))
        if (
            other is not trial
            and other.size_bytes <= trial.size_bytes
            and theirs <= mine
            and (other.size_bytes < trial.size_bytes or theirs < mine)
        ):
            return True
    return False


@pytest.mark.parametrize("budget", [Budget("max_kl", 0.01), Budget("min_similarity", 0.9)])
@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_is_exactly_the_non_dominated_trials(budget, seed):
    rng = np.random.default_rng(seed)
    trials = _trials(rng.integers(1, 8, 25), rng.integers(0, 6, 25) / 10, budget.metric)  # many ties on purpose
    front = pareto_front(trials, budget)
    expected = [t for t in trials if not _dominated(t, trials, budget)]
    # equal (size, value) pairs are one point: the front keeps one of each
    assert {(t.size_bytes, t.scores.get(budget.metric)) for t in front} == {
        (t.size_bytes, t.scores.get(budget.metric)) for t in expected
    }
    assert len(front) == len({(t.size_bytes, t.scores.get(budget.metric)) for t in expected})
    assert [t.size_bytes for t in front] == sorted(t.size_bytes for t in front)


def test_report_files(tmp_path: pathlib.Path):
    budget = Budget("max_kl", 0.02)
    evaluated = _trials([100 * 2**20, 200 * 2**20], [0.03, 0.01], "kl")
    evaluated = [Trial(t.candidate, t.size_bytes, t.scores, budget.meets(t.scores.kl), 1.0) for t in evaluated]
    skipped = Trial(Candidate(CompressWeightsMode.INT8_ASYM), 300 * 2**20)
    result = TuningResult(
        budget, Scores(kl=0.0), tuple(evaluated + [skipped]), evaluated[1], None, tmp_path, "m", 400 * 2**20
    )
    write_report(result, tmp_path)
    markdown = (tmp_path / "tuning.md").read_text()
    assert "Chosen: **INT4_SYM,group_size=32,ratio=1.0** (200.00 MB, 1.000e-02)." in markdown
    assert "| INT4_SYM,group_size=16,ratio=1.0 | 100.00 | 3.000e-02 | no | ★ |" in markdown
    assert "1 larger or costlier configurations were not evaluated" in markdown
    data = json.loads((tmp_path / "tuning.json").read_text())
    assert data["chosen"] == "INT4_SYM,group_size=32,ratio=1.0" and data["budget"]["limit"] == 0.02
    assert [t["evaluated"] for t in data["trials"]] == [True, True, False]
    assert [t["pareto"] for t in data["trials"]] == [True, True, False]
    assert (tmp_path / "tuning.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
