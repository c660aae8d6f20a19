"""SpQR from every Hugging Face entry point: WeightCompressionConfig, from_pretrained(quantization_config=...), the
CLI; the saved model reloads with the same outputs and a model card that states the stored bits per parameter."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest
import torch

from helpers import EMBEDDED, F32, forbid_nncf
from optimum_wc import OVModelForCausalLM, SpQRConfig, WeightCompressionConfig
from optimum_wc.cli import build_parser, config_from_args, main
from optimum_wc.errors import InvalidArgumentError, UnsupportedArgumentError
from optimum_wc.pipeline.rt_info import read_layer_records
from optimum_wc.pipeline.summary import StoredFootprint

pytestmark = pytest.mark.slow  # exports and compresses the embedded model with SpQR


@pytest.fixture
def calibration_text(tmp_path) -> pathlib.Path:
    path = tmp_path / "calibration.txt"
    path.write_text("\n".join(f"The function number {i} returns a list of {i + 2} values." for i in range(12)))
    return path


def test_config_speaks_both_vocabularies():
    ours = WeightCompressionConfig(mode="spqr", spqr={"bits": 3}, dataset=["a text"], num_samples=8, group_size=32)
    theirs = WeightCompressionConfig(weight_format="spqr", bits=3, dataset=["a text"], num_samples=8, group_size=32)
    assert ours == theirs and ours.bits == 3
    assert ours.spqr == SpQRConfig(bits=3, group_size=32, num_samples=8)
    assert WeightCompressionConfig.from_dict(json.loads(json.dumps(ours.to_dict()))) == ours
    with pytest.raises(InvalidArgumentError, match="contradicts `spqr.bits`=4"):
        WeightCompressionConfig(weight_format="spqr", bits=3, spqr={"bits": 4, "outlier_threshold": 0.3}, dataset=["a"])
    with pytest.raises(UnsupportedArgumentError, match="pass a `dataset`"):
        WeightCompressionConfig(weight_format="spqr").checked_settings()  # the data may come with OVQuantizer
    with pytest.raises(InvalidArgumentError, match="mode=SPQR only"):
        WeightCompressionConfig(bits=4, spqr={"bits": 3})


def test_from_pretrained_compresses_saves_and_reloads(tmp_path, calibration_text, monkeypatch):
    forbid_nncf(monkeypatch)
    config = {
        "weight_format": "spqr",
        "dataset": str(calibration_text),
        "num_samples": 6,
        "spqr": {"outlier_threshold": 0.1},
    }
    model = OVModelForCausalLM.from_pretrained(EMBEDDED, export=True, quantization_config=config, ov_config=F32)
    assert model.model.get_rt_info(["nncf", "weight_compression", "mode"]).value == "spqr"
    stored = model.compression_summary.stored
    assert stored is not None and stored.outliers > 0
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    before = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.detach().numpy()

    model.save_pretrained(tmp_path / "saved")
    reloaded = OVModelForCausalLM.from_pretrained(tmp_path / "saved", ov_config=F32)
    after = reloaded(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.detach().numpy()
    np.testing.assert_array_equal(before, after)
    assert reloaded.quantization_config.spqr == SpQRConfig(outlier_threshold=0.1, num_samples=6)
    assert StoredFootprint.from_records(read_layer_records(reloaded.model)) == stored
    card = (tmp_path / "saved" / "README.md").read_text()
    assert f"{stored.bits_per_parameter:.3f} bits per parameter" in card

    reloaded.save_pretrained(tmp_path / "again")  # the card of a reloaded model reads the footprint from rt_info
    assert f"{stored.bits_per_parameter:.3f} bits per parameter" in (tmp_path / "again" / "README.md").read_text()


def test_cli_exports_the_embedded_model_with_spqr_flags(tmp_path, calibration_text):
    out = tmp_path / "out"
    code = main(
        [
            "export",
            str(EMBEDDED),
            str(out),
            "--weight-format",
            "spqr",
            "--spqr-bits",
            "3",
            "--outlier-threshold",
            "0.5",
            "--permutation-order",
            "identity",
            "--round-zero",
            "--group-size",
            "32",
            "--dataset",
            str(calibration_text),
            "--num-samples",
            "6",
        ]
    )
    assert code == 0
    model = OVModelForCausalLM.from_pretrained(out, compile=False)
    assert model.model.get_rt_info(["optimum_wc", "spqr", "bits"]).value == "3"
    assert model.model.get_rt_info(["optimum_wc", "spqr", "permutation_order"]).value == "identity"
    assert model.model.get_rt_info(["optimum_wc", "spqr", "num_samples"]).value == "6"
    assert model.model.get_rt_info(["optimum_wc", "spqr", "round_zero"]).value == "True"
    assert model.model.get_rt_info(["optimum_wc", "spqr", "group_size"]).value == "32"
    stored = StoredFootprint.from_records(read_layer_records(model.model))
    assert stored.parts["permutation"] == 0  # identity order: no Gather, nothing stored
    figure = re.search(r"([0-9.]+) bits per parameter over", (out / "README.md").read_text())
    assert float(figure.group(1)) == pytest.approx(stored.bits_per_parameter, abs=1e-3)
    # 3 + 6/32 + (32 + 16)/512 (float16 scale step and minimum, u8 integer zero step and minimum), plus outliers
    assert 3.28 <= stored.bits_per_parameter < 3.7


def test_cli_refuses_spqr_flags_without_spqr_and_spqr_without_data(tmp_path):
    args = build_parser().parse_args(["export", "m", "o", "--weight-format", "int4", "--qq-groupsize", "8"])
    with pytest.raises(InvalidArgumentError, match="--qq-groupsize need --weight-format spqr"):
        config_from_args(args)
    assert main(["export", str(EMBEDDED), str(tmp_path / "out"), "--weight-format", "spqr"]) == 2
    assert (
        main(
            [
                "export",
                str(EMBEDDED),
                str(tmp_path / "out"),
                "--weight-format",
                "spqr",
                "--spqr-bits",
                "4",
                "--dataset",
                "x.txt",
                "--outlier-threshold",
                "-1",
            ]
        )
        == 2
    )
    assert not (tmp_path / "out").exists()
