"""Packing integer codes into the byte layout of OpenVINO's element types, chosen from a table.

4-bit types (u4, i4, nf4, f4e2m1) hold two values a byte, the first in the low nibble; i4 is two's complement. u3
holds eight values in three bytes: their two low bits in the first two bytes, most significant pair first, then one
byte of their high bits, first value in the top bit. u2 holds four values a byte, the first in the lowest two bits.
8- and 16-bit types (f8e4m3 and f8e8m0 as their bit patterns) are stored as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from optimum_wc.kernels.floats import E8M0_BIAS, to_f8e4m3
from optimum_wc.kernels.records import CompressedWeight


@dataclass(frozen=True)
class PackedArray:
    """Bytes ready to become an OpenVINO constant of element type ``storage`` and shape ``shape``. ``owner``: an
    object that owns the memory of ``data`` and can back that constant as it is (an ``openvino.Tensor`` of that
    type and shape, from the OpenVINO engine), else None."""

    data: np.ndarray
    shape: tuple[int, ...]
    storage: str
    owner: object | None = None


def _nibble_pairs(values: np.ndarray) -> np.ndarray:
    """Pairs of byte codes (an even count) read as one little-endian ``uint16`` ``lo | hi << 8``: ``v | v >> 4`` has
    ``lo | hi << 4`` in its low byte (signed codes: their two's complement nibbles, masked first)."""
    pairs = values.reshape(-1).view("<u2")
    if values.dtype != np.uint8:
        pairs = pairs & np.uint16(0x0F0F)
    return pairs | (pairs >> np.uint16(4))


def _pack_nibbles(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1)
    if flat.size % 2:
        flat = np.append(flat, np.zeros(1, flat.dtype))
    return _nibble_pairs(flat).astype(np.uint8)


def pack_nibbles_into(values: np.ndarray, out: np.ndarray) -> None:
    """Writes the packed bytes of an even count of 4-bit ``values`` (``uint8`` or ``int8``) into ``out``."""
    np.copyto(out, _nibble_pairs(values), casting="unsafe")  # the low byte of each pair


def _pack_u3(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1).astype(np.uint8)
    flat = np.concatenate([flat, np.zeros(-flat.size % 8, np.uint8)]).reshape(-1, 8)
    low, high = flat & np.uint8(3), (flat >> np.uint8(2)) & np.uint8(1)
    shifts = np.array([6, 4, 2, 0], dtype=np.uint8)
    first = np.bitwise_or.reduce(low[:, :4] << shifts, axis=1)
    second = np.bitwise_or.reduce(low[:, 4:] << shifts, axis=1)
    third = np.bitwise_or.reduce(high << np.arange(7, -1, -1, dtype=np.uint8), axis=1)
    return np.stack([first, second, third], axis=1).reshape(-1)


def _pack_u2(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1).astype(np.uint8) & np.uint8(3)
    flat = np.concatenate([flat, np.zeros(-flat.size % 4, np.uint8)]).reshape(-1, 4)
    return np.bitwise_or.reduce(flat << np.array([0, 2, 4, 6], dtype=np.uint8), axis=1)


def _pack_bytes(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values)


PACKERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "u8": lambda v: _pack_bytes(v.astype(np.uint8, copy=False)),
    "i8": lambda v: _pack_bytes(v.astype(np.int8, copy=False)),
    "u4": lambda v: _pack_nibbles(v.astype(np.uint8, copy=False)),
    "i4": lambda v: _pack_nibbles(v.astype(np.int8, copy=False)),
    "nf4": lambda v: _pack_nibbles(v.astype(np.uint8, copy=False)),
    "f4e2m1": lambda v: _pack_nibbles(v.astype(np.uint8, copy=False)),
    "u3": _pack_u3,
    "u2": _pack_u2,
    "f8e4m3": lambda v: _pack_bytes(v.astype(np.uint8, copy=False)),
    "f8e8m0": lambda v: _pack_bytes(v.astype(np.uint8, copy=False)),
    "u16": lambda v: _pack_bytes(v.astype(np.uint16, copy=False)),
    "i32": lambda v: _pack_bytes(v.astype(np.int32, copy=False)),
}


def pack(values: np.ndarray, storage: str) -> PackedArray:
    """Packs integer ``values`` (codes, zero points, NF4 level indices or float bit patterns) for element type
    ``storage``."""
    return PackedArray(PACKERS[storage](values), tuple(values.shape), storage)


@dataclass(frozen=True)
class StoredWeight:
    """A compressed weight as it is written into the IR: packed codes and zero point, the scale in float16 (or
    packed, for the MX formats' E8M0 and NVFP4's E4M3 scales), and NVFP4's float32 global scale."""

    codes: PackedArray
    zero_point: PackedArray | None
    scale: np.ndarray | PackedArray  # float16 when not packed
    group_size: int
    original_shape: tuple[int, ...]
    global_scale: np.ndarray | None = None  # float32
    codebook: np.ndarray | PackedArray | None = None  # codebook modes: in its own dtype, or packed (CB4's FP8)


def _stored_scale(scale: np.ndarray, storage: str) -> np.ndarray | PackedArray:
    if storage == "f16":
        return scale.astype(np.float16)  # to nearest even
    if storage == "f8e8m0":  # powers of two: the biased exponent
        return pack(np.frexp(scale)[1] - 1 + E8M0_BIAS, storage)
    return pack(to_f8e4m3(scale), storage)  # values of the format already: exact


def to_storage(
    compressed: CompressedWeight,
    storage: str,
    scale_storage: str = "f16",
    stored_offset: int | None = None,
    codebook_storage: str | None = None,
) -> StoredWeight:
    """Packs a compressed weight for the IR. ``stored_offset``: stores symmetric codes unsigned, shifted by it, with
    a scalar int8 zero point of that value (INT3/INT2). ``codebook_storage``: the codebook's element type when not
    its own dtype (``f8e4m3`` for CB4)."""
    codebook = compressed.codebook
    if codebook is not None and codebook_storage is not None:
        codebook = pack(to_f8e4m3(codebook.astype(np.float32)), codebook_storage)
    codes, zero_point = compressed.codes, compressed.zero_point
    if stored_offset is not None:
        codes = codes.astype(np.int16) + stored_offset
        zero_point = PackedArray(np.array(stored_offset, dtype=np.int8), (), "i8")
    elif zero_point is not None:
        zero_point = pack(zero_point, storage)
    return StoredWeight(
        codes=pack(codes, storage),
        zero_point=zero_point,
        scale=_stored_scale(compressed.scale, scale_storage),
        group_size=compressed.group_size,
        original_shape=compressed.original_shape,
        global_scale=compressed.global_scale,
        codebook=codebook,
    )
