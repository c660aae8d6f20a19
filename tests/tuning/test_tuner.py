"""``tune`` on the embedded model: the smallest grid configuration within the budget, checked against an
independent measurement of every candidate (``compress_weights`` + ``evaluate``); statistics reuse; refusals."""

from __future__ import annotations

import json
import pathlib
import shutil

import nncf
import numpy as np
from optimum.intel import OVModelForCausalLM as IntelCausalLM
import pytest
from transformers import AutoTokenizer

from helpers import PYDOC_CALIBRATION
import openvino as ov
import optimum_wc
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, UnsupportedModelError
from optimum_wc.evaluation import evaluate
from optimum_wc.tuning import SearchSpace, tune
from optimum_wc.tuning import tuner as tuner_module

pytestmark = pytest.mark.slow  # compresses and evaluates grids of candidates

EMBEDDED = pathlib.Path(__file__).resolve().parents[2] / "models" / "tiny-llama-pydoc"
F32 = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
WINDOWS = {"window_length": 64, "num_windows": 4}
SMALL_GRID = SearchSpace(
    modes=("int4_sym", "int8_asym"), group_sizes=(64, -1), ratios=(1.0, 0.6), all_layers=(False, True)
)


@pytest.fixture(scope="module")
def fp32_ir(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("tune") / "fp32"
    optimum_wc.OVModelForCausalLM.from_pretrained(
        EMBEDDED, export=True, load_in_8bit=False, compile=False
    ).save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def no_nncf(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("nncf was called")

    monkeypatch.setattr(nncf, "compress_weights", boom)


@pytest.fixture(scope="module")
def independent(fp32_ir, tmp_path_factory):
    """Every candidate of SMALL_GRID compressed with compress_weights and measured with evaluate, without tune."""
    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED)
    reference = IntelCausalLM.from_pretrained(fp32_ir, ov_config=F32)
    measured = {}
    for candidate in SMALL_GRID.candidates():
        folder = tmp_path_factory.mktemp("independent")
        model = optimum_wc.compress_weights(
            ov.Core().read_model(fp32_ir / "openvino_model.xml"), progress=False, **candidate.compress_kwargs()
        )
        ov.save_model(model, folder / "openvino_model.xml", compress_to_fp16=False)
        shutil.copy(fp32_ir / "config.json", folder / "config.json")
        result = evaluate(
            IntelCausalLM.from_pretrained(folder, ov_config=F32),
            tokenizer,
            str(PYDOC_CALIBRATION),
            reference=reference,
            **WINDOWS,
        )
        measured[candidate.name] = ((folder / "openvino_model.bin").stat().st_size, result.mean_kl)
    return measured


def _expected(measured: dict, limit: float) -> str:
    passing = [(size, kl, name) for name, (size, kl) in measured.items() if kl <= limit]
    return min(passing)[2]


def test_tune_returns_the_smallest_grid_configuration_within_the_budget(fp32_ir, independent, tmp_path):
    limit = float(np.median([kl for _, kl in independent.values()]))  # about half the grid passes
    expected = _expected(independent, limit)
    result = tune(
        fp32_ir,
        tmp_path / "out",
        dataset=str(PYDOC_CALIBRATION),
        max_kl=limit,
        search=SMALL_GRID,
        progress=False,
        **WINDOWS,
    )
    assert result.chosen.candidate.name == expected
    assert result.chosen.size_bytes == independent[expected][0]
    assert result.chosen.scores.kl == pytest.approx(independent[expected][1], rel=1e-9)
    assert len(result.evaluated) < len(result.trials)  # stopped at the first size that meets the budget
    for trial in result.evaluated:  # everything evaluated is at most as large, and measured as without tune
        assert trial.size_bytes <= result.chosen.size_bytes
        assert trial.scores.kl == pytest.approx(independent[trial.candidate.name][1], rel=1e-9)
    assert sorted(t.size_bytes for t in result.trials) == [t.size_bytes for t in result.trials]

    saved = optimum_wc.OVModelForCausalLM.from_pretrained(tmp_path / "out", compile=False)
    config = saved.quantization_config
    assert (config.mode, config.group_size, config.ratio) == (
        result.chosen.candidate.mode,
        *[result.chosen.candidate.compress_kwargs().get(k, d) for k, d in (("group_size", None), ("ratio", 1.0))],
    )
    assert config.statistics_path is None  # the temporary folder is not recorded
    assert (tmp_path / "out" / "openvino_model.bin").stat().st_size == result.chosen.size_bytes
    report = json.loads((tmp_path / "out" / "tuning.json").read_text())
    assert report["chosen"] == expected and len(report["trials"]) == len(SMALL_GRID.candidates())
    assert (tmp_path / "out" / "tuning.png").is_file() and f"**{expected}**" in (
        tmp_path / "out" / "tuning.md"
    ).read_text()

    full = tune(
        fp32_ir,
        tmp_path / "full",
        dataset=str(PYDOC_CALIBRATION),
        max_kl=limit,
        search=SMALL_GRID,
        exhaustive=True,
        progress=False,
        **WINDOWS,
    )
    assert full.chosen.candidate.name == expected and len(full.evaluated) == len(full.trials)
    for trial in full.trials:
        size, kl = independent[trial.candidate.name]
        assert (trial.size_bytes, trial.meets) == (size, kl <= limit)
        assert trial.scores.kl == pytest.approx(kl, rel=1e-9)


def test_a_budget_no_configuration_meets_names_the_closest_and_saves_no_model(fp32_ir, independent, tmp_path):
    result = tune(
        fp32_ir,
        tmp_path / "out",
        dataset=str(PYDOC_CALIBRATION),
        max_kl=1e-12,
        search=SMALL_GRID,
        progress=False,
        **WINDOWS,
    )
    assert result.chosen is None and len(result.evaluated) == len(result.trials)
    assert result.closest.candidate.name == min(independent, key=lambda name: independent[name][1])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tuning.json", "tuning.md", "tuning.png"]
    assert "No configuration meets the budget; the closest is" in (tmp_path / "out" / "tuning.md").read_text()


def test_data_aware_candidates_collect_statistics_once_and_reuse_them_across_runs(fp32_ir, tmp_path, monkeypatch):
    from optimum_wc import compress
    from optimum_wc.pipeline import data_aware

    calls = {"metric": 0, "inputs": 0}
    collect, inputs = compress.collect_statistics, data_aware.input_statistics

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(compress, "collect_statistics", counted("metric", collect))
    monkeypatch.setattr(data_aware, "input_statistics", counted("inputs", inputs))
    space = SearchSpace(
        modes="int4_sym",
        group_sizes=64,
        ratios=0.8,
        all_layers=False,
        awq=(False, True),
        scale_estimation=(False, True),
    )
    options = dict(
        dataset=str(PYDOC_CALIBRATION),
        max_perplexity_increase="50%",
        search=space,
        exhaustive=True,
        calibration_dataset=str(PYDOC_CALIBRATION),
        num_samples=8,
        statistics_path=tmp_path / "stats",
        progress=False,
        **WINDOWS,
    )
    result = tune(fp32_ir, tmp_path / "out", **options)
    assert [t.candidate.name for t in result.trials] == [
        "INT4_SYM,group_size=64,ratio=0.8",
        "INT4_SYM,group_size=64,ratio=0.8,awq",
        "INT4_SYM,group_size=64,ratio=0.8,scale_estimation",
        "INT4_SYM,group_size=64,ratio=0.8,awq,scale_estimation",
    ]  # equal sizes: cheapest first
    assert len({t.size_bytes for t in result.trials}) == 1 and len(result.evaluated) == 4
    assert calls == {"metric": 1, "inputs": 1}  # 3 data-aware compressions and a sizing, one collection of each
    assert len({round(t.scores.kl, 12) for t in result.trials}) == 4  # the algorithms did change the weights
    saved = json.loads((tmp_path / "out" / "openvino_config.json").read_text())["quantization_config"]
    assert saved["advanced_parameters"]["statistics_path"] == str(tmp_path / "stats")
    tune(fp32_ir, tmp_path / "again", **options)
    assert calls == {"metric": 1, "inputs": 1}  # the second run read them from statistics_path


def test_similarity_budget(fp32_ir, tmp_path):
    space = SearchSpace(modes=("int4_asym", "int8_asym"), group_sizes=-1, ratios=1.0, all_layers=False)
    result = tune(
        fp32_ir,
        tmp_path / "out",
        dataset=str(PYDOC_CALIBRATION),
        min_similarity=0.3,
        search=space,
        num_prompts=2,
        max_new_tokens=6,
        progress=False,
    )
    assert result.reference.similarity == 1.0
    assert result.chosen.candidate.name == "INT4_ASYM,group_size=-1,ratio=1.0"  # the smaller one; 0.3 is lenient
    assert 0.3 <= result.chosen.scores.similarity <= 1.0 + 1e-9 and result.chosen.scores.perplexity is None


@pytest.fixture
def no_work(monkeypatch):
    """Any export, load or compression fails the test: refusals must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(optimum_wc.OVModelForCausalLM, "from_pretrained", boom)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({}, InvalidArgumentError, "Pass exactly one budget"),
        ({"max_kl": 0.1, "min_similarity": 0.9}, InvalidArgumentError, "got min_similarity, max_kl"),
        ({"max_kl": 0.1, "search": SearchSpace(gptq=(True,))}, InvalidArgumentError, "pass `calibration_dataset`"),
        ({"max_kl": 0.1, "search": ["int4"]}, InvalidArgumentTypeError, "`search` must be a SearchSpace"),
        ({"max_kl": 0.1, "num_windows": 0}, InvalidArgumentError, "`num_windows` must be an int >= 1"),
        ({"max_kl": 0.1, "dataset": ["", "  "]}, InvalidArgumentError, "holds no text"),
        ({"max_kl": 0.1, "calibration_dataset": []}, InvalidArgumentError, "`calibration_dataset` .* holds no text"),
    ],
)
def test_bad_input_is_refused_before_any_work(options, error, message, tmp_path, no_work):
    options = {"dataset": str(PYDOC_CALIBRATION), **options}
    with pytest.raises(error, match=message):
        tune(EMBEDDED, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_a_non_empty_output_is_refused_and_left_alone(tmp_path, no_work):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    with pytest.raises(InvalidArgumentError, match="is not empty; pass overwrite=True"):
        tune(EMBEDDED, tmp_path / "out", dataset=str(PYDOC_CALIBRATION), max_kl=0.1)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]


def test_a_failure_midway_leaves_the_output_and_its_parent_as_they_were(fp32_ir, tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")

    def fail(self, candidate, size):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tuner_module.Tuner, "evaluate", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        tune(
            fp32_ir,
            tmp_path / "out",
            dataset=str(PYDOC_CALIBRATION),
            max_kl=0.1,
            search=SMALL_GRID,
            overwrite=True,
            progress=False,
            **WINDOWS,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]


def test_windows_longer_than_the_context_and_compressed_models_are_refused(fp32_ir, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("compression started")

    monkeypatch.setattr(optimum_wc.OVModelForCausalLM, "compress", boom)
    with pytest.raises(InvalidArgumentError, match="`window_length` 2048 is longer than the model's context of 1024"):
        tune(fp32_ir, tmp_path / "out", dataset=str(PYDOC_CALIBRATION), max_kl=0.1, window_length=2048)
    monkeypatch.undo()
    compressed = tmp_path / "int8"
    optimum_wc.OVModelForCausalLM.from_pretrained(fp32_ir, load_in_8bit=True, compile=False).save_pretrained(compressed)
    with pytest.raises(UnsupportedModelError, match="holds compressed weights; tune needs the uncompressed model"):
        tune(compressed, tmp_path / "out", dataset=str(PYDOC_CALIBRATION), max_kl=0.1)
