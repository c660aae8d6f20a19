"""Tiny random decoder-only causal-LM models exported to OpenVINO IR for tests.

Models are built from ``transformers`` configs in code (no Hugging Face Hub
access), initialised with a fixed torch seed in float32 and exported with
optimum-intel with weight compression switched off, so that every weight
constant in the IR is a plain ``f32`` Constant (no ``Convert`` after it).

All sizes are chosen so that the input-channel count of every weight MatMul
(128 or 256) is divisible by 128, i.e. group sizes 32/64/128 always divide.

Plain helper module: it does not depend on pytest. When comparing IR outputs with
torch, compile with ``{"INFERENCE_PRECISION_HINT": "f32"}``: the CPU plugin defaults
to bf16 on CPUs that support it (max logit diff ~5e-3 instead of ~5e-7).
"""

import logging
import pathlib
import shutil
import tempfile
import time
from typing import Callable, Dict

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    LlamaConfig,
    OPTConfig,
    PretrainedConfig,
    Qwen2Config,
)

logger = logging.getLogger(__name__)

HIDDEN_SIZE = 128
FFN_SIZE = 256
NUM_LAYERS = 2
VOCAB_SIZE = 512
MAX_POSITIONS = 128
SEED = 0
MODEL_XML = "openvino_model.xml"

# Token ids must lie inside the tiny vocabulary (GPT-2 defaults to 50256).
_SPECIAL_TOKENS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


def _llama_config() -> PretrainedConfig:
    """Llama with grouped-query attention (4 query heads, 2 key/value heads)."""
    return LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=HIDDEN_SIZE,
        intermediate_size=FFN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        **_SPECIAL_TOKENS,
    )


def _gpt2_config() -> PretrainedConfig:
    """GPT-2 (Conv1D layers; ``n_inner`` sets the MLP width). Embeddings are tied."""
    return GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_embd=HIDDEN_SIZE,
        n_inner=FFN_SIZE,
        n_layer=NUM_LAYERS,
        n_head=4,
        n_positions=MAX_POSITIONS,
        **_SPECIAL_TOKENS,
    )


def _opt_config() -> PretrainedConfig:
    """OPT; ``word_embed_proj_dim == hidden_size`` so no project_in/out layers."""
    return OPTConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=HIDDEN_SIZE,
        ffn_dim=FFN_SIZE,
        word_embed_proj_dim=HIDDEN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        max_position_embeddings=MAX_POSITIONS,
        **_SPECIAL_TOKENS,
    )


def _qwen2_config() -> PretrainedConfig:
    """Qwen2 with tied input embedding / lm_head (and q/k/v biases)."""
    return Qwen2Config(
        vocab_size=VOCAB_SIZE,
        hidden_size=HIDDEN_SIZE,
        intermediate_size=FFN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        **_SPECIAL_TOKENS,
    )


def _llama_wide_config() -> PretrainedConfig:
    """Llama with the embedded model's widths (256 hidden, 768 MLP): matrices large enough that OpenBLAS splits
    their products between threads, where the sums of some kernels depend on the thread count."""
    return LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        **_SPECIAL_TOKENS,
    )


ARCHITECTURES: Dict[str, Callable[[], PretrainedConfig]] = {
    "llama": _llama_config,
    "gpt2": _gpt2_config,
    "opt": _opt_config,
    "qwen2": _qwen2_config,
}
# Exported on request only (``tiny_ir("llama-wide")``), not part of the ``arch`` fixture's sweep.
EXTRA_ARCHITECTURES: Dict[str, Callable[[], PretrainedConfig]] = {"llama-wide": _llama_wide_config}


def build_tiny_model(arch: str) -> torch.nn.Module:
    """Build a deterministic (seeded) float32 random model for ``arch`` in eval mode."""
    configs = {**ARCHITECTURES, **EXTRA_ARCHITECTURES}
    if arch not in configs:
        raise KeyError(f"Unknown tiny architecture {arch!r}; known: {sorted(configs)}")
    config = configs[arch]()
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


BERT_WORDS = ["the", "a", "model", "weights", "compress", "open", "vino", "text", "embedding", "small", "is", "of"]


def _save_word_piece_tokenizer(folder: pathlib.Path) -> int:
    """A word-piece tokenizer over :data:`BERT_WORDS` and the letters, saved in ``folder``; returns its size."""
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *BERT_WORDS, *"abcdefghijklmnopqrstuvwxyz"]
    (folder / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return len(vocab)


def save_tiny_bert(folder: pathlib.Path) -> pathlib.Path:
    """A seeded random BERT encoder (hidden 128, so that group 128 divides every layer) with a word-piece tokenizer,
    saved as a checkpoint in ``folder``, for feature extraction."""
    from transformers import BertConfig, BertModel

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=_save_word_piece_tokenizer(folder),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=64,
    )
    torch.manual_seed(SEED)
    BertModel(config).eval().save_pretrained(folder)
    return folder


def save_tiny_t5(folder: pathlib.Path) -> pathlib.Path:
    """A seeded random T5 encoder-decoder (d_model 128, feed-forward 256) with the word-piece tokenizer ([PAD] starts
    decoding, [SEP] ends it), saved as a checkpoint in ``folder``, for text2text generation."""
    from transformers import T5Config, T5ForConditionalGeneration

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = T5Config(
        vocab_size=_save_word_piece_tokenizer(folder),
        d_model=128,
        d_kv=64,
        d_ff=256,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=3,
        decoder_start_token_id=0,
    )
    torch.manual_seed(SEED)
    T5ForConditionalGeneration(config).eval().save_pretrained(folder)
    return folder


def save_tiny_whisper(folder: pathlib.Path) -> pathlib.Path:
    """A seeded random Whisper (d_model 64; 80 mel bins and 1500 source positions, the smallest that export) with
    its feature extractor, saved as a checkpoint in ``folder``; no tokenizer (the tests compare token ids)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = WhisperConfig(
        vocab_size=VOCAB_SIZE,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    torch.manual_seed(SEED)
    WhisperForConditionalGeneration(config).eval().save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


def save_tiny_llava(folder: pathlib.Path, dtype: torch.dtype = torch.float32) -> pathlib.Path:
    """A seeded random LLaVA (a CLIP vision tower on 32x32 images in 8x8 patches, a Llama of hidden 128) with the
    word-piece tokenizer plus an ``<image>`` token and a processor, saved as a ``dtype`` checkpoint in ``folder``."""
    from transformers import (
        BertTokenizerFast,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _save_word_piece_tokenizer(folder)
    tokenizer = BertTokenizerFast.from_pretrained(folder)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = CLIPVisionConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=FFN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
    )
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token, image_seq_length=16)
    torch.manual_seed(SEED)
    LlavaForConditionalGeneration(config).eval().to(dtype).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
    )
    processor.save_pretrained(folder)
    return folder


def export_uncompressed(intel_class: type, checkpoint: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """``checkpoint`` exported by optimum-intel's ``intel_class`` (an ``OVModelFor...``) without compression and
    saved in ``folder``, with a link ``folder/checkpoint`` back to the checkpoint (its processor and tokenizer)."""
    model = intel_class.from_pretrained(checkpoint, export=True, load_in_8bit=False, compile=False)
    model.save_pretrained(folder)
    (folder / "checkpoint").symlink_to(checkpoint)
    return folder


def export_tiny_model(arch: str, out_dir: pathlib.Path) -> pathlib.Path:
    """Export the tiny ``arch`` model to OpenVINO IR in ``out_dir`` without weight compression.

    The model is saved to a temporary folder with ``save_pretrained`` and converted
    with :func:`optimum.exporters.openvino.main_export` for the
    ``text-generation-with-past`` task (stateful IR). ``OVConfig(dtype="fp32")`` keeps
    the weights in f32 and, because it is given explicitly, also disables the
    size-based automatic int8 compression of optimum-intel. No tokenizer is needed;
    note that transformers 5 makes the exporter write an *empty* placeholder tokenizer
    (tokenizer.json / tokenizer_config.json) into ``out_dir`` - do not rely on it.

    Returns the path to ``openvino_model.xml``.
    """
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    out_dir = pathlib.Path(out_dir)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"tiny_{arch}_") as tmp:
        model = build_tiny_model(arch)
        model.save_pretrained(tmp)
        del model
        main_export(
            tmp,
            output=out_dir,
            task="text-generation-with-past",
            ov_config=OVConfig(dtype="fp32"),
            library_name="transformers",
            local_files_only=True,
        )
    xml_path = out_dir / MODEL_XML
    if not xml_path.is_file():
        raise RuntimeError(f"Export of {arch!r} did not produce {xml_path}")
    logger.info("Exported tiny %s model to %s in %.1f s", arch, xml_path, time.perf_counter() - start)
    return xml_path


def export_cached(arch: str, cache_root: pathlib.Path) -> pathlib.Path:
    """Export ``arch`` into ``cache_root/arch`` once and reuse it on later calls.

    A folder without ``openvino_model.xml`` (e.g. from an interrupted export) is
    removed and exported again.
    """
    out_dir = pathlib.Path(cache_root) / arch
    xml_path = out_dir / MODEL_XML
    if xml_path.is_file() and xml_path.with_suffix(".bin").is_file():
        logger.debug("Reusing cached tiny %s model at %s", arch, xml_path)
        return xml_path
    if out_dir.exists():
        shutil.rmtree(out_dir)
    return export_tiny_model(arch, out_dir)
