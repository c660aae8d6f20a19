"""``optimum-wc export openvino -m MODEL [options] OUTPUT``: optimum-cli's command line, for the tasks of
:data:`MODEL_CLASSES` (causal LMs, feature extractors, seq2seq, speech-to-text and vision-language models, diffusion
pipelines).

The export is optimum-intel's own (``main_export``, with the options optimum-cli hands it: task, library, cache
folder, pad token, variant, stateful, tokenizer conversion, model kwargs); the weights are then compressed by
optimum-wc with the config optimum-cli would build from the same flags (optimum-intel's per-model defaults
included), and the folder is written atomically. Options outside weight compression (``--quant-mode``,
``--smooth-quant-alpha``) and the other tasks are refused before any export.
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import tempfile
import time
from typing import Any

from optimum_wc._utils.atomic import atomic_directory, check_output_folder
from optimum_wc.cli.export import add_compression_flags, config_from_args, run_options
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError
from optimum_wc.pipeline.calibration import check_hub_dataset

logger = logging.getLogger("optimum_wc.cli")

# the tasks exported here, and the optimum_wc class that compresses and saves each
MODEL_CLASSES = {
    "text-generation": "OVModelForCausalLM",
    "text-generation-with-past": "OVModelForCausalLM",
    "feature-extraction": "OVModelForFeatureExtraction",
    "text2text-generation": "OVModelForSeq2SeqLM",
    "text2text-generation-with-past": "OVModelForSeq2SeqLM",
    "image-text-to-text": "OVModelForVisualCausalLM",
    "automatic-speech-recognition": "OVModelForSpeechSeq2Seq",
    "automatic-speech-recognition-with-past": "OVModelForSpeechSeq2Seq",
    "text-to-image": "OVDiffusionPipeline",  # the pipeline class the export's model_index.json names
}
EXPORTED_LIBRARIES = ("transformers", "diffusers")
LIBRARIES = ("transformers", "diffusers", "timm", "sentence_transformers", "open_clip", "kokoro")  # optimum-cli's
ACTIVATION_FLAGS = {"quant_mode": "--quant-mode", "smooth_quant_alpha": "--smooth-quant-alpha"}


def build_openvino_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimum-wc export openvino",
        description="Export a causal LM, a feature extractor, a seq2seq, speech-to-text or vision-language model or "
        "a diffusion pipeline to OpenVINO IR with optimum-intel's exporter and "
        "compress its weights with "
        "optimum-wc: the options of `optimum-cli export openvino` that concern export and weight compression.",
    )
    parser.add_argument("-m", "--model", required=True, help="Model id on the Hub or path on disk.")
    parser.add_argument("output", type=pathlib.Path, help="Folder to write; must be empty unless --overwrite.")
    parser.add_argument("--task", default="auto", help=f"One of {', '.join(MODEL_CLASSES)} (default: auto).")
    parser.add_argument("--framework", choices=["pt"], default="pt", help="The framework of the model (pt only).")
    parser.add_argument("--trust-remote-code", action="store_true", help="Run the model repository's own code.")
    parser.add_argument(
        "--library", choices=LIBRARIES, default=None, help="transformers or diffusers (the others: not yet)."
    )
    parser.add_argument("--cache_dir", default=None, help="Where downloaded models are cached.")
    parser.add_argument("--pad-token-id", type=int, default=None, help="For models whose config has none.")
    parser.add_argument("--variant", default=None, help="The checkpoint variant to load (e.g. fp16).")
    parser.add_argument("--disable-stateful", action="store_true", help="Keep the KV cache as model inputs/outputs.")
    parser.add_argument("--disable-convert-tokenizer", action="store_true", help="Write no OpenVINO tokenizer models.")
    parser.add_argument("--model-kwargs", type=json.loads, default=None, help="JSON passed to the model's export.")
    parser.add_argument("--overwrite", action="store_true", help="Replace a non-empty OUTPUT.")
    parser.add_argument("--quant-mode", default=None, help=argparse.SUPPRESS)  # refused: activations
    parser.add_argument("--smooth-quant-alpha", type=float, default=None, help=argparse.SUPPRESS)
    add_compression_flags(parser)
    return parser


def check_openvino_args(args: argparse.Namespace) -> None:
    """Refuses, before any export, what optimum-cli does beyond weight compression of the tasks here."""
    given = [flag for dest, flag in ACTIVATION_FLAGS.items() if getattr(args, dest) is not None]
    if given:
        raise NotYetSupportedError(
            f"{', '.join(given)}: optimum-cli's quantization of activations is not weight compression, which is "
            "what optimum-wc does; use --weight-format."
        )
    if args.library not in (None, *EXPORTED_LIBRARIES):
        raise NotYetSupportedError(
            f"--library {args.library}: optimum-wc exports {' and '.join(EXPORTED_LIBRARIES)} models only."
        )
    if args.task != "auto" and args.task not in MODEL_CLASSES:
        raise NotYetSupportedError(f"--task {args.task}: optimum-wc exports {', '.join(MODEL_CLASSES)} only.")


def run_export_openvino(args: argparse.Namespace) -> pathlib.Path:
    check_openvino_args(args)
    config = config_from_args(args)  # bad flags refused before the export
    output = args.output
    check_output_folder(output)
    if output.is_dir() and any(output.iterdir()) and not args.overwrite:
        raise InvalidArgumentError(f"OUTPUT {output} is not empty; pass --overwrite to replace it.")
    task = _inferred_task(args) if args.task == "auto" else args.task
    if config is not None:
        check_hub_dataset(config.to_compress_kwargs()["dataset"])  # offline: refused before the export
        model_class(task)._check_config(config)  # the model class's refusals, before the export too
    start = time.perf_counter()
    if args.weight_format in ("fp16", "fp32"):  # nothing to compress: optimum-intel's export is the output
        with atomic_directory(output) as staging:
            _export(args, staging, None)
        logger.info("Wrote %s in %.1f s.", output, time.perf_counter() - start)
        return output
    causal = task.startswith("text-generation")
    with tempfile.TemporaryDirectory(prefix="optimum-wc-export-") as staging:
        _export(args, pathlib.Path(staging), config)
        model = model_class(task).from_pretrained(
            staging,
            quantization_config=config,
            compile=False,
            trust_remote_code=args.trust_remote_code,
            **({"use_cache": task.endswith("-with-past")} if causal else {}),
            **(args.model_kwargs or {} if config is not None else {}),  # optimum-cli loads with them to compress
            **run_options(args),
        )
        if config is not None and causal:
            _save_as_optimum_cli(model)
        model.save_pretrained(output, convert_tokenizer=not args.disable_convert_tokenizer)
    logger.info("Wrote %s in %.1f s.", output, time.perf_counter() - start)
    return output


def model_class(task: str) -> type:
    """The optimum_wc model class of ``task`` (imported on first use: it brings optimum-intel and torch)."""
    import optimum_wc

    return getattr(optimum_wc, MODEL_CLASSES[task])


def _save_as_optimum_cli(model: Any) -> None:
    """optimum-cli saves a model it compressed as it is in memory, where a stateless model's KV-cache inputs have
    the device's inference precision (bf16 on CPUs that have it); ``save_pretrained`` would turn them back to f32.
    Marking them f32 keeps them as they are, so that the same IR as optimum-cli's is written."""
    import openvino as ov

    model._pkv_precision = ov.Type.f32


def _inferred_task(args: argparse.Namespace) -> str:
    """The task optimum-intel infers for ``--task auto``, refused unless it is one of :data:`MODEL_CLASSES`."""
    from optimum.exporters.openvino.__main__ import infer_task

    try:
        task = infer_task(
            "auto",
            args.model,
            cache_dir=args.cache_dir,
            library_name=args.library,
            trust_remote_code=args.trust_remote_code,
        )
    except (RuntimeError, KeyError) as exc:
        raise InvalidArgumentError(f"--task could not be inferred ({exc}); pass --task text-generation-with-past.")
    if task not in MODEL_CLASSES:
        raise NotYetSupportedError(f"{args.model} is a {task} model; optimum-wc exports {', '.join(MODEL_CLASSES)}.")
    return task


def _export(args: argparse.Namespace, folder: pathlib.Path, config: Any) -> None:
    """optimum-intel's export into ``folder``, with the OVConfig optimum-cli gives it for the same flags (it sets
    the runtime options of a compressed model), and its own size-based INT8 compression left to optimum-wc."""
    from optimum.exporters.openvino import __main__ as exporter
    from optimum.intel.openvino.configuration import OVConfig

    from optimum_wc.hf.exporting import size_based_compression_off

    ov_config = None
    if args.weight_format in ("fp16", "fp32"):
        ov_config = OVConfig(dtype=args.weight_format)
    elif config is not None:
        ov_config = OVConfig(quantization_config={"bits": 8 if config.bits == 8 else 4, "weight_only": True})
    with size_based_compression_off():  # our model class applies it, with ours
        exporter.main_export(
            model_name_or_path=args.model,
            output=folder,
            task=args.task,
            framework=args.framework,
            cache_dir=args.cache_dir or exporter.HUGGINGFACE_HUB_CACHE,
            trust_remote_code=args.trust_remote_code,
            pad_token_id=args.pad_token_id,
            ov_config=ov_config,
            stateful=not args.disable_stateful,
            convert_tokenizer=not args.disable_convert_tokenizer,
            library_name=args.library,
            variant=args.variant,
            model_kwargs=args.model_kwargs,
        )
