"""The configurations benchmarks/accuracy.py measures, its targets, and where it reads and writes.

Each configuration: a label, the ``compress_weights`` keyword arguments both libraries get (mode as a value
string; ``gptq_*`` and ``adaptive_across_blocks`` become advanced parameters in the worker) and the minimum
speed-up over nncf it must reach, if any.
"""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "tiny-llama-pydoc"
CALIBRATION = SHARED / "data" / "pydoc" / "calibration.txt"
VALID = SHARED / "data" / "pydoc" / "valid.txt"
WORK = ROOT / "benchmarks" / "work" / "accuracy"
FP32_DIR = WORK / "fp32"
CALIBRATION_PICKLE = WORK / "calibration_inputs.pkl"
MODEL_XML = "openvino_model.xml"
RESULT_TAG = "ACCURACY_RESULT "
LIBRARIES = ("optimum_wc", "nncf")
CALIBRATION_LINES, WINDOW_LENGTH, NUM_WINDOWS = 128, 256, 100
EVAL_OV_CONFIG = {
    "INFERENCE_PRECISION_HINT": "f32",
    "KV_CACHE_PRECISION": "f32",
    "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
}
WORKER_TIMEOUT_S = 900  # nncf takes ~15 s per data-aware run here; a hung worker must not stall the run
MB = 1024**2

DATA_AWARE = {"group_size": 128, "ratio": 1.0, "subset_size": 128}
# name -> (label, compress_weights keyword arguments (mode as a value string), minimum speed-up nncf/ours or None)
CONFIGS: dict[str, tuple[str, dict, float | None]] = {
    "int8_asym": ("INT8_ASYM", {"mode": "int8_asym"}, None),
    "int4_sym_g128": ("INT4_SYM g128", {"mode": "int4_sym", "group_size": 128}, None),
    "int4_asym_g128": ("INT4_ASYM g128", {"mode": "int4_asym", "group_size": 128}, None),
    "int4_sym_pc": ("INT4_SYM per-channel", {"mode": "int4_sym", "group_size": -1}, None),
    "int4_sym_g128_all": (
        "INT4_SYM g128 all_layers",
        {"mode": "int4_sym", "group_size": 128, "all_layers": True},
        None,
    ),
    "int4_asym_g64_r0.8": ("INT4_ASYM g64 ratio 0.8", {"mode": "int4_asym", "group_size": 64, "ratio": 0.8}, None),
    "nf4": ("NF4 (g128 default)", {"mode": "nf4"}, None),
    "fp8_e4m3": ("FP8_E4M3 g128 (backup FP8_E4M3)", {"mode": "fp8_e4m3"}, None),
    "mxfp8_e4m3": ("MXFP8_E4M3 (g32, backup MXFP8_E4M3)", {"mode": "mxfp8_e4m3"}, None),
    "fp4": ("FP4 g128 (backup FP8_E4M3)", {"mode": "fp4"}, None),
    "mxfp4": ("MXFP4 (g32, backup MXFP8_E4M3)", {"mode": "mxfp4"}, None),
    "nvfp4": ("NVFP4 (g16)", {"mode": "nvfp4"}, None),
    "cb4": ("CB4 per-channel", {"mode": "cb4"}, None),
    "adaptive_codebook": (
        "ADAPTIVE_CODEBOOK per-channel (FP8 codebook per layer)",
        {"mode": "adaptive_codebook", "subset_size": 128},
        None,
    ),
    "adaptive_codebook_across": (
        "ADAPTIVE_CODEBOOK per-channel, across blocks",
        {"mode": "adaptive_codebook", "subset_size": 128, "adaptive_across_blocks": True},
        None,
    ),
    "int3_sym_g128": ("INT3_SYM g128", {"mode": "int3_sym"}, None),
    "int2_sym_g128": ("INT2_SYM g128", {"mode": "int2_sym"}, None),
    "awq": ("INT4_SYM g128 AWQ", {"mode": "int4_sym", **DATA_AWARE, "awq": True}, None),
    "awq_se": ("INT4_SYM g128 AWQ+SE", {"mode": "int4_sym", **DATA_AWARE, "awq": True, "scale_estimation": True}, 3.0),
    "gptq": ("INT4_SYM g128 GPTQ", {"mode": "int4_sym", **DATA_AWARE, "gptq": True}, 5.0),
    "lora": ("INT4_SYM g128 LoRA correction", {"mode": "int4_sym", **DATA_AWARE, "lora_correction": True}, None),
    "awq_se_lora": (
        "INT4_SYM g128 AWQ+SE+LoRA correction",
        {"mode": "int4_sym", **DATA_AWARE, "awq": True, "scale_estimation": True, "lora_correction": True},
        None,
    ),
    "int2_sym_lora": (
        "INT2_SYM g128 LoRA correction",
        {"mode": "int2_sym", **DATA_AWARE, "lora_correction": True},
        None,
    ),
    "awq_gptq_se": (
        "INT4_SYM g128 AWQ+GPTQ+SE",
        {"mode": "int4_sym", **DATA_AWARE, "awq": True, "gptq": True, "scale_estimation": True},
        5.0,
    ),
    # optimum-wc's opt-in one-pass GPTQ (every layer's inputs from one pass of the unquantized model, Hessians
    # summed in float64) against nncf's GPTQ: not identical, held to the same targets
    "gptq_one_pass": (
        "INT4_SYM g128 GPTQ (optimum-wc: one_pass)",
        {"mode": "int4_sym", **DATA_AWARE, "gptq": True, "gptq_one_pass": True},
        5.0,
    ),
    "awq_gptq_se_one_pass": (
        "INT4_SYM g128 AWQ+GPTQ+SE (optimum-wc: one_pass)",
        {"mode": "int4_sym", **DATA_AWARE, "awq": True, "gptq": True, "scale_estimation": True, "gptq_one_pass": True},
        5.0,
    ),
    # optimum-wc's own option (nncf has no act order): no side-by-side, checked against the data-free baseline
    "gptq_act_order": (
        "INT4_SYM g128 GPTQ act_order (optimum-wc only)",
        {"mode": "int4_sym", **DATA_AWARE, "gptq": True, "gptq_act_order": True},
        None,
    ),
    # SpQR (optimum-wc only): the authors' recipe (the defaults); groups of 32 with integer zero points (the dense
    # layout OpenVINO runs about as fast as INT4) with ~0.1% outliers (the "fast" rows, 4.4 and 3.5 bits per
    # parameter) and with ~1% (4.6 bits); 3-bit in groups of 16 (3.9 bits). Damping 0.1 suits this model's short
    # calibration lines better than the recipe's 1.0. benchmarks/spqr_runtime.py measures their latency.
    "spqr_recipe": ("SpQR 4-bit g16, authors' recipe (optimum-wc only)", {"mode": "spqr", "subset_size": 128}, None),
    "spqr_4bit": (
        "SpQR 4-bit g32 integer zero points, damping 0.1, threshold 0.1 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "spqr": {"group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.1},
        },
        None,
    ),
    "spqr_4bit_fast": (
        "SpQR 4-bit g32 integer zero points, damping 0.1, threshold 0.25 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "spqr": {"group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.25},
        },
        None,
    ),
    "spqr_3bit_fast": (
        "SpQR 3-bit g32 integer zero points, damping 0.1, threshold 0.5 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "spqr": {"bits": 3, "group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.5},
        },
        None,
    ),
    "spqr_3bit": (
        "SpQR 3-bit g16, damping 0.1, threshold 0.35 (optimum-wc only)",
        {"mode": "spqr", "subset_size": 128, "spqr": {"bits": 3, "percdamp": 0.1, "outlier_threshold": 0.35}},
        None,
    ),
    # What the backup layers alone cost: every 4-bit row keeps the embeddings and lm_head in INT8_ASYM (the
    # default backup mode); here they are the only compressed weights. And the 4.4-bit SpQR row with them left in
    # FP32 (backup_mode "none"), the perplexity of SpQR's own layers.
    "int8_embeddings_head": (
        "INT8_ASYM on the embeddings and lm_head only (the backup layers)",
        {"mode": "int8_asym", "ignored_patterns": [".*layers.*"]},
        None,
    ),
    "spqr_4bit_fast_backup_none": (
        "SpQR 4-bit g32 as the threshold-0.25 row, embeddings and lm_head FP32 (optimum-wc only)",
        {
            "mode": "spqr",
            "subset_size": 128,
            "backup_mode": "none",
            "spqr": {"group_size": 32, "round_zero": True, "percdamp": 0.1, "outlier_threshold": 0.25},
        },
        None,
    ),
}
OURS_ONLY = {
    "gptq_act_order",
    "spqr_recipe",
    "spqr_4bit",
    "spqr_4bit_fast",
    "spqr_3bit_fast",
    "spqr_3bit",
    "spqr_4bit_fast_backup_none",
}
SPQR_BASELINE = "int4_asym_g128"  # SpQR targets: KL relative to data-free INT4_ASYM g128
SPQR_TARGETS = ((4.0, 1.0), (4.7, 1 / 3))  # (max bits per parameter, KL / baseline KL limit): the first that fits
DATA_FREE_BASELINE = "int4_sym_g128"
BEST_DATA_AWARE_TARGET = 0.35  # best data-aware INT4_SYM g128 KL / data-free INT4_SYM g128 KL
KL_TARGET, PERPLEXITY_TARGET = 1.05, 1.001
