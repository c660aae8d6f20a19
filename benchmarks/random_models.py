"""The random-weight models that several benchmarks share (built in code: nothing is downloaded)."""

from __future__ import annotations

import pathlib
import shutil


def save_random_llama_270m(folder: pathlib.Path) -> pathlib.Path:
    """Saves (once) a float32 safetensors checkpoint of a random Llama: hidden 1024, MLP 2816, 16 layers, 16 heads,
    vocabulary 32000 (270M parameters, 1.03 GiB); written to a temporary folder and moved into place."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=16,
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp)
    tmp.rename(folder)
    return folder
