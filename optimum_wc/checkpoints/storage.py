"""A checkpoint's Linear in the layout of our decompression subgraph, with its codes, zeros and scales unchanged.

Groups must be contiguous runs of input channels in the subgraph (``[out, groups, group_size]``). With GPTQ's
``desc_act`` the groups are scattered (``g_idx`` is not monotonic): the input channels are then permuted so that
each group is contiguous, and the same permutation is applied to the activation (a Gather before the MatMul), so
``x[..., perm] @ W[:, perm].T == x @ W.T`` exactly.

Symmetric checkpoints whose zero points all equal ``2**(bits - 1)`` are stored as signed codes ``q - 2**(bits - 1)``
without a zero point (nncf's INT4_SYM/INT8_SYM layout, OpenVINO's fastest); others as unsigned codes with a zero
point (INT4_ASYM/INT8_ASYM layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimum_wc.checkpoints.formats import PrequantizedLinear
from optimum_wc.errors import InvalidArgumentError
from optimum_wc.kernels.packing import StoredWeight, pack

UNSIGNED = {4: "u4", 8: "u8"}
SIGNED = {4: "i4", 8: "i8"}


@dataclass(frozen=True)
class ImportedWeight:
    """What replaces one float weight: the packed weight, the input permutation (None if the groups are
    contiguous), and the mode its layout matches."""

    stored: StoredWeight
    permutation: np.ndarray | None
    mode: str

    @property
    def group_size(self) -> int:
        return self.stored.group_size


def _permutation(linear: PrequantizedLinear, group_size: int) -> np.ndarray | None:
    columns = linear.codes.shape[1]
    if np.array_equal(linear.g_idx, np.arange(columns) // group_size):
        return None
    counts = np.bincount(linear.g_idx, minlength=linear.scales.shape[0])
    if not np.all(counts == group_size):
        raise InvalidArgumentError(
            f"g_idx assigns {sorted(set(counts.tolist()))} input channels to a group; every group must hold "
            f"{group_size} for the grouped layout."
        )
    return np.argsort(linear.g_idx, kind="stable")


def to_imported(linear: PrequantizedLinear, name: str = "weight") -> ImportedWeight:
    """Lays out ``linear`` for :func:`~optimum_wc.openvino.decompression.build_decompression`."""
    out, columns = linear.codes.shape
    groups = linear.scales.shape[0]
    if columns % groups:
        raise InvalidArgumentError(f"{name}: {columns} input channels cannot form {groups} equal groups.")
    group_size = columns // groups
    permutation = _permutation(linear, group_size) if groups > 1 else None
    codes = linear.codes if permutation is None else linear.codes[:, permutation]
    grouped = (out, groups, group_size) if groups > 1 else (out, columns)
    side = (out, groups, 1) if groups > 1 else (out, 1)
    zeros = linear.zeros.T.reshape(side)
    scale = np.ascontiguousarray(linear.scales.T.reshape(side))
    layout_group = group_size if groups > 1 else -1
    middle = 2 ** (linear.bits - 1)
    if np.all(zeros == middle):
        signed = (codes.astype(np.int16) - middle).astype(np.int8).reshape(grouped)
        stored = StoredWeight(pack(signed, SIGNED[linear.bits]), None, scale, layout_group, (out, columns))
        return ImportedWeight(stored, permutation, f"int{linear.bits}_sym")
    if zeros.min() < 0 or zeros.max() > 255:
        raise InvalidArgumentError(f"{name}: zero points outside 0..255 cannot be stored.")
    zero_storage = UNSIGNED[linear.bits] if zeros.max() < 2**linear.bits else "u8"  # v1's wrapped 2**bits needs u8
    stored = StoredWeight(
        pack(codes.reshape(grouped), UNSIGNED[linear.bits]),
        pack(zeros.astype(np.uint8), zero_storage),
        scale,
        layout_group,
        (out, columns),
    )
    return ImportedWeight(stored, permutation, f"int{linear.bits}_asym")
