"""The options of ``compress_weights``, each declared once.

``compress_weights``'s signature and the Args of its docstring, ``CompressionSettings.from_arguments``, the keys of
``WeightCompressionConfig`` (and of the dict it saves) and the flags of ``optimum-wc export`` all derive from
:data:`OPTIONS`. A new option is one entry here, plus the code that acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
import inspect
from typing import Any

from optimum_wc.config.enums import (
    BackupMode,
    CompressionFormat,
    CompressWeightsMode,
    GroupSizeFallbackMode,
    SensitivityMetric,
)
from optimum_wc.config.flags import (
    ALGORITHM_FLAGS,
    SPQR_FLAGS,
    WEIGHT_FORMATS,
    Flag,
    advanced_json,
    scope_patterns,
)


@dataclass(frozen=True)
class Option:
    """One argument of ``compress_weights``.

    Attributes:
        name: The keyword of ``compress_weights``.
        default: Its default there.
        annotation: Its type, as the signature shows it.
        doc: Its entry under Args in ``compress_weights``'s docstring.
        config_key: Its ``WeightCompressionConfig`` key; None for a run option, which changes how the work is done,
            not its result, and is not saved with the model (``from_pretrained`` takes those as arguments).
        aliases: Other config keys for it (optimum-intel's names).
        config_default: What the config holds when the key is absent (default: None, i.e. ``compress_weights``'s).
        flags: Its ``optimum-wc export`` flags.
    """

    name: str
    default: Any
    annotation: str
    doc: str
    config_key: str | None
    aliases: tuple[str, ...] = ()
    config_default: Any = None
    flags: tuple[Flag, ...] = ()

    @property
    def run(self) -> bool:
        return self.config_key is None


OPTIONS: tuple[Option, ...] = (
    Option(
        "mode",
        CompressWeightsMode.INT8_ASYM,
        "CompressWeightsMode",
        "Primary precision (:class:`~optimum_wc.CompressWeightsMode`); ``INT8_ASYM`` by default.",
        "mode",
        aliases=("bits", "sym", "dtype", "weight_format"),
        flags=(
            Flag(
                "--weight-format",
                {"choices": WEIGHT_FORMATS, "help": "Weight precision (fp32 and fp16: no compression)."},
                "dtype",
            ),
            Flag("--sym", {"action": "store_true", "help": "Symmetric quantization (no zero point)."}, "sym"),
        ),
    ),
    Option(
        "ratio",
        None,
        "float | None",
        "Share of the ratio-defining weight elements in the primary precision (4-bit modes); 1 by default.",
        "ratio",
        config_default=1.0,
        flags=(Flag("--ratio", {"type": float, "help": "Share of weight elements in 4 bit (default 1.0)."}, "ratio"),),
    ),
    Option(
        "group_size",
        None,
        "int | None",
        "Weights per quantization group along the input channels; -1 is per output channel. 128 by default for "
        "4-bit modes, -1 for INT8 modes.",
        "group_size",
        flags=(
            Flag(
                "--group-size",
                {"type": int, "help": "Weights per group; -1 for per channel (4-bit default 128)."},
                "group_size",
            ),
        ),
    ),
    Option(
        "ignored_scope",
        None,
        "IgnoredScope | None",
        "Ops to leave uncompressed (:class:`~optimum_wc.IgnoredScope`).",
        "ignored_scope",
        flags=(
            Flag(
                "--ignored-scope",
                {"nargs": "+", "metavar": "PATTERN", "help": "Regular expressions of ops to skip."},
                "ignored_scope",
                scope_patterns,
            ),
        ),
    ),
    Option(
        "all_layers",
        None,
        "bool | None",
        "Compress embeddings and the last MatMul in the primary precision too (4-bit modes).",
        "all_layers",
        flags=(
            Flag(
                "--all-layers",
                {"action": "store_true", "help": "Embeddings and last layer in 4 bit too."},
                "all_layers",
            ),
        ),
    ),
    Option(
        "dataset",
        None,
        "object",
        "Calibration data (an ``nncf.Dataset`` or an iterable of model inputs) for the data-aware sensitivity "
        "metrics and algorithms. ``WeightCompressionConfig`` takes text, tokenized with the model's tokenizer.",
        "dataset",
        flags=(
            Flag(
                "--dataset",
                {"help": "Calibration text: wikitext2, c4 (optionally :seq_len=N) or a local file."},
                "dataset",
            ),
        ),
    ),
    Option(
        "sensitivity_metric",
        None,
        "SensitivityMetric | None",
        "How layers are ranked for mixed precision; ``WEIGHT_QUANTIZATION_ERROR`` without data.",
        "sensitivity_metric",
        flags=(Flag("--sensitivity-metric", {"choices": [m.value for m in SensitivityMetric]}, "sensitivity_metric"),),
    ),
    Option(
        "subset_size",
        128,
        "int",
        "Number of calibration samples (data-aware compression).",
        "num_samples",
        flags=(Flag("--num-samples", {"type": int, "help": "Calibration samples (default 128)."}, "num_samples"),),
    ),
    Option(
        "awq",
        None,
        "bool | None",
        "Activation-aware weight scaling of 4-bit MatMuls (data-aware with a ``dataset``, else data-free).",
        "awq",
        flags=(Flag("--awq", {"action": "store_true", "help": "Activation-aware weight scaling (4 bit)."}, "awq"),),
    ),
    Option(
        "scale_estimation",
        None,
        "bool | None",
        "Per-group scales fitted to the calibration data (4-bit layers; needs a ``dataset``).",
        "scale_estimation",
        flags=(
            Flag(
                "--scale-estimation",
                {"action": "store_true", "help": "Fit group scales to the data (needs --dataset)."},
                "scale_estimation",
            ),
        ),
    ),
    Option(
        "gptq",
        None,
        "bool | None",
        "GPTQ, layer by layer on the calibration data (4-bit layers; needs a ``dataset``).",
        "gptq",
        flags=(Flag("--gptq", {"action": "store_true", "help": "GPTQ (needs --dataset)."}, "gptq"),),
    ),
    Option(
        "lora_correction",
        None,
        "bool | None",
        "LoRA correction: low-rank adapters fitted to the quantization error of the 4-bit layers (needs a "
        "``dataset`` and the ``lora`` extra).",
        "lora_correction",
        flags=(
            Flag(
                "--lora-correction",
                {"action": "store_true", "help": "LoRA correction adapters (needs --dataset)."},
                "lora_correction",
            ),
        ),
    ),
    Option(
        "backup_mode",
        None,
        "BackupMode | None",
        "Precision of the weights left out of the primary precision; ``INT8_ASYM`` by default.",
        "backup_mode",
        aliases=("backup_precision",),
        flags=(Flag("--backup-precision", {"choices": [m.value for m in BackupMode]}, "backup_mode"),),
    ),
    Option(
        "compression_format",
        CompressionFormat.DQ,
        "CompressionFormat",
        "``DQ``, the only format OpenVINO runs.",
        "compression_format",
        flags=(Flag("--compression-format", {"choices": [m.value for m in CompressionFormat]}, "compression_format"),),
    ),
    Option(
        "advanced_parameters",
        None,
        "AdvancedCompressionParameters | None",
        ":class:`~optimum_wc.AdvancedCompressionParameters`; ``WeightCompressionConfig`` also takes a dict of its "
        'fields, with dicts for its sub-parameters (e.g. ``{"gptq_params": {"act_order": True}}``).',
        "advanced_parameters",
        aliases=("group_size_fallback", "statistics_path"),
        flags=(
            Flag("--group-size-fallback", {"choices": [m.value for m in GroupSizeFallbackMode]}, "group_size_fallback"),
            Flag(
                "--quantization-statistics-path",
                {"help": "Keep the activation statistics of data-aware compression here and reuse them."},
                "statistics_path",
            ),
            Flag(
                "--advanced-parameters",
                {
                    "metavar": "JSON",
                    "help": 'AdvancedCompressionParameters as JSON, e.g. \'{"gptq_params": {"act_order": true}}\'.',
                },
                "advanced_parameters",
                advanced_json,
            ),
            *ALGORITHM_FLAGS,
        ),
    ),
    Option(
        "spqr",
        None,
        "SpQRConfig | None",
        ":class:`~optimum_wc.SpQRConfig` (or a dict of its fields) for ``mode=SPQR``; its defaults otherwise. "
        "``group_size`` and ``subset_size`` set its ``group_size`` and ``num_samples`` when it leaves them unset.",
        "spqr",
        flags=SPQR_FLAGS,
    ),
    Option(
        "num_workers",
        None,
        "int | None",
        "Threads that quantize weights concurrently (default: the number of CPU cores). The output does not "
        "depend on it.",
        None,
        flags=(
            Flag(
                "--num-workers",
                {
                    "type": int,
                    "help": "Threads that quantize weights (default: all cores; the output does not depend on it).",
                },
                "num_workers",
            ),
        ),
    ),
    Option(
        "progress",
        True,
        "bool",
        "Show a progress bar.",
        None,
        flags=(
            Flag(
                "--no-progress", {"action": "store_false", "dest": "progress", "help": "No progress bars."}, "progress"
            ),
        ),
    ),
    Option(
        "scratch_dir",
        None,
        "str | os.PathLike | None",
        "Folder for the temporary files from which OpenVINO memory-maps the compressed codes and the weights the "
        "data-aware algorithms rewrite, and from which GPTQ and SpQR read the activations they cache between "
        "layers (used anyway, in the system's temporary folder, when the weights take half the available memory "
        "or more, and whenever an IR file is compressed): keeps anonymous memory low.",
        None,
        flags=(
            Flag(
                "--scratch-dir",
                {"help": "Folder for temporary files that keep memory low (default: the system's temporary folder)."},
                "scratch_dir",
            ),
        ),
    ),
)

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
RUN_OPTIONS = tuple(option.name for option in OPTIONS if option.run)
COMPRESSION_OPTIONS = tuple(option.name for option in OPTIONS if not option.run)


def signature(first: list[inspect.Parameter], names: tuple[str, ...]) -> inspect.Signature:
    """The signature of a function taking ``first``, then the options ``names`` as keyword-only arguments."""
    options = [
        inspect.Parameter(
            n, inspect.Parameter.KEYWORD_ONLY, default=BY_NAME[n].default, annotation=BY_NAME[n].annotation
        )
        for n in names
    ]
    return inspect.Signature(first + options)


def args_doc(names: tuple[str, ...], indent: str = "        ") -> str:
    """The Args entries of ``names``, wrapped for a docstring."""
    import textwrap

    entries = []
    for name in names:
        text = f"{name}: {BY_NAME[name].doc}"
        entries.append(textwrap.fill(text, 116, initial_indent=indent, subsequent_indent=indent + "    "))
    return "\n".join(entries)
