"""WhoWhatBench-style similarity: greedy answers compared by sentence embeddings (all-MiniLM-L6-v2, offline)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import optimum_wc
from optimum_wc.evaluation import similarity
from optimum_wc.evaluation.similarity import greedy_answer, load_embedder

pytestmark = pytest.mark.slow  # generates answers and embeds them with a sentence model

EMBEDDED = pathlib.Path(__file__).resolve().parents[2] / "models" / "tiny-llama-pydoc"
PROMPTS = ["The os module provides", "To open a file, call", "A list comprehension is"]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(EMBEDDED)


@pytest.fixture(scope="module")
def fp32():
    return AutoModelForCausalLM.from_pretrained(EMBEDDED).eval()


@pytest.fixture(scope="module")
def perturbed():
    model = AutoModelForCausalLM.from_pretrained(EMBEDDED).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * parameter.std() * torch.randn(parameter.shape, generator=generator))
    return model


def test_a_model_is_fully_similar_to_itself_and_a_damaged_copy_is_not(fp32, perturbed, tokenizer):
    same = similarity(fp32, fp32, tokenizer, PROMPTS, max_new_tokens=16)
    assert same.reference_answers == same.candidate_answers and all(a.strip() for a in same.reference_answers)
    assert same.mean == pytest.approx(1.0, abs=1e-6)
    damaged = similarity(fp32, perturbed, tokenizer, PROMPTS, max_new_tokens=16)
    assert damaged.candidate_answers != damaged.reference_answers
    assert damaged.mean < 0.99 and len(damaged.scores) == 3
    # each score is the cosine of the two answers' embeddings, computed here independently
    embedder = load_embedder()
    for score, a, b in zip(damaged.scores, damaged.reference_answers, damaged.candidate_answers):
        u, v = embedder.encode([a, b], convert_to_numpy=True).astype(np.float64)
        assert score == pytest.approx(u @ v / np.linalg.norm(u) / np.linalg.norm(v), abs=1e-5)


def test_openvino_int8_model_answers_like_the_fp32_one(fp32, tokenizer):
    int8 = optimum_wc.OVModelForCausalLM.from_pretrained(
        EMBEDDED, export=True, load_in_8bit=True, ov_config={"INFERENCE_PRECISION_HINT": "f32"}
    )
    answer = greedy_answer(int8, tokenizer, PROMPTS[0], 8)
    assert answer.strip()
    assert similarity(fp32, int8, tokenizer, PROMPTS[:2], max_new_tokens=8).mean > 0.9


def test_bad_similarity_input(fp32, tokenizer):
    with pytest.raises(optimum_wc.InvalidArgumentError, match="at least one prompt"):
        similarity(fp32, fp32, tokenizer, [])
    with pytest.raises(optimum_wc.InvalidArgumentError, match="no empty one"):
        similarity(fp32, fp32, tokenizer, ["ok", "  "])
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="list of strings"):
        similarity(fp32, fp32, tokenizer, "a single string")
    with pytest.raises(optimum_wc.InvalidArgumentTypeError, match="`candidate` must be a causal LM"):
        similarity(fp32, object(), tokenizer, PROMPTS)
    with pytest.raises(optimum_wc.InvalidArgumentError, match="Cannot load the embedding model"):
        similarity(fp32, fp32, tokenizer, PROMPTS, embedding_model="/no/such/embedding-model")
