"""The model card (``README.md``) written next to a compressed model."""

from __future__ import annotations

from collections import defaultdict
import math
import pathlib

from optimum_wc.config.pipeline import PipelineCompressionConfig
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.kernels import stored_bits_per_weight
from optimum_wc.pipeline.summary import CompressionSummary, StoredFootprint
from optimum_wc.version import __version__


def _distribution_rows(summary: CompressionSummary | None, records: dict[str, dict]) -> list[str]:
    if summary is not None:
        total = max(summary.total_parameters, 1)
        return [
            f"| {r.label} | {r.num_parameters / total:.1%} | {r.num_layers} | {_bits(r.stored_bits)} |"
            for r in summary.rows
        ]
    counts: dict[str, list] = defaultdict(lambda: [0, 0, 0.0])
    for record in records.values():
        label = record["mode"] + ("" if record["group_size"] == -1 else f", group size {record['group_size']}")
        elements = math.prod(record.get("shape", [0]))
        group = record["group_size"] if record["group_size"] != -1 else record.get("shape", [1])[-1]  # [out, in]
        stored = stored_bits_per_weight(record["mode"], group)
        counts[label][0] += elements
        counts[label][1] += 1
        counts[label][2] = None if stored is None or counts[label][2] is None else counts[label][2] + stored * elements
    total = max(sum(c[0] for c in counts.values()), 1)
    return [
        f"| {label} | {n / total:.1%} | {layers} | {_bits(None if bits is None else bits / max(n, 1))} |"
        for label, (n, layers, bits) in sorted(counts.items())
    ]


def _mode_tag(config: WeightCompressionConfig | PipelineCompressionConfig | None) -> str:
    if config is None:
        return "uncompressed"
    if isinstance(config, WeightCompressionConfig):
        return config.mode.value
    return "-".join(dict.fromkeys(each.mode.value for each in config.configs()))  # each mode once, in order


def _config_table(config: WeightCompressionConfig) -> list[str]:
    rows = [f"| {k} | {v} |" for k, v in config.to_dict().items() if v is not None]
    return ["| option | value |", "|---|---|", *rows, ""]


def _bits(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def write_model_card(
    folder: pathlib.Path,
    hf_config: object,
    config: WeightCompressionConfig | PipelineCompressionConfig | None,
    summary: CompressionSummary | None,
    records: dict[str, dict],
    origin: dict[str, str] | None = None,
    model_class: str = "OVModelForCausalLM",
) -> pathlib.Path:
    """Writes ``folder/README.md``: base model, compression config (or, for an imported GPTQ/AWQ checkpoint, where
    its quantization came from), bit-width distribution, size, versions."""
    base = getattr(hf_config, "_name_or_path", "") or getattr(hf_config, "name_or_path", "") or "unknown"
    size = sum(p.stat().st_size for p in folder.rglob("openvino*model*") if p.suffix in (".xml", ".bin"))
    mode = _mode_tag(config)
    if origin is not None:
        mode = f"{origin['method']}-int{origin['bits']}"
    lines = [
        "---",
        "library_name: optimum-wc",
        "tags:",
        "- openvino",
        "- optimum-wc",
        "- weight-compression",
        f"- {mode}",
        "---",
        "",
        f"# {pathlib.Path(str(base)).name or base} ({mode}, OpenVINO IR)",
        "",
        f"- Base model: `{base}`",
        f"- Compressed with optimum-wc {__version__} (NNCF-compatible weight compression)",
        f"- OpenVINO IR size: {size / 2**20:.1f} MiB",
        "",
    ]
    if origin is not None:
        lines += [
            "## Quantization source",
            "",
            f"Imported from the {origin['method'].upper()} checkpoint `{origin['source']}` by optimum-wc: the integer "
            "codes, scales and zero points are the checkpoint's own (unpacked, not quantized again).",
            "",
            "| option | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in origin.items() if k != "source"] + [""]
    if isinstance(config, WeightCompressionConfig):
        lines += ["## Compression config", "", *_config_table(config)]
    elif config is not None:
        lines += ["## Compression config", ""]
        for name, each in [*config.quantization_configs.items(), ("every other model", config.default_config)]:
            lines += [f"### {name}", ""] + (_config_table(each) if each is not None else ["Not compressed.", ""])
    if summary is not None or records:
        lines += [
            "## Bit-width distribution",
            "",
            "Bits per weight: what the IR stores for each, scales and zero points included.",
            "",
            "| precision | share of weights | layers | bits per weight |",
            "|---|---:|---:|---:|",
        ]
        lines += _distribution_rows(summary, records) + [""]
    stored = StoredFootprint.from_records(records) if summary is None else summary.stored
    if stored is not None:
        lines += [
            "## Stored bits per parameter (SpQR)",
            "",
            f"{stored.bits_per_parameter:.3f} bits per parameter over the {stored.parameters} parameters of the "
            f"{stored.layers} SpQR layers, from the bytes stored; {stored.outlier_fraction:.3%} of them are outliers. "
            "Layers in other precisions (embeddings, the last layer) are not included.",
            "",
            "| part | bits per parameter |",
            "|---|---:|",
        ]
        lines += [f"| {name} | {size * 8 / max(stored.parameters, 1):.3f} |" for name, size in stored.parts.items()] + [
            ""
        ]
    lines += [
        "## Usage",
        "",
        "```python",
        f"from optimum_wc import {model_class}",
        "",
        f'model = {model_class}.from_pretrained("path/to/this/folder")',
        "```",
        "",
    ]
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path
