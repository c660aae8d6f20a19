"""Tiny random models of every model type optimum-intel exports for text generation, found at run time.

``text_generation_types()`` asks optimum's TasksManager which model types the OpenVINO exporter supports for
``text-generation-with-past``; ``tiny_config(model_type)`` takes transformers' default config of that type and
shrinks every size it recognises (widths, depths, heads, experts, vocabulary), so that a type optimum-intel adds
later is covered without a code change. Types whose config transformers does not ship (remote code) or that do
not build or export at these sizes are reported with the reason, not hidden.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

HIDDEN, FFN, VOCAB, LAYERS, HEADS, KV_HEADS, EXPERTS, TOP_K, POSITIONS = 128, 256, 512, 2, 4, 2, 4, 2, 128
GROUPS = [  # (size, the config keys that hold it)
    (HIDDEN, ("hidden_size", "n_embd", "d_model", "word_embed_proj_dim", "embed_dim", "model_dim")),
    (
        FFN,
        (
            "intermediate_size",
            "ffn_dim",
            "n_inner",
            "ffn_hidden_size",
            "decoder_ffn_dim",
            "encoder_ffn_dim",
            "ffn_hidden_dim",
            "block_ff_dim",
            "d_ff",
        ),
    ),
    (FFN // 2, ("moe_intermediate_size", "shared_expert_intermediate_size", "expert_intermediate_size")),
    (VOCAB, ("vocab_size", "padded_vocab_size")),
    (LAYERS, ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "decoder_layers", "encoder_layers")),
    (
        HEADS,
        ("num_attention_heads", "n_head", "num_heads", "decoder_attention_heads", "encoder_attention_heads", "n_heads"),
    ),
    (KV_HEADS, ("num_key_value_heads", "num_kv_heads", "multi_query_group_num", "n_head_kv")),
    (EXPERTS, ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")),
    (TOP_K, ("num_experts_per_tok", "moe_top_k", "top_k")),
    (POSITIONS, ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")),
    (HIDDEN // HEADS, ("head_dim", "qk_nope_head_dim", "v_head_dim", "kv_channels")),
    (HIDDEN // HEADS // 2, ("rotary_dim",)),
    (8, ("mamba_n_heads",)),  # mamba_n_heads * mamba_d_head = mamba_expand * hidden_size
    (HIDDEN * 2 // 8, ("mamba_d_head",)),
    (16, ("mamba_d_state",)),
]
SET_WHEN_NONE = ("head_dim",)  # read by optimum-intel's export config even where the model derives it
SET_WHEN_ABSENT = {"head_dim": HIDDEN // HEADS}  # likewise, for configs that derive it without the field
SIZES = {key: size for size, keys in GROUPS for key in keys}
SPECIAL_TOKENS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2}


def text_generation_types() -> list[str]:
    """The model types optimum-intel exports for text generation with a KV cache, sorted."""
    import optimum.exporters.openvino  # noqa: F401  (registers the OpenVINO export configs)
    from optimum.exporters.tasks import TasksManager

    return sorted(TasksManager.get_supported_model_type_for_task("text-generation-with-past", exporter="openvino"))


def tiny_config(model_type: str):
    """transformers' default config of ``model_type`` with every recognised size made tiny."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(model_type)
    values = config.to_dict()
    old_layers = next(
        (values[k] for k, size in SIZES.items() if size == LAYERS and isinstance(values.get(k), int) and "layer" in k),
        None,
    )
    for key, size in SIZES.items():
        value = values.get(key, 0)
        if (isinstance(value, int) and not isinstance(value, bool) and key in values) or (
            value is None and key in SET_WHEN_NONE
        ):
            setattr(config, key, size)
    for key, size in SET_WHEN_ABSENT.items():
        if key not in values and not isinstance(getattr(type(config), key, None), property):  # not derived
            setattr(config, key, size)
    for key, value in values.items():  # per-layer lists (layer types, sliding windows) follow the new depth
        if isinstance(value, list) and old_layers and len(value) == old_layers and old_layers != LAYERS:
            setattr(config, key, value[:LAYERS])
    for key, token in SPECIAL_TOKENS.items():
        if isinstance(values.get(key), int):
            setattr(config, key, token)
    for key in ("tie_word_embeddings",):
        if key in values:
            setattr(config, key, False)
    return config


def checkpoint_of(model_type: str, folder: pathlib.Path) -> pathlib.Path:
    """Saves the tiny ``model_type`` (seeded, float32) as a Hugging Face checkpoint in ``folder`` once; returns it."""
    import torch
    from transformers import AutoModelForCausalLM

    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(tiny_config(model_type), dtype=torch.float32).eval()
        with tempfile.TemporaryDirectory(prefix=f"tiny_{model_type}_", dir=folder.parent) as tmp:
            model.save_pretrained(tmp)
            pathlib.Path(tmp).rename(folder)
            pathlib.Path(tmp).mkdir()  # for the context manager to remove
    return folder


def export_type(model_type: str, out_dir: pathlib.Path) -> pathlib.Path:
    """Exports the tiny ``model_type`` (its checkpoint is kept beside ``out_dir``, see :func:`checkpoint_of`) with
    optimum-intel without compression; returns the IR's ``.xml``. Raises what building or exporting raised."""
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    xml = out_dir / "openvino_model.xml"
    if xml.is_file():
        return xml
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoint_of(model_type, out_dir.parent / f"{out_dir.name}-checkpoint")
    try:
        main_export(
            str(checkpoint),
            output=out_dir,
            task="text-generation-with-past",
            ov_config=OVConfig(dtype="fp32"),
            library_name="transformers",
            local_files_only=True,
        )
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    if not xml.is_file():
        raise RuntimeError(f"the export of {model_type!r} wrote no {xml.name}")
    return xml


def inputs_for(model, length: int, rng) -> dict:
    """One calibration item for the exported ``model``: token ids, a full attention mask, positions (2-D, or the
    3-D rope positions some types take), a zero beam index; zeros for any other input."""
    import numpy as np

    item = {}
    for parameter in model.get_parameters():
        name = parameter.output(0).get_any_name()
        rank = parameter.get_partial_shape().rank.get_length()
        dtype = parameter.get_element_type().to_dtype()
        if name == "input_ids":
            item[name] = rng.integers(3, VOCAB, size=(1, length)).astype(dtype)
        elif name == "position_ids":
            positions = np.arange(length, dtype=dtype)[None]
            item[name] = np.broadcast_to(positions, (3, 1, length)).copy() if rank == 3 else positions
        elif name == "beam_idx":
            item[name] = np.zeros(1, dtype=dtype)
        elif rank == 2:  # attention_mask and other per-token inputs
            item[name] = np.ones((1, length), dtype=dtype) if name == "attention_mask" else np.zeros((1, length), dtype)
        else:
            shape = [1 if d.is_dynamic else d.get_length() for d in parameter.get_partial_shape()]
            item[name] = np.zeros(shape, dtype=dtype)
    return item
