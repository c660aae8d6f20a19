"""Import a GPTQ or AWQ checkpoint into OpenVINO IR without quantizing again, and without the quantization library.

1. Read the packed tensors (``*.safetensors`` or ``pytorch_model*.bin``) and unpack every quantized Linear.
2. Build a float "skeleton" of the same architecture (the config without its ``quantization_config``), holding the
   checkpoint's float tensors and the dequantized weights, and export it with optimum-intel: the IR's weight
   constants are named after the Hugging Face parameters (``self.<prefix>.weight``).
3. Replace each quantized Linear's float constant by our decompression subgraph built from the checkpoint's own
   codes, scales and zero points (plus a Gather of the activation when GPTQ's ``g_idx`` scatters the groups).
4. Record where the quantization came from (rt_info ``optimum_wc/imported``, per-weight records), which the saved
   model card shows.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import tempfile
from typing import Any, Callable

import numpy as np

import openvino as ov
from optimum_wc.algorithms.spqr_storage import index_storage
from optimum_wc.checkpoints.formats import READERS, PrequantizedLinear, QuantizationSpec
from optimum_wc.checkpoints.storage import ImportedWeight, to_imported
from optimum_wc.errors import InvalidArgumentError, UnsupportedModelError
from optimum_wc.kernels.packing import pack
from optimum_wc.openvino.activation_side import insert_permutation
from optimum_wc.openvino.decompression import build_decompression, needs_output_convert, replace_constant
from optimum_wc.openvino.graph import ModelGraph
from optimum_wc.openvino.weights import find_weight_targets
from optimum_wc.pipeline.rt_info import IMPORTED_KEY
from optimum_wc.version import __version__

logger = logging.getLogger(__name__)

COPIED_FILES = (
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
)


def prequantized_spec(folder: pathlib.Path) -> QuantizationSpec | None:
    """The spec of the checkpoint in ``folder`` when its ``config.json`` declares a GPTQ/AWQ quantization."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    quantization = json.loads(config_file.read_text()).get("quantization_config")
    if not isinstance(quantization, dict) or str(quantization.get("quant_method", "")).lower() not in READERS:
        return None
    return QuantizationSpec.from_config(quantization)


def load_tensors(folder: pathlib.Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint as numpy (bfloat16 becomes float32)."""
    import torch

    files = sorted(folder.glob("*.safetensors"))
    tensors: dict[str, Any] = {}
    if files:
        from safetensors.torch import load_file

        for file in files:
            tensors.update(load_file(file))
    else:
        for file in sorted(folder.glob("pytorch_model*.bin")):
            tensors.update(torch.load(file, map_location="cpu", weights_only=True))
    if not tensors:
        raise InvalidArgumentError(f"{folder} holds no *.safetensors or pytorch_model*.bin weights.")
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in tensors.items()}


def _skeleton(
    folder: pathlib.Path, tensors: dict[str, np.ndarray], linears: dict[str, PrequantizedLinear], work: pathlib.Path
) -> pathlib.Path:
    """Saves a float checkpoint of the same architecture: float tensors as they are, quantized ones dequantized."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    skeleton = AutoModelForCausalLM.from_config(config)
    packed = {f"{p}.{suffix}" for p in linears for suffix in ("qweight", "qzeros", "scales", "g_idx")}
    state = {
        k: torch.from_numpy(np.ascontiguousarray(v).astype(np.float32)) for k, v in tensors.items() if k not in packed
    }
    state.update(
        {f"{p}.weight": torch.from_numpy(linear.dequantize().astype(np.float32)) for p, linear in linears.items()}
    )
    expected = set(skeleton.state_dict())
    unexpected = sorted(set(state) - expected)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    missing = sorted(expected - set(state) - tied)
    if unexpected or missing:
        raise UnsupportedModelError(
            f"The checkpoint in {folder} does not match its architecture: unexpected {unexpected[:5]}, "
            f"missing {missing[:5]}."
        )
    skeleton.load_state_dict(state, strict=False)
    if tied:
        skeleton.tie_weights()
    target = work / "skeleton"
    skeleton.save_pretrained(target)
    for name in COPIED_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, target / name)
    return target


def replace_weights(model: ov.Model, weights: dict[str, ImportedWeight]) -> dict[str, dict]:
    """Puts the decompression subgraphs in place of the float constants named ``self.<prefix>.weight``."""
    graph = ModelGraph(model)
    targets = {t.constant_name: t for t in find_weight_targets(graph) if t.kind == "matmul"}
    records = {}
    for prefix, weight in weights.items():
        name = next((n for n in (f"self.{prefix}.weight", f"{prefix}.weight") if n in targets), None)
        if name is None:
            raise UnsupportedModelError(f"The exported IR has no MatMul weight for {prefix}; it cannot be imported.")
        target = targets[name]
        if target.shape != weight.stored.original_shape or target.reduction_axes != (1,):
            raise UnsupportedModelError(
                f"{name}: the IR holds a {target.shape} weight reduced on {target.reduction_axes}, "
                f"the checkpoint a {weight.stored.original_shape} one."
            )
        output_type = target.constant.get_output_element_type(0) if needs_output_convert(target.constant) else None
        replace_constant(target.constant, build_decompression(weight.stored, name, target.port, output_type))
        if weight.permutation is not None:
            permutation = pack(weight.permutation, index_storage(weight.permutation.size))
            insert_permutation(graph.by_name[target.op_name], target.port, permutation, name, "g_idx_permutation")
        records[name] = {
            "mode": weight.mode,
            "group_size": weight.group_size,
            "bits": int(weight.mode[3]),
            "shape": list(target.shape),
            "permuted": weight.permutation is not None,
        }
    return records


def import_checkpoint(
    folder: pathlib.Path, spec: QuantizationSpec, source: str, export: Callable[[pathlib.Path], Any]
) -> Any:
    """A model whose quantized Linears hold the checkpoint's codes, scales and zero points.

    ``export`` turns a float checkpoint folder into an uncompressed, uncompiled ``OVModelForCausalLM`` (the caller's
    ``from_pretrained``): the importer exports a float skeleton of the checkpoint with it, then swaps in the codes.
    """
    tensors = load_tensors(folder)
    prefixes = sorted(k[: -len(".qweight")] for k in tensors if k.endswith(".qweight"))
    if not prefixes:
        raise InvalidArgumentError(f"{folder} declares {spec.method} quantization but holds no *.qweight tensor.")
    linears = {p: READERS[spec.method](tensors, p, spec) for p in prefixes}
    weights = {p: to_imported(linear, p) for p, linear in linears.items()}
    logger.info("Importing %d %s Linears from %s", len(prefixes), spec.label, source)
    with tempfile.TemporaryDirectory(prefix="optimum-wc-import-") as work:
        skeleton = _skeleton(folder, tensors, linears, pathlib.Path(work))
        del tensors
        model = export(skeleton)
    records = replace_weights(model.model, weights)
    model.model.set_rt_info(__version__, ["optimum_wc", "version"])
    model.model.set_rt_info(json.dumps(records, sort_keys=True), ["optimum_wc", "weights"])
    for key, value in dict(spec.to_dict(), source=source).items():
        model.model.set_rt_info(str(value), [*IMPORTED_KEY, key])
    model.config._name_or_path = source
    model.request = None
    return model
