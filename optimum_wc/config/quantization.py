"""``WeightCompressionConfig``: how to compress a Hugging Face model, in our words or in optimum-intel's.

Its keys are those of :data:`~optimum_wc.config.options.OPTIONS` (the arguments of ``compress_weights`` that
decide the result, e.g. ``mode``, ``group_size``, ``num_samples`` for ``subset_size``, ``advanced_parameters``),
optimum-intel's ``OVWeightQuantizationConfig`` names for them (``bits``, ``sym``, ``dtype``/``weight_format``,
``quant_method``, ``backup_precision``, ``group_size_fallback``, ``statistics_path``), and the keys that concern
the Hugging Face side only (``tokenizer``, ``dq_group_size``, ``processor``), so an optimum-intel user's dict works
unchanged. Everything is validated at construction with the rules of ``compress_weights``.

SpQR is ``mode="spqr"`` or ``weight_format="spqr"`` (then ``bits`` is SpQR's, 3 or 4), with its parameters in
``spqr`` (a :class:`~optimum_wc.SpQRConfig` or a dict of its fields); ``group_size`` and ``num_samples`` apply to it.
"""

from __future__ import annotations

import copy
import dataclasses
from enum import Enum
import json
import os
import pathlib
from typing import Any

from optimum_wc.config.advanced import (
    AdvancedCompressionParameters,
    advanced_from_dict,
    changed_fields,
    coerce_advanced_parameters,
)
from optimum_wc.config.datasets import DATASET_NAMES, parse_dataset_name
from optimum_wc.config.enums import (
    CODE_BITS,
    BackupMode,
    CompressionFormat,
    CompressWeightsMode,
    GroupSizeFallbackMode,
    SensitivityMetric,
    coerce_enum,
)
from optimum_wc.config.options import BY_NAME, OPTIONS
from optimum_wc.config.scope import IgnoredScope, coerce_ignored_scope
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.config.spqr import SpQRConfig
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError, NotYetSupportedError
from optimum_wc.version import __version__

CONFIG_FORMAT_VERSION = 1
CONFIGURED = tuple(option for option in OPTIONS if not option.run)  # the options a config holds
HF_KEYS = ("tokenizer", "dq_group_size", "processor", "quant_method", "weight_only")  # the Hugging Face side's
# what to_dict writes
OUR_KEYS = tuple(option.config_key for option in CONFIGURED) + ("tokenizer", "processor", "dq_group_size")
ALIASES = tuple(alias for option in CONFIGURED for alias in option.aliases)
KNOWN_KEYS = OUR_KEYS + ALIASES + HF_KEYS
RECORD_KEYS = ("version", "format_version", "library")  # written by to_dict, accepted back
DATA_TO_COME = object()  # stands for calibration data given later (to OVQuantizer), in the checks at construction
ENUMS = {"sensitivity_metric": SensitivityMetric, "backup_mode": BackupMode, "compression_format": CompressionFormat}
# `dtype` values naming one mode (optimum-intel's nf4, mxfp4 and cb4, and nncf's other formats); int4/int8 follow
# `sym`
DTYPE_MODES = {
    "nf4": CompressWeightsMode.NF4,
    "mxfp4": CompressWeightsMode.MXFP4,
    "mxfp8_e4m3": CompressWeightsMode.MXFP8_E4M3,
    "fp8_e4m3": CompressWeightsMode.FP8_E4M3,
    "fp4": CompressWeightsMode.FP4,
    "nvfp4": CompressWeightsMode.NVFP4,
    "cb4": CompressWeightsMode.CB4,
    "int3": CompressWeightsMode.INT3_SYM,
    "int2": CompressWeightsMode.INT2_SYM,
    "adaptive_codebook": CompressWeightsMode.ADAPTIVE_CODEBOOK,
    "spqr": CompressWeightsMode.SPQR,
}
DTYPES = ("int4", "int8", *DTYPE_MODES)


def _mode_from_optimum_intel(bits: Any, sym: Any, dtype: Any) -> CompressWeightsMode:
    if dtype is not None and dtype not in DTYPES:
        raise InvalidArgumentError(f"`dtype` must be one of {', '.join(DTYPES)}; got {dtype!r}.")
    mode = DTYPE_MODES.get(dtype)
    if mode == CompressWeightsMode.SPQR:
        return mode
    if mode is not None:
        if bits is not None and bits != CODE_BITS[mode]:
            raise InvalidArgumentError(f"`dtype`={dtype!r} needs `bits`={CODE_BITS[mode]}, got {bits}.")
        if mode == CompressWeightsMode.INT3_SYM or mode == CompressWeightsMode.INT2_SYM:
            if sym is False:
                raise InvalidArgumentError(f"`dtype`={dtype!r} is symmetric only: `sym` must be True or None.")
        return mode
    if dtype in ("int4", "int8"):
        bits = int(dtype[3])
    bits = 8 if bits is None else bits
    if bits not in (4, 8):
        raise InvalidArgumentError(f"`bits` must be 4 or 8, got {bits!r}.")
    return CompressWeightsMode(f"int{bits}_{'sym' if sym else 'asym'}")


class WeightCompressionConfig:
    """How to compress the weights of a model; see the module docstring for the accepted keys.

    Example:
        ``WeightCompressionConfig(mode="int4_asym", group_size=64, ratio=0.8)`` and
        ``WeightCompressionConfig(bits=4, sym=False, group_size=64, ratio=0.8)`` are the same config.

    Raises:
        InvalidArgumentError: An unknown key (the known ones are listed) or a value ``compress_weights`` refuses.
        NotYetSupportedError: An optimum-intel option optimum-wc does not implement yet (``quant_method="hybrid"``).
    """

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(KNOWN_KEYS) - set(RECORD_KEYS))
        if unknown:
            raise InvalidArgumentError(
                f"Unknown quantization config key(s) {unknown}. Known keys: {', '.join(KNOWN_KEYS)}."
            )
        kwargs = {k: v for k, v in kwargs.items() if k not in RECORD_KEYS}
        if kwargs.get("weight_format") is not None:
            kwargs.setdefault("dtype", kwargs.pop("weight_format"))
        kwargs.pop("weight_format", None)
        if kwargs.get("backup_mode") is None and kwargs.get("backup_precision") is not None:
            kwargs["backup_mode"] = kwargs["backup_precision"]
        self._set_mode(kwargs)
        for option in CONFIGURED:
            if option.config_key not in ("mode", "spqr", "advanced_parameters"):
                value = kwargs.get(option.config_key)
                setattr(self, option.config_key, option.config_default if value is None else value)
        for key, enum in ENUMS.items():
            if getattr(self, key) is not None:
                setattr(self, key, coerce_enum(getattr(self, key), enum, key))
        scope = self.ignored_scope
        self.ignored_scope: IgnoredScope | None = (
            IgnoredScope(**scope) if isinstance(scope, dict) else coerce_ignored_scope(scope)
        )
        self.tokenizer: str | None = kwargs.get("tokenizer")
        self.processor: str | None = kwargs.get("processor")  # turns a VLM's image-text calibration items into inputs
        self.dq_group_size: int | None = kwargs.get("dq_group_size")
        quant_method = str(
            getattr(kwargs.get("quant_method"), "value", kwargs.get("quant_method") or "default")
        ).lower()
        if quant_method not in ("default", "awq", "hybrid"):
            raise InvalidArgumentError(f"`quant_method` must be 'default' or 'awq', got {quant_method!r}.")
        if quant_method == "hybrid":
            raise NotYetSupportedError("`quant_method`='hybrid' (diffusion models) is not supported by optimum-wc.")
        if quant_method == "awq":
            self.awq = True
        if kwargs.get("weight_only") is False:  # optimum-intel's marker of a config that quantizes activations
            raise NotYetSupportedError(
                "`weight_only=False` (quantization of activations) is not supported by optimum-wc."
            )
        self.advanced_parameters = self._advanced(kwargs)
        self.spqr = self._spqr(kwargs)
        self._validate()

    @staticmethod
    def _advanced(kwargs: dict) -> AdvancedCompressionParameters | None:
        """``advanced_parameters``, with optimum-intel's ``group_size_fallback`` and ``statistics_path`` in it."""
        advanced = kwargs.get("advanced_parameters")
        if isinstance(advanced, dict):
            advanced = advanced_from_dict(advanced)
        else:  # a copy: the shorthand keys below must not change the caller's object
            advanced = copy.deepcopy(coerce_advanced_parameters(advanced))
        shorthand = {"group_size_fallback": "group_size_fallback_mode", "statistics_path": "statistics_path"}
        given = {field: kwargs[key] for key, field in shorthand.items() if kwargs.get(key) is not None}
        if not given:
            return advanced
        advanced = advanced or AdvancedCompressionParameters()
        for field, value in given.items():
            if field == "group_size_fallback_mode":
                value = coerce_enum(value, GroupSizeFallbackMode, "group_size_fallback")
            if getattr(advanced, field) not in (value, getattr(AdvancedCompressionParameters, field)):
                raise InvalidArgumentError(
                    f"`{field}` is given twice, differently: in the config and in `advanced_parameters`."
                )
            setattr(advanced, field, value)
        return advanced

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
            elif (
                given
                and _mode_from_optimum_intel(kwargs.get("bits"), kwargs.get("sym"), kwargs.get("dtype")) != self.mode
            ):
                raise InvalidArgumentError(f"`mode`={self.mode.name} contradicts the optimum-intel keys {given}.")
        else:
            self.mode = _mode_from_optimum_intel(kwargs.get("bits"), kwargs.get("sym"), kwargs.get("dtype"))

    def _validate(self) -> None:
        for key in ("tokenizer", "processor"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise InvalidArgumentTypeError(
                    f"`{key}` must be a model id or path (str), got {type(getattr(self, key)).__name__}."
                )
        if self.num_samples is not None and (
            isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples <= 0
        ):
            raise InvalidArgumentError(f"`num_samples` must be a positive int, got {self.num_samples!r}.")
        if self.dq_group_size is not None and (not isinstance(self.dq_group_size, int) or self.dq_group_size < 0):
            raise InvalidArgumentError(f"`dq_group_size` must be an int >= 0, got {self.dq_group_size!r}.")
        if self.dataset is not None and not isinstance(self.dataset, (str, list)):
            raise InvalidArgumentTypeError(
                f"`dataset` must be a dataset name or a list of strings, got {type(self.dataset).__name__}."
            )
        if isinstance(self.dataset, str) and not pathlib.Path(self.dataset).exists():
            name, _ = parse_dataset_name(self.dataset)
            if name not in DATASET_NAMES:
                raise InvalidArgumentError(
                    f"`dataset`={self.dataset!r} is neither an existing path nor one of {', '.join(DATASET_NAMES)}."
                )
        kwargs = self.to_compress_kwargs()
        if kwargs["dataset"] is None and self.takes_data:
            # optimum-intel's config takes data-aware options without a dataset: OVQuantizer may bring the data
            kwargs["dataset"] = DATA_TO_COME
        self.spqr = CompressionSettings.from_arguments(**kwargs).spqr  # with group_size and num_samples folded in

    def checked_settings(self) -> CompressionSettings:
        """nncf's checks on this config with its own dataset (text, or none): where an option needs calibration
        data that the config does not name, nncf's error, before any work."""
        return CompressionSettings.from_arguments(**self.to_compress_kwargs())

    @property
    def statistics_path(self) -> str | None:
        """optimum-intel's name for ``advanced_parameters.statistics_path``."""
        return None if self.advanced_parameters is None else self.advanced_parameters.statistics_path

    @property
    def group_size_fallback(self) -> GroupSizeFallbackMode | None:
        """optimum-intel's name for ``advanced_parameters.group_size_fallback_mode`` (None: not set)."""
        return None if self.advanced_parameters is None else self.advanced_parameters.group_size_fallback_mode

    @property
    def takes_data(self) -> bool:
        """Whether calibration data reaches the compression: not for 8-bit integer weights, whose data optimum-intel
        drops before it calls nncf."""
        return self.mode not in (CompressWeightsMode.INT8_SYM, CompressWeightsMode.INT8_ASYM)

    @property
    def bits(self) -> int:
        if self.spqr is not None:
            return self.spqr.bits
        return 8 if self.mode.value.startswith("int8") else 4

    @property
    def sym(self) -> bool:
        return self.mode.value.endswith("_sym")

    def to_compress_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``compress_weights``, as optimum-intel builds them for nncf (``dataset`` is
        the config's text: the model class tokenizes it into model inputs).

        As optimum-intel does before calling nncf, 8-bit integer weights get no dataset (nncf takes none for them),
        and a statistics path without a dataset is dropped.
        """
        kwargs = {option.name: getattr(self, option.config_key) for option in CONFIGURED}
        kwargs = {name: BY_NAME[name].default if value is None else value for name, value in kwargs.items()}
        if not self.takes_data:
            kwargs["dataset"] = None
        advanced = kwargs["advanced_parameters"]
        if kwargs["dataset"] is None and advanced is not None and advanced.statistics_path is not None:
            kwargs["advanced_parameters"] = dataclasses.replace(advanced, statistics_path=None)
        return kwargs

    @classmethod
    def from_compress_kwargs(cls, **kwargs: Any) -> WeightCompressionConfig:
        """The config of these ``compress_weights`` arguments (the run options excluded): the inverse of
        :meth:`to_compress_kwargs`."""
        return cls(**{BY_NAME[name].config_key: value for name, value in kwargs.items() if not BY_NAME[name].run})

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready, in our vocabulary; :meth:`from_dict` rebuilds an equal config."""
        values = {key: getattr(self, key) for key in OUR_KEYS}
        values.update(
            {
                "ignored_scope": None if self.ignored_scope is None else dataclasses.asdict(self.ignored_scope),
                "dataset": copy.deepcopy(self.dataset),
                "spqr": None if self.spqr is None else self.spqr.to_dict(),
                "advanced_parameters": None
                if self.advanced_parameters is None
                else changed_fields(self.advanced_parameters),
                "library": "optimum-wc",
                "version": __version__,
                "format_version": CONFIG_FORMAT_VERSION,
            }
        )
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in values.items()}

    @classmethod
    def from_optimum_intel(cls, values: Any) -> WeightCompressionConfig:
        """The config of an ``OVWeightQuantizationConfig`` (the object, or its ``to_dict()``): each field takes effect
        as it does in optimum-intel, or is refused by name, never dropped.

        Its dataset options (``"wikitext2:seq_len=64"``, which optimum-intel keeps apart as ``_dataset_kwargs``)
        go back into the dataset name; the extra keyword arguments optimum-intel hands on to
        ``nncf.compress_weights`` (``advanced_parameters``, ``compression_format``, ...) are ours too.
        """
        values = dict(values.to_dict() if hasattr(values, "to_dict") else values)
        options = values.pop("_dataset_kwargs", None) or {}
        if options and isinstance(values.get("dataset"), str):
            values["dataset"] += ":" + ",".join(f"{key}={value}" for key, value in options.items())
        unknown = sorted(set(values) - set(KNOWN_KEYS))
        if unknown:
            allowed = ", ".join(option.name for option in CONFIGURED)
            raise InvalidArgumentError(
                f"The OVWeightQuantizationConfig has field(s) {unknown} that optimum-wc does not take. optimum-intel "
                f"passes its extra fields on to nncf.compress_weights, whose arguments are: {allowed}."
            )
        return cls(**{key: value for key, value in values.items() if value is not None})

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


class OVWeightQuantizationConfig(WeightCompressionConfig):
    """optimum-intel's name for the config, taking its arguments in its positional order too
    (``OVWeightQuantizationConfig(4, True, 64)``)."""

    POSITIONAL = (
        "bits",
        "sym",
        "group_size",
        "tokenizer",
        "dataset",
        "ratio",
        "all_layers",
        "sensitivity_metric",
        "ignored_scope",
        "num_samples",
        "quant_method",
        "scale_estimation",
        "dtype",
        "gptq",
        "processor",
        "lora_correction",
        "backup_precision",
        "statistics_path",
        "group_size_fallback",
        "dq_group_size",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self.POSITIONAL):
            raise InvalidArgumentTypeError(
                f"OVWeightQuantizationConfig takes at most {len(self.POSITIONAL)} positional arguments."
            )
        for name, value in zip(self.POSITIONAL, args):
            if name in kwargs:
                raise InvalidArgumentTypeError(f"OVWeightQuantizationConfig got `{name}` twice.")
            kwargs[name] = value
        super().__init__(**kwargs)
