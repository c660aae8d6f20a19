"""``WeightCompressionConfig``: how to compress a Hugging Face model, in our words or in optimum-intel's.

It speaks our vocabulary (``mode``, ``group_size``, ``ratio``, ``all_layers``, ``sensitivity_metric``,
``backup_mode``, ``ignored_scope``, ``dataset``, ``tokenizer``, ``num_samples``, ``awq``, ``scale_estimation``,
``gptq``, ``group_size_fallback``, ``statistics_path``, ``dq_group_size``, ``spqr``) and optimum-intel's
``OVWeightQuantizationConfig`` one (``bits``, ``sym``, ``dtype``/``weight_format``, ``quant_method``,
``backup_precision``, ``lora_correction``, ``processor``), so an optimum-intel user's dict works unchanged.
Everything is validated at construction with the rules of ``compress_weights``.

SpQR is ``mode="spqr"`` or ``weight_format="spqr"`` (then ``bits`` is SpQR's, 3 or 4), with its parameters in
``spqr`` (a :class:`~optimum_wc.SpQRConfig` or a dict of its fields); ``group_size`` and ``num_samples`` apply to it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pathlib
from enum import Enum
from typing import Any

from optimum_wc.advanced import AdvancedCompressionParameters
from optimum_wc.calibration import HUB_DATASETS, parse_dataset_name
from optimum_wc.config import CompressionSettings
from optimum_wc.enums import BackupMode, CompressWeightsMode, GroupSizeFallbackMode, SensitivityMetric, coerce_enum
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, NotYetSupportedError
from optimum_wc.scope import IgnoredScope, coerce_ignored_scope
from optimum_wc.spqr_config import SpQRConfig
from optimum_wc.version import __version__

CONFIG_FORMAT_VERSION = 1
OUR_KEYS = (
    "mode", "group_size", "ratio", "all_layers", "sensitivity_metric", "backup_mode", "ignored_scope", "dataset",
    "tokenizer", "num_samples", "awq", "scale_estimation", "gptq", "group_size_fallback", "statistics_path",
    "dq_group_size", "spqr",
)  # fmt: skip
OPTIMUM_INTEL_KEYS = (
    "bits", "sym", "dtype", "weight_format", "quant_method", "backup_precision", "lora_correction", "processor",
)  # fmt: skip
RECORD_KEYS = ("version", "format_version", "library")  # written by to_dict, accepted back
UNSUPPORTED_DTYPES = ("mxfp4", "cb4")


def _mode_from_optimum_intel(bits: Any, sym: Any, dtype: Any) -> CompressWeightsMode:
    if dtype == "spqr":
        return CompressWeightsMode.SPQR
    if dtype in UNSUPPORTED_DTYPES:
        raise NotYetSupportedError(f"`dtype`={dtype!r} is not supported by optimum-wc yet. Supported: int4, int8, nf4, spqr.")
    if dtype is not None and dtype not in ("int4", "int8", "nf4"):
        raise InvalidArgumentError(f"`dtype` must be one of int4, int8, nf4, spqr, mxfp4, cb4; got {dtype!r}.")
    if dtype in ("int4", "int8"):
        bits = int(dtype[3])
    bits = 8 if bits is None else bits
    if bits not in (4, 8):
        raise InvalidArgumentError(f"`bits` must be 4 or 8, got {bits!r}.")
    if dtype == "nf4":
        if bits != 4:
            raise InvalidArgumentError(f"`dtype`='nf4' needs `bits`=4, got {bits}.")
        return CompressWeightsMode.NF4
    return CompressWeightsMode(f"int{bits}_{'sym' if sym else 'asym'}")


class WeightCompressionConfig:
    """How to compress the weights of a model; see the module docstring for the accepted keys.

    Example:
        ``WeightCompressionConfig(mode="int4_asym", group_size=64, ratio=0.8)`` and
        ``WeightCompressionConfig(bits=4, sym=False, group_size=64, ratio=0.8)`` are the same config.

    Raises:
        InvalidArgumentError: An unknown key (the known ones are listed) or a value ``compress_weights`` refuses.
        NotYetSupportedError: An optimum-intel option optimum-wc does not implement yet (e.g. ``dtype="mxfp4"``).
    """

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(OUR_KEYS) - set(OPTIMUM_INTEL_KEYS) - set(RECORD_KEYS))
        if unknown:
            known = ", ".join(OUR_KEYS + OPTIMUM_INTEL_KEYS)
            raise InvalidArgumentError(f"Unknown quantization config key(s) {unknown}. Known keys: {known}.")
        kwargs = {k: v for k, v in kwargs.items() if k not in RECORD_KEYS}
        if kwargs.get("weight_format") is not None:
            kwargs.setdefault("dtype", kwargs.pop("weight_format"))
        kwargs.pop("weight_format", None)
        self._set_mode(kwargs)
        self.group_size: int | None = kwargs.get("group_size")
        self.ratio: float = 1.0 if kwargs.get("ratio") is None else kwargs["ratio"]
        self.all_layers: bool | None = kwargs.get("all_layers")
        metric = kwargs.get("sensitivity_metric")
        self.sensitivity_metric = None if metric is None else coerce_enum(metric, SensitivityMetric, "sensitivity_metric")
        backup = kwargs.get("backup_mode", kwargs.get("backup_precision"))
        self.backup_mode = None if backup is None else coerce_enum(backup, BackupMode, "backup_mode")
        scope = kwargs.get("ignored_scope")
        self.ignored_scope: IgnoredScope | None = IgnoredScope(**scope) if isinstance(scope, dict) else coerce_ignored_scope(scope)
        self.dataset = kwargs.get("dataset")
        self.tokenizer: str | None = kwargs.get("tokenizer")
        self.num_samples: int | None = kwargs.get("num_samples")
        quant_method = str(getattr(kwargs.get("quant_method"), "value", kwargs.get("quant_method") or "default")).lower()
        if quant_method not in ("default", "awq", "hybrid"):
            raise InvalidArgumentError(f"`quant_method` must be 'default' or 'awq', got {quant_method!r}.")
        if quant_method == "hybrid":
            raise NotYetSupportedError("`quant_method`='hybrid' (diffusion models) is not supported by optimum-wc.")
        self.awq: bool | None = True if quant_method == "awq" else kwargs.get("awq")
        self.scale_estimation: bool | None = kwargs.get("scale_estimation")
        self.gptq: bool | None = kwargs.get("gptq")
        fallback = kwargs.get("group_size_fallback")
        self.group_size_fallback = (
            None if fallback is None else coerce_enum(fallback, GroupSizeFallbackMode, "group_size_fallback")
        )
        self.statistics_path: str | None = kwargs.get("statistics_path")
        self.dq_group_size: int | None = kwargs.get("dq_group_size")
        self.spqr = self._spqr(kwargs)
        for name in ("lora_correction", "processor"):
            if kwargs.get(name):
                raise NotYetSupportedError(f"`{name}` is not supported by optimum-wc yet.")
        self._validate()

    def _spqr(self, kwargs: dict) -> SpQRConfig | None:
        """SpQR's parameters (mode SPQR only), with optimum-intel's ``bits`` as SpQR's bits."""
        if self.mode != CompressWeightsMode.SPQR:
            if kwargs.get("spqr") is not None:
                raise InvalidArgumentError(f"`spqr` parameters apply to mode=SPQR only, got mode={self.mode.name}.")
            return None
        raw = kwargs.get("spqr")
        spqr = SpQRConfig.coerce(raw)
        bits = kwargs.get("bits")
        if bits is not None and bits != spqr.bits:
            if isinstance(raw, SpQRConfig) or (isinstance(raw, dict) and "bits" in raw):
                raise InvalidArgumentError(f"`bits`={bits} contradicts `spqr.bits`={spqr.bits}: set one of them.")
            spqr = SpQRConfig(**{**spqr.to_dict(), "bits": bits})
        return spqr

    def _set_mode(self, kwargs: dict) -> None:
        given = {k: kwargs.get(k) for k in ("bits", "sym", "dtype") if kwargs.get(k) is not None}
        if kwargs.get("mode") is not None:
            self.mode = coerce_enum(kwargs["mode"], CompressWeightsMode, "mode")
            if self.mode == CompressWeightsMode.SPQR:
                if given.get("dtype", "spqr") != "spqr" or given.get("sym"):
                    raise InvalidArgumentError(f"`mode`=SPQR contradicts the optimum-intel keys {given}.")
            elif given and _mode_from_optimum_intel(kwargs.get("bits"), kwargs.get("sym"), kwargs.get("dtype")) != self.mode:
                raise InvalidArgumentError(f"`mode`={self.mode.name} contradicts the optimum-intel keys {given}.")
        else:
            self.mode = _mode_from_optimum_intel(kwargs.get("bits"), kwargs.get("sym"), kwargs.get("dtype"))

    def _validate(self) -> None:
        if self.tokenizer is not None and not isinstance(self.tokenizer, str):
            raise InvalidArgumentTypeError(f"`tokenizer` must be a model id or path (str), got {type(self.tokenizer).__name__}.")
        if self.num_samples is not None and (isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples <= 0):
            raise InvalidArgumentError(f"`num_samples` must be a positive int, got {self.num_samples!r}.")
        if self.dq_group_size is not None and (not isinstance(self.dq_group_size, int) or self.dq_group_size < 0):
            raise InvalidArgumentError(f"`dq_group_size` must be an int >= 0, got {self.dq_group_size!r}.")
        if self.dataset is not None and not isinstance(self.dataset, (str, list)):
            raise InvalidArgumentTypeError(f"`dataset` must be a dataset name or a list of strings, got {type(self.dataset).__name__}.")
        if isinstance(self.dataset, str) and not pathlib.Path(self.dataset).exists():
            name, _ = parse_dataset_name(self.dataset)
            if name not in HUB_DATASETS:
                raise InvalidArgumentError(
                    f"`dataset`={self.dataset!r} is neither an existing path nor one of {', '.join(HUB_DATASETS)}."
                )
        settings = CompressionSettings.from_arguments(**self.to_compress_kwargs())
        self.spqr = settings.spqr  # with group_size and num_samples folded in
    @property
    def bits(self) -> int:
        if self.spqr is not None:
            return self.spqr.bits
        return 8 if self.mode.value.startswith("int8") else 4

    @property
    def sym(self) -> bool:
        return self.mode.value.endswith("_sym")

    def to_compress_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``compress_weights``, as optimum-intel builds them for nncf."""
        advanced = None
        if self.group_size_fallback is not None or self.statistics_path is not None:
            advanced = AdvancedCompressionParameters(statistics_path=self.statistics_path)
            if self.group_size_fallback is not None:
                advanced.group_size_fallback_mode = self.group_size_fallback
        return {
            "mode": self.mode,
            "ratio": self.ratio,
            "group_size": self.group_size,
            "ignored_scope": self.ignored_scope,
            "all_layers": self.all_layers,
            "sensitivity_metric": self.sensitivity_metric,
            "subset_size": self.num_samples or 128,
            "awq": self.awq,
            "scale_estimation": self.scale_estimation,
            "gptq": self.gptq,
            "backup_mode": self.backup_mode,
            "dataset": self.dataset,
            "advanced_parameters": advanced,
            "spqr": self.spqr,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready, in our vocabulary; :meth:`from_dict` rebuilds an equal config."""
        scope = None if self.ignored_scope is None else dataclasses.asdict(self.ignored_scope)
        values = {key: getattr(self, key) for key in OUR_KEYS}
        values.update(
            {
                "ignored_scope": scope,
                "dataset": copy.deepcopy(self.dataset),
                "spqr": None if self.spqr is None else self.spqr.to_dict(),
                "library": "optimum-wc",
                "version": __version__,
                "format_version": CONFIG_FORMAT_VERSION,
            }
        )
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WeightCompressionConfig:
        if not isinstance(values, dict):
            raise InvalidArgumentTypeError(f"A quantization config must be a dict, got {type(values).__name__}.")
        return cls(**values)

    def to_json_file(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2, sort_keys=True)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> WeightCompressionConfig:
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WeightCompressionConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if v is not None and k in OUR_KEYS)
        return f"WeightCompressionConfig({fields})"
