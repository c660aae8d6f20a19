"""Builds GPTQ and AWQ checkpoints of tiny random models, packed as each format specifies (written here, from the
format descriptions, independently of optimum_wc's readers), with the dequantized weights they must give."""

from __future__ import annotations

from dataclasses import dataclass
import json
import pathlib

import numpy as np
from safetensors.torch import save_file
import torch

from tiny_models import VOCAB_SIZE, build_tiny_model

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


@dataclass(frozen=True)
class Case:
    method: str  # gptq / awq
    bits: int = 4
    group_size: int = 32
    sym: bool = False
    desc_act: bool = False
    checkpoint_format: str = "gptq"  # gptq / gptq_v2 / gemm
    arch: str = "llama"

    @property
    def id(self) -> str:
        group = "perchannel" if self.group_size == -1 else f"g{self.group_size}"
        flags = ("sym" if self.sym else "asym") + ("-descact" if self.desc_act else "")
        return f"{self.arch}-{self.method}-{self.checkpoint_format}-{self.bits}bit-{group}-{flags}"


def _to_int32(words: np.ndarray) -> np.ndarray:
    return (words & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def pack_along_rows(values: np.ndarray, bits: int) -> np.ndarray:
    """[R, C] small ints -> int32 [R * bits / 32, C]; rows r*p .. r*p+p-1 in one word, the first in the low bits."""
    per = 32 // bits
    words = np.zeros((values.shape[0] // per, values.shape[1]), dtype=np.int64)
    for k in range(per):
        words |= values[k::per].astype(np.int64) << (bits * k)
    return _to_int32(words)


def pack_along_columns(values: np.ndarray, bits: int, order: tuple[int, ...] | None = None) -> np.ndarray:
    """[R, C] small ints -> int32 [R, C * bits / 32]; nibble k of word c holds column c*p + order[k]."""
    per = 32 // bits
    order = order or tuple(range(per))
    words = np.zeros((values.shape[0], values.shape[1] // per), dtype=np.int64)
    for k in range(per):
        words |= values[:, order[k] :: per].astype(np.int64) << (bits * k)
    return _to_int32(words)


def v2_to_v1(qzeros: np.ndarray, bits: int) -> np.ndarray:
    """gptqmodel's v2 -> v1 conversion: subtract 1 from every field by one subtraction per int32 word (a zero of 0
    borrows from the next field)."""
    ones = int("".join(["0" * (bits - 1) + "1"] * (32 // bits)), 2)
    return _to_int32(qzeros.astype(np.int64) - ones)


def _quantized_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layers." in name
    }


def _tokenizer(folder: pathlib.Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocabulary = {"[UNK]": 0, "[BOS]": 1, "[EOS]": 2} | {f"w{i}": i for i in range(3, VOCAB_SIZE)}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]", pad_token="[UNK]"
    ).save_pretrained(folder)


def make_checkpoint(case: Case, folder: pathlib.Path, seed: int = 0) -> tuple[dict, torch.nn.Module]:
    """Writes the checkpoint; returns per Linear the codes, zeros, scales, g_idx and the dequantized float16
    weight, and the PyTorch model holding the dequantized weights."""
    rng = np.random.default_rng(seed)
    model = build_tiny_model(case.arch)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {}
    top = 2**case.bits
    for name, linear in _quantized_linears(model).items():
        out, columns = linear.weight.shape
        group = columns if case.group_size == -1 else case.group_size
        groups = columns // group
        codes = rng.integers(0, top, (out, columns))
        zeros = np.full((groups, out), top // 2) if case.sym else rng.integers(0, top, (groups, out))
        scales = rng.uniform(1e-3, 2e-2, (groups, out)).astype(np.float16)
        if case.desc_act:
            order = rng.permutation(columns)
            g_idx = np.empty(columns, dtype=np.int64)
            g_idx[order] = np.arange(columns) // group  # channel order[j] belongs to group j // group
        else:
            g_idx = np.arange(columns) // group
        # the exact value: (a 9-bit integer) x (a float16) fits in float32's mantissa
        weight = (codes - zeros[g_idx].T).astype(np.float32) * scales[g_idx].T.astype(np.float32)
        expected[name] = {"codes": codes, "zeros": zeros, "scales": scales, "g_idx": g_idx, "weight": weight}
        del state[f"{name}.weight"]
        if case.method == "gptq":
            qzeros = pack_along_columns(zeros, case.bits)
            if case.checkpoint_format == "gptq":
                qzeros = v2_to_v1(qzeros, case.bits)
            state[f"{name}.qweight"] = torch.from_numpy(pack_along_rows(codes.T, case.bits))
            state[f"{name}.qzeros"] = torch.from_numpy(qzeros)
            state[f"{name}.g_idx"] = torch.from_numpy(g_idx.astype(np.int32))
        else:
            state[f"{name}.qweight"] = torch.from_numpy(pack_along_columns(codes.T, 4, AWQ_ORDER))
            state[f"{name}.qzeros"] = torch.from_numpy(pack_along_columns(zeros, 4, AWQ_ORDER))
        state[f"{name}.scales"] = torch.from_numpy(scales)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors", metadata={"format": "pt"})
    config = model.config.to_dict()
    if case.method == "gptq":
        config["quantization_config"] = {
            "quant_method": "gptq",
            "bits": case.bits,
            "group_size": case.group_size,
            "desc_act": case.desc_act,
            "sym": case.sym,
            "damp_percent": 0.01,
            "true_sequential": True,
            "static_groups": False,
            "checkpoint_format": case.checkpoint_format,
        }
    else:
        config["quantization_config"] = {
            "quant_method": "awq",
            "bits": 4,
            "group_size": case.group_size,
            "zero_point": True,
            "version": "gemm",
        }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    _tokenizer(folder)
    return expected, model.eval()
