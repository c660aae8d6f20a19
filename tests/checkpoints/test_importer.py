"""GPTQ/AWQ checkpoints built here are imported into compressed IR holding exactly their codes, scales and zero
points: every dequantized weight equals the format's formula bit for bit, and the logits match PyTorch."""

from __future__ import annotations

import json

import nncf
import numpy as np
from prequantized import Case, make_checkpoint
import pytest
import torch

import openvino as ov
from openvino import opset13
import optimum_wc
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from tiny_models import VOCAB_SIZE

pytestmark = pytest.mark.slow  # exports float skeletons of packed checkpoints

CASES = [
    Case("gptq", 4, 32, sym=True, checkpoint_format="gptq"),
    Case("gptq", 4, 64, sym=False, desc_act=True, checkpoint_format="gptq_v2"),
    Case("gptq", 4, 32, sym=False, desc_act=True, checkpoint_format="gptq", arch="qwen2"),
    Case("gptq", 8, -1, sym=False, checkpoint_format="gptq", arch="opt"),
    Case("gptq", 8, 32, sym=True, desc_act=True, checkpoint_format="gptq_v2"),
    Case("gptq", 4, -1, sym=True, checkpoint_format="gptq_v2"),
    Case("awq", 4, 32, checkpoint_format="gemm"),
    Case("awq", 4, 64, checkpoint_format="gemm", arch="qwen2"),
]
F32 = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


@pytest.fixture(autouse=True)
def no_nncf(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("nncf was called")

    monkeypatch.setattr(nncf, "compress_weights", boom)


def _weight_feeding(matmul: ov.Node, port: int) -> np.ndarray:
    """Evaluates the subgraph that feeds ``matmul``'s weight input (constants only) on the CPU plugin."""
    source = matmul.input(port).get_source_output()
    model = ov.Model([opset13.result(source)], [])
    return ov.Core().compile_model(model, "CPU", F32)({})[0]


def _constants(model: ov.Model) -> dict[str, ov.Node]:
    return {op.get_friendly_name(): op for op in model.get_ops() if op.get_type_name() == "Constant"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_imported_weights_are_the_checkpoints_codes_exactly(case, tmp_path):
    expected, reference = make_checkpoint(case, tmp_path / "ckpt")
    model = optimum_wc.OVModelForCausalLM.from_pretrained(tmp_path / "ckpt", export=True, ov_config=F32)
    graph = {op.get_friendly_name(): op for op in model.model.get_ops()}
    constants = _constants(model.model)
    for name, values in expected.items():
        weight_name = f"self.{name}.weight"
        codes = constants[weight_name]
        sym = bool(np.all(values["zeros"] == 2 ** (case.bits - 1)))
        assert codes.get_element_type().get_type_name() == ("i" if sym else "u") + str(case.bits)
        assert (f"{weight_name}/zero_point" in constants) is not sym
        scale = constants[f"{weight_name}/scale"].get_data()
        assert scale.dtype == np.float16 and np.array_equal(scale.reshape(scale.shape[0], -1), values["scales"].T)
        matmul = graph[f"__module.{name}/aten::linear/MatMul"]
        weight = _weight_feeding(matmul, 1)
        permutation = constants.get(f"{weight_name}/g_idx_permutation/indices")
        wanted = values["weight"].astype(np.float32)
        if permutation is None:
            assert not case.desc_act or values["g_idx"].tolist() == sorted(values["g_idx"].tolist())
        else:
            order = permutation.get_data()
            assert case.desc_act and np.all(np.diff(values["g_idx"][order]) >= 0)
            wanted = wanted[:, order]
        assert np.array_equal(weight, wanted), name  # bit for bit

    ids = torch.randint(3, VOCAB_SIZE, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch_logits = reference(input_ids=ids).logits.numpy()
    ov_logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.numpy()
    assert np.abs(ov_logits - torch_logits).max() < 1e-4 * max(1.0, np.abs(torch_logits).max())


def test_imported_model_saves_reloads_and_runs_in_a_pipeline(tmp_path):
    from transformers import AutoTokenizer, pipeline

    case = Case("gptq", 4, 32, sym=False, desc_act=True, checkpoint_format="gptq_v2")
    make_checkpoint(case, tmp_path / "ckpt")
    model = optimum_wc.OVModelForCausalLM.from_pretrained(tmp_path / "ckpt", export=True, ov_config=F32)
    assert model.quantization_origin["method"] == "gptq" and model.quantization_origin["desc_act"] == "True"
    ids = torch.tensor([[5, 9, 17, 33, 65]])
    before = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.numpy()
    model.save_pretrained(tmp_path / "saved")
    card = (tmp_path / "saved" / "README.md").read_text()
    assert (
        f"Imported from the GPTQ checkpoint `{tmp_path / 'ckpt'}`" in card and "| checkpoint_format | gptq_v2 |" in card
    )
    assert "quantization_config" not in json.loads((tmp_path / "saved" / "config.json").read_text())
    records = json.loads((tmp_path / "saved" / "compressed_weights.json").read_text())
    assert {r["mode"] for r in records.values()} == {"int4_asym"} and all(r["permuted"] for r in records.values())

    reloaded = optimum_wc.OVModelForCausalLM.from_pretrained(tmp_path / "saved", ov_config=F32)
    assert reloaded.quantization_origin == model.quantization_origin and reloaded.quantization_config is None
    after = reloaded(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.numpy()
    assert np.array_equal(before, after)
    generator = pipeline("text-generation", model=reloaded, tokenizer=AutoTokenizer.from_pretrained(tmp_path / "saved"))
    text = generator("w5 w9 w17", max_new_tokens=4, do_sample=False)[0]["generated_text"]
    assert text.startswith("w5 w9 w17") and len(text.split()) > 3


def test_refusals(tmp_path):
    make_checkpoint(Case("awq", 4, 32, checkpoint_format="gemm"), tmp_path / "ckpt")
    with pytest.raises(InvalidArgumentError, match="is already quantized .*AWQ 4-bit.*drop `quantization_config`"):
        optimum_wc.OVModelForCausalLM.from_pretrained(tmp_path / "ckpt", export=True, load_in_4bit=True)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["quantization_config"]["version"] = "exllama"
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(NotYetSupportedError, match="version='exllama'"):
        optimum_wc.OVModelForCausalLM.from_pretrained(tmp_path / "ckpt", export=True)


def test_a_hub_id_is_read_through_huggingface_hub(tmp_path, monkeypatch):
    """The Hub path: config.json first (is it GPTQ/AWQ?), then a snapshot of the files the import needs."""
    import huggingface_hub

    make_checkpoint(Case("awq", 4, 64, checkpoint_format="gemm"), tmp_path / "ckpt")
    calls = []

    def hf_hub_download(repo_id, filename, **kwargs):
        calls.append(("file", repo_id, filename, kwargs))
        return str(tmp_path / "ckpt" / filename)

    def snapshot_download(repo_id, allow_patterns=None, **kwargs):
        calls.append(("snapshot", repo_id, tuple(allow_patterns), kwargs))
        return str(tmp_path / "ckpt")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    model = optimum_wc.OVModelForCausalLM.from_pretrained(
        "someone/tiny-awq", export=True, revision="main", compile=False
    )
    assert [c[:3] for c in calls] == [
        ("file", "someone/tiny-awq", "config.json"),
        ("snapshot", "someone/tiny-awq", ("*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.jinja")),
    ]
    assert calls[0][3] == {"revision": "main"} and calls[1][3] == {"revision": "main"}
    assert model.quantization_origin["source"] == "someone/tiny-awq" and model.quantization_origin["method"] == "awq"


def test_cli_export_imports_a_gptq_checkpoint(tmp_path, caplog):
    from optimum_wc.cli import main

    make_checkpoint(Case("gptq", 4, 32, sym=True, checkpoint_format="gptq"), tmp_path / "ckpt")
    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "out")]) == 0
    model = ov.Core().read_model(tmp_path / "out" / "openvino_model.xml")
    assert model.get_rt_info(["optimum_wc", "imported", "method"]).value == "gptq"
    types = {op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"}
    assert "i4" in types
    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "again"), "--weight-format", "int8"]) == 2
    assert "is already quantized (GPTQ 4-bit, group size 32, sym (gptq))" in caplog.text
