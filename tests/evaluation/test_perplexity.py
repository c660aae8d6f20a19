"""Sliding-window perplexity (token and word level) and last-word scoring, against PyTorch's own loss."""

from __future__ import annotations

import math

import datasets
import numpy as np
from optimum.intel import OVModelForCausalLM as IntelCausalLM
import pytest
import torch

from helpers import PYDOC_CALIBRATION
import optimum_wc
from optimum_wc.evaluation import ModelAdapter, adapters, evaluate, last_word, perplexity, register_adapter
from tiny_models import MAX_POSITIONS, VOCAB_SIZE, build_tiny_model

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


class ByteTokenizer:
    """One token per UTF-8 byte (ids < 256 fit the tiny vocabulary)."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        return {"input_ids": list(text.encode("utf-8"))}

    def decode(self, ids) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def _text() -> list[str]:
    return PYDOC_CALIBRATION.read_text().splitlines()[:3]  # ~1,000 bytes of English prose


@pytest.fixture(scope="module")
def torch_model() -> torch.nn.Module:
    return build_tiny_model("llama")


def _torch_recipe(model, ids: list[int], window: int, stride: int) -> float:
    """The Hugging Face recipe: labels -100 outside each window's new tokens; PyTorch's mean loss times the number
    of labels it averaged over."""
    ids_t = torch.tensor([ids])
    nll, count, previous_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        inputs = ids_t[:, begin:end]
        labels = inputs.clone()
        labels[:, : -(end - previous_end)] = -100
        with torch.no_grad():
            loss = model(input_ids=inputs, labels=labels).loss.item()
        scored = int((labels[:, 1:] != -100).sum())
        nll, count, previous_end = nll + loss * scored, count + scored, end
        if end == len(ids):
            break
    return math.exp(nll / count)


@pytest.mark.parametrize("window, stride", [(64, 64), (64, 16), (100, 37)])
def test_perplexity_equals_pytorch_loss_on_the_same_windows(torch_model, tiny_ir, window, stride):
    ids = ByteTokenizer()("\n".join(_text()))["input_ids"]
    expected = _torch_recipe(torch_model, ids, window, stride)
    ours = perplexity(torch_model, ByteTokenizer(), _text(), window_length=window, stride=stride)
    assert ours.perplexity == pytest.approx(expected, rel=1e-5)
    ov_model = IntelCausalLM.from_pretrained(tiny_ir("llama").parent, ov_config=F32)
    on_openvino = perplexity(ov_model, ByteTokenizer(), _text(), window_length=window, stride=stride)
    assert on_openvino.perplexity == pytest.approx(expected, rel=1e-3)  # the target: within 0.1%
    first_tokens = 0 if stride < window else math.ceil((len(ids) - 1) / window) - 1  # unscored window starts
    assert ours.num_tokens == len(ids) - 1 - first_tokens


def test_word_perplexity_and_agreement_with_evaluate(torch_model):
    text = _text()
    result = perplexity(torch_model, ByteTokenizer(), text, window_length=32)
    assert result.num_words == len("\n".join(text).split())
    nll = math.log(result.perplexity) * result.num_tokens
    assert result.word_perplexity == pytest.approx(math.exp(nll / result.num_words), rel=1e-12)
    assert result.word_perplexity > result.perplexity  # a word spans several byte tokens
    # non-overlapping windows over a text cut to whole windows are the windows of `evaluate`
    cut = perplexity(torch_model, ByteTokenizer(), text, window_length=32, max_tokens=32 * 5)
    windows = evaluate(torch_model, ByteTokenizer(), text, window_length=32, num_windows=5)
    assert cut.perplexity == pytest.approx(windows.perplexity, rel=1e-12) and cut.num_tokens == windows.num_tokens


def test_last_word_scores_the_tokens_the_last_word_adds(monkeypatch):
    monkeypatch.setattr(adapters, "ADAPTERS", list(adapters.ADAPTERS))

    class Uniform:
        pass

    class Oracle:
        """Puts all the probability on the true next token (it sees the whole window)."""

    def oracle_logits(ids):
        logits = np.zeros((len(ids), VOCAB_SIZE), np.float32)
        logits[np.arange(len(ids) - 1), ids[1:]] = 30.0
        return logits

    register_adapter(
        ModelAdapter(
            "uniform",
            lambda m: isinstance(m, Uniform),
            lambda m: lambda ids: np.zeros((len(ids), VOCAB_SIZE), np.float32),
        )
    )
    register_adapter(ModelAdapter("oracle", lambda m: isinstance(m, Oracle), lambda m: oracle_logits))
    examples = ["the cat sat on the mat", "one", "import os", "a b"]  # "one" has no context: skipped
    uniform = last_word(Uniform(), ByteTokenizer(), examples)
    assert uniform.num_examples == 3 and uniform.perplexity == pytest.approx(VOCAB_SIZE, rel=1e-12)
    assert uniform.accuracy == 0.0  # argmax of uniform logits is token 0, never a target here
    oracle = last_word(Oracle(), ByteTokenizer(), datasets.Dataset.from_dict({"text": examples}))
    assert oracle.accuracy == 1.0 and oracle.perplexity < 1.0001


def test_bad_evaluation_input(torch_model, monkeypatch):
    with pytest.raises(
        optimum_wc.InvalidArgumentError,
        match=rf"`window_length` is {MAX_POSITIONS + 1} tokens, "
        rf"longer than the model's context of {MAX_POSITIONS}",
    ):
        perplexity(torch_model, ByteTokenizer(), _text(), window_length=MAX_POSITIONS + 1)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="at least 2"):
        perplexity(torch_model, ByteTokenizer(), [""], window_length=32)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="`stride` must be between 1 and"):
        perplexity(torch_model, ByteTokenizer(), _text(), window_length=32, stride=0)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="no example of at least two words"):
        last_word(torch_model, ByteTokenizer(), ["", "single"])
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(optimum_wc.InvalidArgumentError, match="Pass local text instead"):
        perplexity(torch_model, ByteTokenizer(), "wikitext2", window_length=32)


def test_local_json_and_parquet_files_are_read_with_datasets(torch_model, tmp_path):
    data = datasets.Dataset.from_dict({"text": _text()})
    data.to_json(tmp_path / "t.jsonl")
    data.to_parquet(tmp_path / "t.parquet")
    expected = perplexity(torch_model, ByteTokenizer(), _text(), window_length=48)
    for name in ("t.jsonl", "t.parquet"):
        assert perplexity(torch_model, ByteTokenizer(), str(tmp_path / name), window_length=48) == expected
