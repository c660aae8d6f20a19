"""GPTQ and AWQ checkpoint formats, read as they are specified: pure numpy, no quantization library.

Per quantized Linear of ``out`` x ``in`` weights, with ``p = 32 / bits`` values per int32 (least significant first):

- GPTQ (``checkpoint_format`` ``gptq`` or ``gptq_v2``): ``qweight`` int32 ``[in / p, out]`` packed along the input
  dim; ``qzeros`` int32 ``[groups, out / p]`` packed along the output dim; ``scales`` fp16 ``[groups, out]``;
  ``g_idx`` int32 ``[in]`` (input channel -> group). ``gptq`` (v1) stores ``zero - 1``; ``gptq_v2`` the zero itself.
  v1 words are read as gptqmodel converts them to v2: ``0x11111111`` (``0x01010101`` at 8 bits) added to the whole
  word, so a zero point of 0, whose ``-1`` borrowed from the next field, comes back as 0; without such a borrow this
  equals adding 1 to each field, as AutoGPTQ's and exllama's kernels do.
- AWQ (``version`` ``gemm``, 4 bits): ``qweight`` int32 ``[in, out / 8]`` and ``qzeros`` int32 ``[groups, out / 8]``,
  both packed along the output dim in the nibble order (0, 2, 4, 6, 1, 3, 5, 7); ``scales`` fp16 ``[groups, out]``;
  groups are contiguous.

Either way ``W[o, i] = scales[g, o] * (q[o, i] - zero[g, o])`` with ``g = g_idx[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from optimum_wc.errors import InvalidArgumentError, NotYetSupportedError

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # AWQ's nibble k holds column 8c + AWQ_ORDER[k]


@dataclass(frozen=True)
class QuantizationSpec:
    """A checkpoint's ``quantization_config``, validated.

    Attributes:
        method: ``"gptq"`` or ``"awq"``.
        bits: Bits per code (GPTQ 4 or 8, AWQ 4).
        group_size: Input channels per group as declared (-1: one group per output channel).
        sym: GPTQ's symmetric flag (the zero points are read either way).
        desc_act: GPTQ's act-order flag (``g_idx`` may then be non-monotonic).
        checkpoint_format: ``gptq``, ``gptq_v2`` or ``gemm`` (AWQ).
    """

    method: str
    bits: int
    group_size: int
    sym: bool
    desc_act: bool
    checkpoint_format: str

    @property
    def label(self) -> str:
        extras = ", desc_act" if self.desc_act else ""
        group = "per channel" if self.group_size == -1 else f"group size {self.group_size}"
        symmetry = "sym" if self.sym else "asym"
        return f"{self.method.upper()} {self.bits}-bit, {group}, {symmetry}{extras} ({self.checkpoint_format})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "bits": self.bits,
            "group_size": self.group_size,
            "sym": self.sym,
            "desc_act": self.desc_act,
            "checkpoint_format": self.checkpoint_format,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> QuantizationSpec:
        """Reads a ``quantization_config`` dict; refuses what this importer cannot read exactly.

        Raises:
            NotYetSupportedError: Another ``quant_method``, AWQ versions other than ``gemm`` or without zero point,
                bit widths other than GPTQ 4/8 and AWQ 4.
            InvalidArgumentError: A field with a value the format does not define.
        """
        method = str(config.get("quant_method", "")).lower()
        if method not in SPEC_READERS:
            raise NotYetSupportedError(
                f"quantization_config.quant_method={method!r} cannot be imported; supported: {', '.join(SPEC_READERS)}."
            )
        return SPEC_READERS[method](config)


def _int(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"quantization_config.{key} must be an int, got {value!r}.")
    if key == "group_size" and value != -1 and value <= 0:
        raise InvalidArgumentError(f"quantization_config.group_size must be positive or -1, got {value}.")
    return value


def _gptq_spec(config: Mapping[str, Any]) -> QuantizationSpec:
    bits = _int(config, "bits", 4)
    if bits not in (4, 8):
        raise NotYetSupportedError(f"GPTQ with bits={bits} cannot be imported yet; supported: 4, 8.")
    checkpoint_format = str(config.get("checkpoint_format") or config.get("format") or "gptq").lower()
    if str(config.get("pack_dtype", "int32")).replace("torch.", "") != "int32":
        raise NotYetSupportedError(
            f"GPTQ pack_dtype={config.get('pack_dtype')!r} cannot be imported; supported: int32."
        )
    if checkpoint_format not in ("gptq", "gptq_v2"):
        raise NotYetSupportedError(
            f"GPTQ checkpoint_format={checkpoint_format!r} cannot be imported; supported: gptq, gptq_v2."
        )
    return QuantizationSpec(
        "gptq",
        bits,
        _int(config, "group_size", 128),
        bool(config.get("sym", True)),
        bool(config.get("desc_act", False)),
        checkpoint_format,
    )


def _awq_spec(config: Mapping[str, Any]) -> QuantizationSpec:
    bits = _int(config, "bits", config.get("w_bit", 4))
    version = str(config.get("version", "gemm")).lower()
    if str(config.get("backend", "autoawq")).lower() == "llm-awq":
        raise NotYetSupportedError(
            "AWQ checkpoints of backend 'llm-awq' cannot be imported; supported: autoawq 'gemm'."
        )
    if bits != 4 or version != "gemm" or not config.get("zero_point", True):
        raise NotYetSupportedError(
            f"AWQ with bits={bits}, version={version!r}, zero_point={config.get('zero_point', True)} cannot be "
            "imported; supported: bits 4, version 'gemm', zero_point true."
        )
    return QuantizationSpec("awq", 4, _int(config, "group_size", config.get("q_group_size", 128)), False, False, "gemm")


SPEC_READERS: dict[str, Callable[[Mapping[str, Any]], QuantizationSpec]] = {"gptq": _gptq_spec, "awq": _awq_spec}


def unpack_rows(packed: np.ndarray, bits: int) -> np.ndarray:
    """int32 ``[R, C]`` -> uint8 ``[R * 32 / bits, C]``: value k of word ``[r, c]`` is row ``r * 32 / bits + k``."""
    per = 32 // bits
    shifts = (np.arange(per, dtype=np.uint32) * bits)[None, :, None]
    values = (packed.astype(np.int32).view(np.uint32)[:, None, :] >> shifts) & np.uint32(2**bits - 1)
    return values.reshape(packed.shape[0] * per, packed.shape[1]).astype(np.uint8)


def unpack_columns(packed: np.ndarray, bits: int, order: tuple[int, ...] | None = None) -> np.ndarray:
    """int32 ``[R, C]`` -> uint8 ``[R, C * 32 / bits]``: value k of word ``[r, c]`` is column
    ``c * 32 / bits + order[k]`` (``order`` defaults to 0, 1, 2, ...)."""
    per = 32 // bits
    shifts = (np.arange(per, dtype=np.uint32) * bits)[None, None, :]
    values = (packed.astype(np.int32).view(np.uint32)[:, :, None] >> shifts) & np.uint32(2**bits - 1)
    if order is not None:
        values = values[:, :, np.argsort(order)]
    return values.reshape(packed.shape[0], packed.shape[1] * per).astype(np.uint8)


@dataclass(frozen=True)
class PrequantizedLinear:
    """One Linear as the checkpoint stores it, unpacked.

    Attributes:
        codes: uint8 ``[out, in]`` integer codes.
        zeros: int16 ``[groups, out]`` true zero points (GPTQ v1 converted to v2).
        scales: float16 ``[groups, out]``.
        g_idx: int64 ``[in]``, the group of each input channel.
        bits: Bits per code.
    """

    codes: np.ndarray
    zeros: np.ndarray
    scales: np.ndarray
    g_idx: np.ndarray
    bits: int

    def dequantize(self) -> np.ndarray:
        """float32 ``[out, in]``: ``scales * (codes - zeros)``, exact (a 9-bit integer times a float16 fits in
        float32's 24-bit mantissa), which is what OpenVINO's CPU plugin computes from the decompression subgraph."""
        zeros = self.zeros[self.g_idx].T.astype(np.float32)
        scales = self.scales[self.g_idx].T.astype(np.float32)
        return (self.codes.astype(np.float32) - zeros) * scales


def _scales(tensors: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    scales = np.asarray(tensors[f"{prefix}.scales"])
    half = scales.astype(np.float16)
    if not np.array_equal(half.astype(scales.dtype), scales):
        raise NotYetSupportedError(
            f"{prefix}.scales ({scales.dtype}) are not float16 values; they cannot be kept exactly."
        )
    return half


def _check_shapes(prefix: str, codes: np.ndarray, zeros: np.ndarray, scales: np.ndarray, g_idx: np.ndarray) -> None:
    out, columns = codes.shape
    if scales.shape != zeros.shape or scales.shape[1] != out or g_idx.shape != (columns,):
        raise InvalidArgumentError(
            f"{prefix}: inconsistent shapes: codes {codes.shape}, zeros {zeros.shape}, scales {scales.shape}, "
            f"g_idx {g_idx.shape}."
        )
    if g_idx.min() < 0 or g_idx.max() >= scales.shape[0]:
        raise InvalidArgumentError(f"{prefix}.g_idx refers to groups outside 0..{scales.shape[0] - 1}.")


def _contiguous_groups(columns: int, groups: int) -> np.ndarray:
    return np.arange(columns, dtype=np.int64) // (columns // groups)


def _packed(tensors: Mapping[str, np.ndarray], prefix: str, suffix: str) -> np.ndarray:
    key = f"{prefix}.{suffix}"
    if key not in tensors:
        raise InvalidArgumentError(f"The checkpoint has {prefix}.qweight but no {key}.")
    array = np.asarray(tensors[key])
    if array.dtype != np.int32:
        raise NotYetSupportedError(f"{key} is {array.dtype}; only int32 packing can be imported.")
    return array


def v1_to_v2_zeros(qzeros: np.ndarray, bits: int) -> np.ndarray:
    """GPTQ v1 packed zeros (each field ``zero - 1``) -> v2 (each field ``zero``): one add per int32 word."""
    ones = sum(1 << (bits * k) for k in range(32 // bits))
    return ((qzeros.astype(np.int64) + ones) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def read_gptq(tensors: Mapping[str, np.ndarray], prefix: str, spec: QuantizationSpec) -> PrequantizedLinear:
    codes = unpack_rows(_packed(tensors, prefix, "qweight"), spec.bits).T
    qzeros = _packed(tensors, prefix, "qzeros")
    if spec.checkpoint_format == "gptq":
        qzeros = v1_to_v2_zeros(qzeros, spec.bits)
    zeros = unpack_columns(qzeros, spec.bits).astype(np.int16)
    scales = _scales(tensors, prefix)
    g_key = f"{prefix}.g_idx"
    g_idx = (
        np.asarray(tensors[g_key]).astype(np.int64)
        if g_key in tensors
        else _contiguous_groups(codes.shape[1], scales.shape[0])
    )
    _check_shapes(prefix, codes, zeros, scales, g_idx)
    return PrequantizedLinear(np.ascontiguousarray(codes), zeros, scales, g_idx, spec.bits)


def read_awq(tensors: Mapping[str, np.ndarray], prefix: str, spec: QuantizationSpec) -> PrequantizedLinear:
    codes = unpack_columns(_packed(tensors, prefix, "qweight"), 4, AWQ_ORDER).T
    zeros = unpack_columns(_packed(tensors, prefix, "qzeros"), 4, AWQ_ORDER).astype(np.int16)
    scales = _scales(tensors, prefix)
    g_idx = _contiguous_groups(codes.shape[1], scales.shape[0])
    _check_shapes(prefix, codes, zeros, scales, g_idx)
    return PrequantizedLinear(np.ascontiguousarray(codes), zeros, scales, g_idx, 4)


READERS: dict[str, Callable[[Mapping[str, np.ndarray], str, QuantizationSpec], PrequantizedLinear]] = {
    "gptq": read_gptq,
    "awq": read_awq,
}
