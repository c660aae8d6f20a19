"""Perplexity and KL divergence: checked against float64 numpy on raw logits, OpenVINO against PyTorch, INT4."""

from __future__ import annotations

import random
import shutil

import numpy as np
from optimum.intel import OVModelForCausalLM as IntelCausalLM
import pytest
import torch

import openvino as ov
import optimum_wc
from optimum_wc.evaluation import (
    ModelAdapter,
    adapters,
    evaluate,
    kl_divergence,
    log_softmax,
    register_adapter,
    token_windows,
)
from tiny_models import VOCAB_SIZE, build_tiny_model

F32 = {"INFERENCE_PRECISION_HINT": "f32"}  # the CPU plugin would otherwise run bf16 where the CPU has it
WINDOW_LENGTH = 32
NUM_WINDOWS = 6


class ByteTokenizer:
    """One token per UTF-8 byte (ids < 256 fit the tiny vocabulary of 512)."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        return {"input_ids": list(text.encode("utf-8"))}


def _lines() -> list[str]:
    rng = random.Random(0)
    words = ["module", "function", "returns", "the", "value", "of", "an", "object", "import", "class", "list"]
    return [" ".join(rng.choice(words) for _ in range(12)) for _ in range(40)]


@pytest.fixture(scope="module")
def torch_model() -> torch.nn.Module:
    return build_tiny_model("llama")  # the same seeded weights as the `tiny_ir("llama")` export


@pytest.fixture(scope="module")
def perturbed_model() -> torch.nn.Module:
    model = build_tiny_model("llama")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def ov_model(tiny_ir) -> IntelCausalLM:
    return IntelCausalLM.from_pretrained(tiny_ir("llama").parent, ov_config=F32)


def _numpy_reference(model, reference, windows: np.ndarray) -> tuple[float, float]:
    """Perplexity and mean KL straight from the definitions: softmax probabilities in float64, no log-softmax."""
    nll, kl = [], []
    for ids in windows:
        with torch.no_grad():
            batch = torch.from_numpy(ids[None])
            logits = model(batch).logits[0, :-1].double().numpy()
            ref_logits = reference(batch).logits[0, :-1].double().numpy()
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        q = np.exp(ref_logits) / np.exp(ref_logits).sum(axis=1, keepdims=True)
        nll.extend(-np.log(p[np.arange(len(ids) - 1), ids[1:]]))
        kl.extend((q * np.log(q / p)).sum(axis=1))
    return float(np.exp(np.mean(nll))), float(np.mean(kl))


def test_perplexity_and_kl_equal_a_float64_numpy_computation(torch_model, perturbed_model):
    result = evaluate(
        perturbed_model,
        ByteTokenizer(),
        _lines(),
        reference=torch_model,
        window_length=WINDOW_LENGTH,
        num_windows=NUM_WINDOWS,
    )
    windows = token_windows(_lines(), ByteTokenizer(), WINDOW_LENGTH, NUM_WINDOWS)
    perplexity, mean_kl = _numpy_reference(perturbed_model, torch_model, windows)
    assert result.perplexity == pytest.approx(perplexity, rel=1e-10)
    assert result.mean_kl == pytest.approx(mean_kl, rel=1e-8)
    assert result.mean_kl > 1e-3  # the perturbation is visible, so the comparison above is not 0 == 0
    assert (result.num_windows, result.num_tokens, result.window_length) == (6, 6 * 31, 32)


def test_kl_of_a_model_to_itself_is_zero(torch_model, ov_model):
    for model in (torch_model, ov_model):
        result = evaluate(
            model, ByteTokenizer(), _lines(), reference=model, window_length=WINDOW_LENGTH, num_windows=NUM_WINDOWS
        )
        assert 0 <= result.mean_kl < 1e-9
    assert evaluate(torch_model, ByteTokenizer(), _lines(), window_length=WINDOW_LENGTH, num_windows=2).mean_kl is None


def test_openvino_export_matches_pytorch_window_by_window(torch_model, ov_model):
    """Every window is an independent sequence: state leaking from one window to the next would shift positions."""
    kwargs = dict(window_length=WINDOW_LENGTH, num_windows=NUM_WINDOWS)
    on_torch = evaluate(torch_model, ByteTokenizer(), _lines(), **kwargs)
    on_ov = evaluate(ov_model, ByteTokenizer(), _lines(), reference=torch_model, **kwargs)
    assert on_ov.mean_kl < 1e-4
    assert on_ov.perplexity == pytest.approx(on_torch.perplexity, rel=1e-3)
    again = evaluate(ov_model, ByteTokenizer(), _lines(), reference=torch_model, **kwargs)
    assert again == on_ov


def test_int4_compressed_model_diverges_from_fp32(tiny_ir, ov_model, tmp_path):
    xml = tiny_ir("llama")
    compressed = optimum_wc.compress_weights(
        ov.Core().read_model(xml), mode=optimum_wc.CompressWeightsMode.INT4_SYM, group_size=32, progress=False
    )
    ov.save_model(compressed, tmp_path / xml.name, compress_to_fp16=False)
    shutil.copy(xml.parent / "config.json", tmp_path / "config.json")
    int4_model = IntelCausalLM.from_pretrained(tmp_path, ov_config=F32)
    kwargs = dict(window_length=WINDOW_LENGTH, num_windows=NUM_WINDOWS)
    result = evaluate(int4_model, ByteTokenizer(), _lines(), reference=ov_model, **kwargs)
    assert result.mean_kl > 1e-5  # about 6e-4 for this model
    assert result.perplexity != evaluate(ov_model, ByteTokenizer(), _lines(), **kwargs).perplexity


def test_registered_adapter_with_uniform_logits_has_perplexity_of_the_vocabulary(monkeypatch):
    monkeypatch.setattr(adapters, "ADAPTERS", list(adapters.ADAPTERS))

    class Uniform:
        pass

    register_adapter(
        ModelAdapter(
            "uniform",
            lambda m: isinstance(m, Uniform),
            lambda m: lambda ids: np.zeros((len(ids), VOCAB_SIZE), np.float32),
        )
    )
    result = evaluate(Uniform(), ByteTokenizer(), _lines(), reference=Uniform(), window_length=8, num_windows=3)
    assert result.perplexity == pytest.approx(VOCAB_SIZE, rel=1e-12)
    assert result.mean_kl == 0.0


def test_unsupported_models_and_mismatched_vocabularies_are_refused(torch_model):
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="`model` must be an OpenVINO"):
        evaluate("gpt2", ByteTokenizer(), _lines())
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="`reference` must be"):
        evaluate(torch_model, ByteTokenizer(), _lines(), reference=object())

    class WideTokenizer:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [VOCAB_SIZE + 5] * len(text)}

    with pytest.raises(optimum_wc.InvalidArgumentError, match=r"token id 517.*vocabulary of 512"):
        evaluate(torch_model, WideTokenizer(), _lines(), window_length=WINDOW_LENGTH, num_windows=1)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="`num_windows`=1000"):
        evaluate(torch_model, ByteTokenizer(), _lines(), window_length=WINDOW_LENGTH, num_windows=1000)


def test_log_softmax_is_stable_and_kl_ignores_impossible_reference_tokens():
    logits = np.array([[1000.0, 1000.0, -1000.0]])
    np.testing.assert_allclose(np.exp(log_softmax(logits)), [[0.5, 0.5, 0.0]], atol=1e-300)
    with np.errstate(divide="ignore"):
        reference = np.log(np.array([[0.5, 0.5, 0.0]]))  # -inf for the last token
    model = np.log(np.array([[0.25, 0.25, 0.5]]))
    np.testing.assert_allclose(kl_divergence(reference, model), [np.log(2.0)], rtol=1e-15)
