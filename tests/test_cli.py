"""The optimum-wc command line: export + compression, refusals, atomic output."""

from __future__ import annotations

import argparse
import logging
import pathlib
import shutil
import subprocess
import sys

import pytest

import openvino as ov
from optimum_wc.cli import build_parser, config_from_args, main
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.errors import InvalidArgumentError
from tiny_models import build_tiny_model

pytestmark = pytest.mark.slow  # runs the command line end to end on exported models


@pytest.fixture(scope="module")
def gpt2_checkpoint(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("cli") / "gpt2"
    build_tiny_model("gpt2").save_pretrained(folder)
    return folder


def _rt(folder: pathlib.Path, key: str) -> str:
    return ov.Core().read_model(folder / "openvino_model.xml").get_rt_info(["nncf", "weight_compression", key]).value


def test_export_int4_with_flags(gpt2_checkpoint, tmp_path, caplog):
    out = tmp_path / "out"
    caplog.set_level(logging.INFO)
    code = main(
        [
            "export",
            str(gpt2_checkpoint),
            str(out),
            "--weight-format",
            "int4",
            "--sym",
            "--group-size",
            "32",
            "--ratio",
            "0.8",
        ]
    )
    assert code == 0
    assert (_rt(out, "mode"), _rt(out, "group_size"), _rt(out, "ratio")) == ("int4_sym", "32", "0.8")
    assert "int4_sym, group size 32" in caplog.text and "MiB of IR" in caplog.text
    assert (out / "README.md").is_file() and (out / "openvino_config.json").is_file()


def test_bare_int4_is_optimum_intels_default_and_fp16_keeps_float(gpt2_checkpoint, tmp_path):
    assert main(["export", str(gpt2_checkpoint), str(tmp_path / "a"), "--weight-format", "int4"]) == 0
    assert (_rt(tmp_path / "a", "mode"), _rt(tmp_path / "a", "group_size")) == ("int4_asym", "128")
    assert main(["export", str(gpt2_checkpoint), str(tmp_path / "b"), "--weight-format", "fp16"]) == 0
    model = ov.Core().read_model(tmp_path / "b" / "openvino_model.xml")
    assert not model.has_rt_info(["nncf"])
    types = {
        op.get_output_element_type(0).get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"
    }
    assert "f16" in types


def test_refuses_non_empty_output_unless_overwrite(gpt2_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["export", str(gpt2_checkpoint), str(out), "--weight-format", "int8"]) == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main(["export", str(gpt2_checkpoint), str(out), "--weight-format", "int8", "--overwrite"]) == 0
    assert _rt(out, "mode") == "int8_asym" and not (out / "keep.txt").exists()


def test_flags_without_weight_format_are_refused():
    args = build_parser().parse_args(["export", "m", "o", "--ratio", "0.5"])
    with pytest.raises(ValueError, match="--weight-format"):
        config_from_args(args)


def test_zero_group_size_is_refused_and_zero_ratio_warned_not_taken_for_absent(caplog):
    """0 is a value, not "flag not given": --group-size 0 is refused as optimum-cli refuses it, --ratio 0 is
    nncf's ``ratio or 1`` with a warning (both became the bare int4 default in silence)."""
    parse = build_parser().parse_args
    with pytest.raises(InvalidArgumentError, match="`group_size`=0 is invalid"):
        config_from_args(parse(["export", "m", "o", "--weight-format", "int4", "--group-size", "0"]))
    with caplog.at_level(logging.WARNING):
        config = config_from_args(parse(["export", "m", "o", "--weight-format", "int4", "--ratio", "0", "--sym"]))
    assert config.ratio == 0 and config.sym
    assert "`ratio`=0 is taken as 1.0" in caplog.text
    assert CompressionSettings.from_arguments(**config.to_compress_kwargs()).ratio == 1


def test_bad_model_path_fails_cleanly(tmp_path):
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "out"), "--weight-format", "int8"]) == 2
    assert not (tmp_path / "out").exists()


def test_console_script_is_installed():
    exe = shutil.which("optimum-wc")
    assert exe is not None
    out = subprocess.run([exe, "export", "--help"], capture_output=True, text=True, check=True)
    assert "--weight-format" in out.stdout
    module = [sys.executable, "-m", "optimum_wc.cli", "export", "openvino", "--help"]
    out = subprocess.run(module, capture_output=True, text=True, check=True)
    assert "--disable-stateful" in out.stdout and "--weight-format" in out.stdout


def test_data_aware_flags_reach_the_core(tmp_path):
    """Each flag changes the weights: leaving out --awq, or --scale-estimation, writes other bytes."""
    default_model = pathlib.Path(__file__).resolve().parent.parent / "models" / "tiny-llama-pydoc"
    data = tmp_path / "calibration.txt"
    data.write_text("\n".join(f"The function number {i} returns a list of values." for i in range(8)))
    base = ["--weight-format", "int4", "--sym", "--group-size", "64", "--dataset", str(data), "--num-samples", "6"]
    weights = {}
    for name, flags in {
        "both": ["--awq", "--scale-estimation"],
        "no-awq": ["--scale-estimation"],
        "no-se": ["--awq"],
    }.items():
        out = tmp_path / name
        assert main(["export", str(default_model), str(out), *base, *flags]) == 0
        weights[name] = (out / "openvino_model.bin").read_bytes()
    out = tmp_path / "both"
    assert (_rt(out, "awq"), _rt(out, "scale_estimation"), _rt(out, "gptq")) == ("True", "True", "False")
    assert weights["both"] != weights["no-awq"] and weights["both"] != weights["no-se"]


def test_gptq_without_dataset_is_refused_before_export(gpt2_checkpoint, tmp_path):
    assert main(["export", str(gpt2_checkpoint), str(tmp_path / "out"), "--weight-format", "int4", "--gptq"]) == 2
    assert not (tmp_path / "out").exists()


EMBEDDED = pathlib.Path(__file__).resolve().parent.parent / "models" / "tiny-llama-pydoc"


def test_eval_prints_perplexity_and_kl_to_the_reference(tmp_path, capsys):
    from helpers import PYDOC_CALIBRATION
    from optimum_wc.cli import load_for_evaluation
    from optimum_wc.evaluation import perplexity

    int8 = tmp_path / "int8"
    assert main(["export", str(EMBEDDED), str(int8), "--weight-format", "int8"]) == 0
    capsys.readouterr()
    args = [
        "eval",
        str(int8),
        "--reference",
        str(EMBEDDED),
        "--dataset",
        str(PYDOC_CALIBRATION),
        "--window-length",
        "128",
        "--max-tokens",
        "1000",
        "--num-windows",
        "4",
    ]
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| Model | Perplexity | Word perplexity | KL to reference | Tokens |"
    ours, reference = (line.split(" | ") for line in table[2:4])
    kl = float(ours[3])
    assert 0 < kl < 1e-2 and reference[3] == "—"  # INT8 is close to FP32, not equal to it
    model, tokenizer = load_for_evaluation(str(EMBEDDED))
    expected = perplexity(model, tokenizer, str(PYDOC_CALIBRATION), window_length=128, max_tokens=1000)
    assert float(reference[1]) == pytest.approx(expected.perplexity, abs=1e-4)  # the table shows the measurement


def test_eval_refuses_a_reference_with_another_tokenizer(tmp_path, caplog):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    other = tmp_path / "other"
    build_tiny_model("llama").save_pretrained(other)
    vocabulary = {f"w{i}": i for i in range(512)} | {"[UNK]": 0}
    PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    ).save_pretrained(other)
    assert main(["eval", str(EMBEDDED), "--reference", str(other), "--dataset", "x.txt"]) == 2
    assert "has a different tokenizer" in caplog.text
    assert main(["eval", str(tmp_path / "missing"), "--dataset", "x.txt"]) == 2
    assert "is not a folder holding a model" in caplog.text


def test_eval_similarity_scores_each_prompt_against_the_reference(tmp_path, capsys, caplog):
    from helpers import PYDOC_CALIBRATION

    args = [
        "eval",
        str(EMBEDDED),
        "--reference",
        str(EMBEDDED),
        "--dataset",
        str(PYDOC_CALIBRATION),
        "--metric",
        "similarity",
        "--num-prompts",
        "2",
        "--max-new-tokens",
        "8",
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| Prompt | Similarity |" and len(lines) == 5
    assert lines[-1] == "| **mean** | **1.0000** |"  # a model answers exactly like itself
    assert main(["eval", str(EMBEDDED), "--dataset", str(PYDOC_CALIBRATION), "--metric", "similarity"]) == 2
    assert "pass --reference MODEL" in caplog.text


def test_tune_exports_searches_and_saves_the_chosen_model(tmp_path, capsys, caplog):
    from helpers import PYDOC_CALIBRATION
    from optimum_wc import OVModelForCausalLM

    search = ["--search", "modes=int4_sym,int8_asym", "group_sizes=-1", "ratios=1", "all_layers=true"]
    common = ["--dataset", str(PYDOC_CALIBRATION), "--window-length", "64", "--num-windows", "2", *search]
    assert main(["tune", str(EMBEDDED), str(tmp_path / "out"), "--max-perplexity-increase", "5%", *common]) == 0
    printed = capsys.readouterr().out
    assert "Chosen: **INT4_SYM,group_size=-1,ratio=1.0,all_layers**" in printed  # the smaller of the two
    model = OVModelForCausalLM.from_pretrained(tmp_path / "out")
    assert model.quantization_config.mode.value == "int4_sym" and model.quantization_config.all_layers is True
    assert {"tuning.md", "tuning.json", "tuning.png", "tokenizer.json"} <= {
        p.name for p in (tmp_path / "out").iterdir()
    }

    assert main(["tune", str(EMBEDDED), str(tmp_path / "none"), "--max-kl", "1e-12", *common]) == 1
    assert (
        "no configuration meets the budget (KL to the reference at most 1e-12); the closest is INT8_ASYM" in caplog.text
    )
    assert "no model was saved" in caplog.text and not (tmp_path / "none" / "openvino_model.xml").exists()
    assert main(["tune", str(EMBEDDED), str(tmp_path / "x"), "--max-perplexity-increase", "5", *common]) == 2
    assert "is ambiguous: write '5%'" in caplog.text


def test_num_workers_does_not_change_the_output(gpt2_checkpoint, tmp_path, caplog):
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        assert (
            main(
                [
                    "export",
                    str(gpt2_checkpoint),
                    str(out),
                    "--weight-format",
                    "nf4",
                    "--ratio",
                    "0.8",
                    "--group-size",
                    "32",
                    "--num-workers",
                    workers,
                ]
            )
            == 0
        )
        outputs.append((out / "openvino_model.bin").read_bytes())
    assert outputs[0] == outputs[1]
    assert (
        main(["export", str(gpt2_checkpoint), str(tmp_path / "bad"), "--weight-format", "int8", "--num-workers", "0"])
        == 2
    )
    assert "`num_workers` must be a positive int or None, got 0" in caplog.text and not (tmp_path / "bad").exists()


def test_an_output_that_cannot_be_written_is_refused_before_the_export(tmp_path, monkeypatch, caplog):
    from optimum_wc.hf import modeling

    monkeypatch.setattr(modeling.OVModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("exported"))
    (tmp_path / "file").write_text("x")
    caplog.set_level(logging.ERROR)
    assert main(["export", "m", str(tmp_path / "file" / "out"), "--weight-format", "int8"]) == 2
    assert "lies under" in caplog.text and str(tmp_path / "file") in caplog.text


@pytest.mark.parametrize("flags", [["--group-size", "64"], ["--ratio", "0.5"]])
def test_int8_with_a_group_size_or_ratio_is_refused_as_the_api_refuses_it(flags):
    """They were replaced by -1 and 1.0 in silence."""
    args = build_parser().parse_args(["export", "m", "o", "--weight-format", "int8", *flags])
    with pytest.raises(ValueError, match="quantizes all layers per channel in 8 bit"):
        config_from_args(args)


def test_an_ignored_scope_that_matches_nothing_is_refused_as_the_api_refuses_it(gpt2_checkpoint, tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    code = main(
        [
            "export",
            str(gpt2_checkpoint),
            str(tmp_path / "out"),
            "--weight-format",
            "int4",
            "--ignored-scope",
            ".*no_such_layer.*",
        ]
    )
    assert code == 2 and "match no node of the model: patterns '.*no_such_layer.*'" in caplog.text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--weight-format", "mxfp4"],
        ["--weight-format", "mxfp4", "--ratio", "0.8", "--backup-precision", "int8_sym"],
        ["--weight-format", "cb4", "--group-size", "64", "--all-layers"],
        ["--weight-format", "nf4", "--ratio", "0.6"],
    ],
    ids=" ".join,
)
def test_new_weight_formats_build_optimum_clis_config(flags):
    """The config optimum-cli builds from the same flags (through optimum-intel's own function), read field by
    field, is the config our CLI builds."""
    from optimum.commands.export.openvino import parse_args_openvino, prepare_wc_config
    from optimum.intel import OVWeightQuantizationConfig
    from optimum.intel.openvino.configuration import _DEFAULT_4BIT_WQ_CONFIG

    from optimum_wc import WeightCompressionConfig

    theirs_parser = argparse.ArgumentParser()
    parse_args_openvino(theirs_parser)
    theirs_args = theirs_parser.parse_args(["-m", "model", "out", *flags])
    theirs = OVWeightQuantizationConfig(**prepare_wc_config(theirs_args, _DEFAULT_4BIT_WQ_CONFIG))
    ours = config_from_args(build_parser().parse_args(["export", "model", "out", *flags]))
    assert ours == WeightCompressionConfig.from_optimum_intel(theirs)
    assert ours.mode.value == flags[1]
