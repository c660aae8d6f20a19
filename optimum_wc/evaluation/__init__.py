"""Accuracy of compressed causal LMs: perplexity and KL divergence to a reference over fixed token windows.

```python
from optimum_wc.evaluation import evaluate

result = evaluate(int4_model, tokenizer, "valid.txt", reference=fp32_model, window_length=256, num_windows=100)
```

Works with OpenVINO models (optimum-intel's ``OVModelForCausalLM`` and ``optimum_wc.OVModelForCausalLM``) and
transformers PyTorch models; the math is float64 numpy.
"""

from optimum_wc.evaluation.adapters import LogitsFunction, ModelAdapter, logits_function, register_adapter
from optimum_wc.evaluation.evaluator import EvaluationResult, evaluate
from optimum_wc.evaluation.metrics import kl_divergence, log_softmax, token_nll
from optimum_wc.evaluation.perplexity import LastWordResult, PerplexityResult, last_word, perplexity
from optimum_wc.evaluation.similarity import SimilarityResult, SimilarityScorer, prompts_from_text, similarity
from optimum_wc.evaluation.windows import load_rows, load_text, split_windows, token_windows, tokenize

__all__ = [
    "EvaluationResult",
    "LastWordResult",
    "PerplexityResult",
    "SimilarityResult",
    "SimilarityScorer",
    "LogitsFunction",
    "ModelAdapter",
    "evaluate",
    "kl_divergence",
    "last_word",
    "load_rows",
    "load_text",
    "log_softmax",
    "logits_function",
    "perplexity",
    "prompts_from_text",
    "register_adapter",
    "similarity",
    "split_windows",
    "token_nll",
    "token_windows",
    "tokenize",
]
