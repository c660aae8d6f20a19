"""OVModelForSeq2SeqLM: for the same arguments, every OpenVINO model (encoder, decoder) the same as optimum-intel
with nncf gives, saved and reloaded with its config, and the same generated text (transformers 5 has no
``text2text-generation`` pipeline: ``generate`` is what it ran).

Both sides compress the same exported IR: optimum-intel's export of a T5 decoder orders its cross-attention
weights differently from one export to the next (the same graph, serialized in another order), so two exports
are not byte-identical even without compression (tests/cli/test_openvino.py compares the export path's graphs as
sets).
"""

from __future__ import annotations

import json

import pytest

from helpers import F32, forbid_export, forbid_nncf
import optimum_wc
from parity import compare_ir, same_graph_in_any_order
from tiny_models import export_uncompressed, save_tiny_t5

pytestmark = pytest.mark.slow  # exports a tiny T5 beside optimum-intel with nncf


@pytest.fixture(scope="module")
def t5_checkpoint(tmp_path_factory):
    return save_tiny_t5(tmp_path_factory.mktemp("t5") / "tiny-t5")


@pytest.fixture(scope="module")
def t5_ir(t5_checkpoint, tmp_path_factory):
    """The tiny T5 exported once by optimum-intel, uncompressed."""
    from optimum.intel import OVModelForSeq2SeqLM as IntelModel

    return export_uncompressed(IntelModel, t5_checkpoint, tmp_path_factory.mktemp("t5-ir"))


def _per_model(bits_4: dict, bits_8: dict) -> dict:
    return {"quantization_configs": {"encoder": bits_4}, "default_config": bits_8}


CASES = {
    "load_in_8bit": {"load_in_8bit": True},
    "int4-sym": {"quantization_config": {"bits": 4, "sym": True, "group_size": 32, "ratio": 0.8}},
    "per-model": {"quantization_config": _per_model({"bits": 4, "group_size": 64}, {"bits": 8, "sym": True})},
}


def _ov_models(folder):
    return sorted(p.name for p in folder.glob("openvino_*model.xml") if "tokenizer" not in p.name)


@pytest.mark.parametrize("case", CASES)
def test_the_same_models_and_text_as_optimum_intel(case, t5_ir, tmp_path, monkeypatch):
    from optimum.intel import OVModelForSeq2SeqLM as IntelModel
    from transformers import AutoTokenizer

    theirs = IntelModel.from_pretrained(t5_ir, ov_config=F32, **CASES[case])
    theirs.save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForSeq2SeqLM.from_pretrained(t5_ir, **CASES[case])
    ours.save_pretrained(tmp_path / "ours")
    names = _ov_models(tmp_path / "theirs")
    assert names == _ov_models(tmp_path / "ours") and "openvino_encoder_model.xml" in names
    for name in names:
        report = compare_ir(tmp_path / "theirs" / name, tmp_path / "ours" / name)
        assert report.identical, f"{name}: {report.describe()}"

    reloaded = optimum_wc.OVModelForSeq2SeqLM.from_pretrained(tmp_path / "ours", ov_config=F32)
    assert reloaded.quantization_config == ours.quantization_config is not None
    records = json.loads((tmp_path / "ours" / "compressed_weights.json").read_text())
    assert {"encoder", "decoder"} <= set(records), "each OpenVINO model's weights are recorded under its name"
    assert "OVModelForSeq2SeqLM.from_pretrained" in (tmp_path / "ours" / "README.md").read_text()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "ours")
    assert _generated(reloaded, tokenizer) == _generated(theirs, tokenizer)


def _generated(model, tokenizer) -> list[str]:
    tokens = tokenizer(
        ["the model is a small text model of open vino", "a small model"], padding=True, return_tensors="pt"
    )
    return tokenizer.batch_decode(model.generate(**tokens, max_new_tokens=8, do_sample=False))


def test_a_config_for_a_model_it_does_not_have_is_refused_before_the_export(t5_checkpoint, monkeypatch):
    forbid_export(monkeypatch, "OVModelForSeq2SeqLM")
    config = {"quantization_configs": {"lm_model": {"bits": 4}}}
    with pytest.raises(optimum_wc.InvalidArgumentError, match="'encoder', 'decoder'"):
        optimum_wc.OVModelForSeq2SeqLM.from_pretrained(t5_checkpoint, export=True, quantization_config=config)
    refused = {"c4": optimum_wc.NotYetSupportedError, "gsm8k": optimum_wc.InvalidArgumentError}
    for dataset, error in refused.items():
        with pytest.raises(error, match=f"`dataset`='{dataset}'"):
            optimum_wc.OVModelForSeq2SeqLM.from_pretrained(
                t5_checkpoint, export=True, quantization_config={"bits": 4, "ratio": 0.5, "dataset": dataset}
            )


TEXTS = [
    "the model is a small text model of open vino",
    "",
    "weights of the model are compressed to four bits by the tool",
    "a small model",
]
DATA_AWARE = {"bits": 4, "group_size": 16, "ratio": 0.8, "scale_estimation": True, "num_samples": 3}


def _same_models(theirs, ours):
    names = _ov_models(theirs)
    assert names == _ov_models(ours) and "openvino_decoder_model.xml" in names
    for name in names:
        report = compare_ir(theirs / name, ours / name)
        assert report.identical, f"{name}: {report.describe()}"


def test_calibration_text_gives_optimum_intels_models(t5_ir, tmp_path, monkeypatch):
    """The texts as given (an empty one too), each model recording what it is given while T5 generates: every
    OpenVINO model calibrated, the same as optimum-intel's. Other texts give another encoder; the decoder (whose
    inputs the random T5's generation keeps alike) differs from its data-free compression."""
    from optimum.intel import OVModelForSeq2SeqLM as IntelModel

    config = {**DATA_AWARE, "dataset": TEXTS, "tokenizer": str(t5_ir / "checkpoint")}
    IntelModel.from_pretrained(t5_ir, ov_config=F32, quantization_config=config).save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForSeq2SeqLM.from_pretrained(t5_ir, ov_config=F32, quantization_config=config)
    ours.save_pretrained(tmp_path / "ours")
    _same_models(tmp_path / "theirs", tmp_path / "ours")
    others = {
        "other": {**config, "dataset": TEXTS[::-1]},
        "free": {**config, "dataset": None, "scale_estimation": False},
    }
    for folder, other in others.items():
        optimum_wc.OVModelForSeq2SeqLM.from_pretrained(t5_ir, quantization_config=other).save_pretrained(
            tmp_path / folder
        )
    encoder, decoder = "openvino_encoder_model.xml", "openvino_decoder_model.xml"
    assert not compare_ir(tmp_path / "ours" / encoder, tmp_path / "other" / encoder).identical
    assert not compare_ir(tmp_path / "ours" / decoder, tmp_path / "free" / decoder).identical


def test_wikitext2_and_the_quantizer_give_optimum_intels_models(t5_ir, tmp_path, monkeypatch):
    """``wikitext2``'s training split shuffled with the quantizer's seed (a local stand-in for the Hub's), named in
    the config given to ``OVQuantizer``; and the same rows as its ``calibration_dataset``, taken in order."""
    import datasets
    from optimum.intel import OVConfig, OVQuantizer
    from optimum.intel import OVModelForSeq2SeqLM as IntelModel
    from optimum.intel import OVWeightQuantizationConfig as IntelConfig

    rows = datasets.Dataset.from_dict({"text": [f"{index} {text}" for index in range(4) for text in TEXTS]})
    real = datasets.load_dataset

    def stand_in(path, *args, **kwargs):
        return rows if path == "Salesforce/wikitext" else real(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", stand_in)
    config = {**DATA_AWARE, "dataset": "wikitext2:seq_len=12", "tokenizer": str(t5_ir / "checkpoint")}
    by_rows = {key: value for key, value in config.items() if key != "dataset"}  # the rows to the quantizer instead
    for folder, options, data in (("theirs", config, None), ("theirs-rows", by_rows, rows)):
        theirs = IntelModel.from_pretrained(t5_ir, ov_config=F32, compile=False)
        quantization = OVConfig(quantization_config=IntelConfig(**options))
        OVQuantizer(theirs, seed=50).quantize(calibration_dataset=data, ov_config=quantization)
        theirs.save_pretrained(tmp_path / folder)
    forbid_nncf(monkeypatch)
    for folder, options, data in (("ours", config, None), ("ours-rows", by_rows, rows)):
        ours = optimum_wc.OVModelForSeq2SeqLM.from_pretrained(t5_ir, ov_config=F32, compile=False)
        quantization = optimum_wc.OVConfig(quantization_config=optimum_wc.OVWeightQuantizationConfig(**options))
        optimum_wc.OVQuantizer(ours, seed=50).quantize(calibration_dataset=data, ov_config=quantization)
        ours.save_pretrained(tmp_path / folder)
    _same_models(tmp_path / "theirs", tmp_path / "ours")
    _same_models(tmp_path / "theirs-rows", tmp_path / "ours-rows")
    refused = {"subset_size": ({"ov_config": optimum_wc.OVConfig(quantization_config=config), "subset_size": 8})}
    refused["`text` column"] = {"calibration_dataset": rows.rename_column("text", "t"), "ov_config": quantization}
    for message, arguments in refused.items():
        with pytest.raises(optimum_wc.OptimumWCError, match=message):
            fresh = optimum_wc.OVModelForSeq2SeqLM.from_pretrained(t5_ir, compile=False)
            optimum_wc.OVQuantizer(fresh).quantize(**arguments)


def test_unasked_int8_goes_to_each_model_of_a_billion_weights_as_in_optimum_intel(t5_checkpoint, tmp_path, monkeypatch):
    """optimum-intel's rule when nothing is asked: INT8_ASYM for each OpenVINO model of 1e9 or more weights, alone.
    Both thresholds are moved between the tiny encoder's weights (about 270k) and the decoder's (about 400k)."""
    from optimum.exporters.openvino import __main__ as exporter
    from optimum.intel import OVModelForSeq2SeqLM as IntelModel

    monkeypatch.setattr(exporter, "_MAX_UNCOMPRESSED_SIZE", 330_000)
    monkeypatch.setattr("optimum_wc.hf.compressed.AUTO_INT8_MIN_WEIGHTS", 330_000)
    IntelModel.from_pretrained(t5_checkpoint, export=True, compile=False).save_pretrained(tmp_path / "theirs")
    forbid_nncf(monkeypatch)
    ours = optimum_wc.OVModelForSeq2SeqLM.from_pretrained(t5_checkpoint, export=True, compile=False)
    ours.save_pretrained(tmp_path / "ours")
    encoder, decoder = "openvino_encoder_model.xml", "openvino_decoder_model.xml"
    assert compare_ir(tmp_path / "theirs" / encoder, tmp_path / "ours" / encoder).identical
    assert same_graph_in_any_order(tmp_path / "theirs" / decoder, tmp_path / "ours" / decoder) == []
    assert list(ours.quantization_config.quantization_configs) == ["decoder"]


def test_the_quantizer_gives_optimum_intels_model_for_a_per_model_config(t5_ir, tmp_path, monkeypatch):
    """optimum-intel's quantizer on its own T5 with its pipeline config; ours on another load of the same IR."""
    from optimum.intel import OVConfig, OVPipelineQuantizationConfig, OVQuantizer, OVWeightQuantizationConfig
    from optimum.intel import OVModelForSeq2SeqLM as IntelModel

    config = OVPipelineQuantizationConfig(
        {"encoder": OVWeightQuantizationConfig(bits=4, group_size=32)},
        default_config=OVWeightQuantizationConfig(bits=8),
    )
    OVQuantizer(IntelModel.from_pretrained(t5_ir, compile=False)).quantize(
        ov_config=OVConfig(quantization_config=config), save_directory=tmp_path / "theirs"
    )
    forbid_nncf(monkeypatch)
    model = IntelModel.from_pretrained(t5_ir, compile=False)
    optimum_wc.OVQuantizer(model).quantize(
        ov_config=optimum_wc.OVConfig(quantization_config=config), save_directory=tmp_path / "ours"
    )
    assert isinstance(model, optimum_wc.OVModelForSeq2SeqLM)
    for name in ("openvino_encoder_model.xml", "openvino_decoder_model.xml"):
        report = compare_ir(tmp_path / "theirs" / name, tmp_path / "ours" / name)
        assert report.identical, f"{name}: {report.describe()}"
