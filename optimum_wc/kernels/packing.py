"""Packing integer codes into the byte layout of OpenVINO's element types, chosen from a table.

4-bit types (u4, i4, nf4) hold two values a byte, the first in the low nibble; i4 is two's complement. u3 holds
eight values in three bytes: their two low bits in the first two bytes, most significant pair first, then one byte
of their high bits, first value in the top bit. 8- and 16-bit types are stored as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from optimum_wc.kernels.records import CompressedWeight


@dataclass(frozen=True)
class PackedArray:
    """Bytes ready to become an OpenVINO constant of element type ``storage`` and shape ``shape``."""

    data: np.ndarray
    shape: tuple[int, ...]
    storage: str


def _pack_nibbles(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1).view(np.uint8) & np.uint8(0x0F)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return flat[0::2] | (flat[1::2] << np.uint8(4))


def _pack_u3(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1).astype(np.uint8)
    flat = np.concatenate([flat, np.zeros(-flat.size % 8, np.uint8)]).reshape(-1, 8)
    low, high = flat & np.uint8(3), (flat >> np.uint8(2)) & np.uint8(1)
    shifts = np.array([6, 4, 2, 0], dtype=np.uint8)
    first = np.bitwise_or.reduce(low[:, :4] << shifts, axis=1)
    second = np.bitwise_or.reduce(low[:, 4:] << shifts, axis=1)
    third = np.bitwise_or.reduce(high << np.arange(7, -1, -1, dtype=np.uint8), axis=1)
    return np.stack([first, second, third], axis=1).reshape(-1)


def _pack_bytes(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values)


PACKERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "u8": lambda v: _pack_bytes(v.astype(np.uint8, copy=False)),
    "i8": lambda v: _pack_bytes(v.astype(np.int8, copy=False)),
    "u4": lambda v: _pack_nibbles(v.astype(np.uint8, copy=False)),
    "i4": lambda v: _pack_nibbles(v.astype(np.int8, copy=False)),
    "nf4": lambda v: _pack_nibbles(v.astype(np.uint8, copy=False)),
    "u3": _pack_u3,
    "u16": lambda v: _pack_bytes(v.astype(np.uint16, copy=False)),
    "i32": lambda v: _pack_bytes(v.astype(np.int32, copy=False)),
}


def pack(values: np.ndarray, storage: str) -> PackedArray:
    """Packs integer ``values`` (codes, zero points or NF4 level indices) for element type ``storage``."""
    return PackedArray(PACKERS[storage](values), tuple(values.shape), storage)


@dataclass(frozen=True)
class StoredWeight:
    """A compressed weight as it is written into the IR: packed codes and zero point, float16 scale."""

    codes: PackedArray
    zero_point: PackedArray | None
    scale: np.ndarray  # float16
    group_size: int
    original_shape: tuple[int, ...]


def to_storage(compressed: CompressedWeight, storage: str) -> StoredWeight:
    """Packs a compressed weight for the IR (the scale is rounded to float16, to nearest even)."""
    zero_point = None if compressed.zero_point is None else pack(compressed.zero_point, storage)
    return StoredWeight(
        codes=pack(compressed.codes, storage),
        zero_point=zero_point,
        scale=compressed.scale.astype(np.float16),
        group_size=compressed.group_size,
        original_shape=compressed.original_shape,
    )
