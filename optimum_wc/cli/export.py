"""``optimum-wc export MODEL OUTPUT_DIR``: the compression config the flags ask for (optimum-cli's rules, its
per-model defaults included), and the export: an IR folder compressed by the core alone, a checkpoint through
``OVModelForCausalLM``."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import pathlib
import time
from typing import Callable

from optimum_wc._utils.atomic import check_output_folder
from optimum_wc.config.options import OPTIONS, Flag
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError

logger = logging.getLogger("optimum_wc.cli")


def add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="Export a Transformers causal LM to OpenVINO IR and compress it (`export openvino -m MODEL ...`: "
        "optimum-cli's command line).",
    )
    export.add_argument("model", help="Hub model id or local folder (Transformers checkpoint or OpenVINO IR).")
    export.add_argument("output", type=pathlib.Path, help="Folder to write; must be empty unless --overwrite.")
    add_compression_flags(export)
    export.add_argument("--overwrite", action="store_true", help="Replace a non-empty OUTPUT_DIR.")
    export.add_argument("--trust-remote-code", action="store_true")


def add_compression_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of :data:`OPTIONS` (``--weight-format``, ``--sym``, ... and our own), SpQR's in a group."""
    spqr = parser.add_argument_group("SpQR (--weight-format spqr, needs --dataset; --group-size default 16)")
    for option in OPTIONS:
        for flag in option.flags:
            (spqr if flag.key.startswith("spqr.") else parser).add_argument(flag.name, **flag.arguments)


def _given(value: object, flag: Flag) -> bool:
    """A flag was passed: its value is not argparse's default (None, or False for a switch); 0 is a value, and so is
    the False of ``--no-...``."""
    return value is not None and not (value is False and flag.arguments.get("action") == "store_true")


def config_from_args(args: argparse.Namespace) -> WeightCompressionConfig | None:
    """The compression config the flags ask for (None for fp32/fp16), as optimum-cli builds it."""
    flags = [flag for option in OPTIONS if not option.run for flag in option.flags if flag.dest != "weight_format"]
    given = [flag for flag in flags if _given(getattr(args, flag.dest), flag)]
    spqr = [flag.name for flag in given if flag.key.startswith("spqr.")]
    if spqr and args.weight_format != "spqr":
        raise InvalidArgumentError(f"{', '.join(spqr)} need --weight-format spqr.")
    if args.weight_format in (None, "fp32", "fp16"):
        if given:
            names = ", ".join(flag.name for flag in given)
            raise InvalidArgumentError(f"{names} need a --weight-format other than fp32 and fp16.")
        return None
    if args.weight_format in ("int4", "int8") and all(flag.dest == "quantization_statistics_path" for flag in given):
        return _model_default(args)
    values: dict[str, object] = {}
    for flag in sorted(given, key=lambda f: "." in f.key):  # whole values first, then the fields they nest
        value = (flag.to_config or _same)(getattr(args, flag.dest))
        head, *path = flag.key.split(".")
        if not path:
            values[head] = value
            continue
        nested = values.setdefault(head, {})
        for part in path[:-1]:
            nested = nested.setdefault(part, {})
        nested[path[-1]] = value
    values["bits"] = {"int8": 8, "int4": 4}.get(args.weight_format)  # the other formats imply theirs
    values["dtype"] = args.weight_format
    if args.dataset:
        values["tokenizer"] = args.model
    config = WeightCompressionConfig(**{k: v for k, v in values.items() if v is not None})
    config.checked_settings()  # e.g. --scale-estimation without --dataset: nncf's error before the export
    return _with_default_scope(args.model, config)


def _model_default(args: argparse.Namespace) -> WeightCompressionConfig:
    """optimum-cli's config for a bare ``--weight-format int4``/``int8`` (``--quantization-statistics-path`` aside):
    optimum-intel's tuned config for the model, else its generic default."""
    from optimum_wc.hf.defaults import GENERIC, default_config

    bits = int(args.weight_format[3])
    if _has_optimum_intel():
        config = default_config(args.model, bits)
    else:  # the `hf` extra brings optimum-intel and its table
        logger.info("optimum-intel is not installed: its per-model defaults are not consulted.")
        config = WeightCompressionConfig(**GENERIC[bits])
    if not isinstance(config, WeightCompressionConfig):
        raise NotYetSupportedError(
            f"optimum-intel's default int{bits} config for {args.model} is one config per OpenVINO model "
            f"({config!r}), which the command line does not take yet: give the compression flags to use."
        )
    values = config.to_dict()
    if args.quantization_statistics_path is not None:
        values["statistics_path"] = args.quantization_statistics_path
    if config.dataset is not None:
        values["tokenizer"] = args.model
    return _with_default_scope(args.model, WeightCompressionConfig.from_dict(values))


def _with_default_scope(model: str, config: WeightCompressionConfig) -> WeightCompressionConfig:
    """``config`` with the weights optimum-intel always leaves out of ``model`` ignored (none without optimum-intel)."""
    if not _has_optimum_intel():
        return config
    from optimum_wc.hf.defaults import with_default_ignored_scope

    return with_default_ignored_scope(model, config)


def _has_optimum_intel() -> bool:
    try:
        return importlib.util.find_spec("optimum.intel") is not None
    except ModuleNotFoundError:  # what find_spec raises when `optimum` itself is missing or kept out
        return False


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """The run options of ``compress_weights`` the flags set (how the work is done, not its result)."""
    return {option.name: getattr(args, flag.dest) for option in OPTIONS if option.run for flag in option.flags}


def _same(value: object) -> object:
    return value


def run_export(args: argparse.Namespace) -> pathlib.Path:
    config = config_from_args(args)  # refuse bad flags before any export
    output = args.output
    check_output_folder(output)  # a file, a mount point, a place we may not write: refused before the export
    if output.is_dir() and any(output.iterdir()) and not args.overwrite:
        raise InvalidArgumentError(f"OUTPUT_DIR {output} is not empty; pass --overwrite to replace it.")
    start = time.perf_counter()
    source = pathlib.Path(args.model)
    float_formats = ("fp32", "fp16")
    if (source / "openvino_model.xml").is_file() and (config is None or config.dataset is None):
        # an IR is compressed, not exported, and without calibration text that needs no Hugging Face package
        from optimum_wc.saving.ir_export import export_ir

        export_ir(
            source,
            output,
            config,
            model_name=args.model,
            auto_int8=args.weight_format is None,
            compress_to_fp16=args.weight_format == "fp16",
            convert_tokenizer=_tokenizer_converter(),
            **run_options(args),
        )
    else:
        from optimum_wc.hf.modeling import OVModelForCausalLM

        model = OVModelForCausalLM.from_pretrained(
            args.model,
            export=not (source / "openvino_model.xml").is_file(),
            quantization_config=config,
            load_in_8bit=False if args.weight_format in float_formats else None,
            compile=False,
            trust_remote_code=args.trust_remote_code,
            **run_options(args),
        )
        model.save_pretrained(output, compress_to_fp16=args.weight_format == "fp16")
    size = sum(p.stat().st_size for p in output.glob("openvino_model.*"))
    logger.info("Wrote %s (%.1f MiB of IR) in %.1f s.", output, size / 2**20, time.perf_counter() - start)
    return output


def _tokenizer_converter() -> Callable[[pathlib.Path], None] | None:
    """The ``hf`` extra's OpenVINO tokenizer conversion where it is installed (imported only if used)."""
    try:
        if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("optimum") is None:
            return None
    except ModuleNotFoundError:  # what find_spec raises for a package an import hook keeps out
        return None
    from optimum_wc.hf.exporting import convert_tokenizer

    return convert_tokenizer
