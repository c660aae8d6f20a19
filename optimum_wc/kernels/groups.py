"""Splitting the input-channel axis of a weight into quantization groups."""

from __future__ import annotations

import numpy as np

from optimum_wc.kernels.records import GroupedWeight


class GroupSizeMismatch(ValueError):
    """The group size does not divide the channel count (the caller turns this into a user-facing error)."""


def single_reduction_axis(shape: tuple[int, ...], reduction_axes: tuple[int, ...]) -> int:
    """Returns the one reduction axis that group-wise quantization needs.

    Raises:
        ValueError: ``reduction_axes`` has more than one axis.
    """
    if len(reduction_axes) != 1:
        msg = f"group-wise quantization needs a single reduction axis, got {reduction_axes} for shape {shape}"
        raise ValueError(msg)
    return reduction_axes[0] % len(shape)


def group_weight(weight: np.ndarray, reduction_axes: tuple[int, ...], group_size: int) -> GroupedWeight:
    """Returns ``weight`` as float32 with groups along their own axis.

    With ``group_size`` -1 the weight keeps its shape and the statistics are reduced over ``reduction_axes``;
    otherwise ``[a, C, b]`` with reduction axis ``C`` becomes ``[a, C // gs, gs, b]`` and the group axis is the new one.
    """
    shape = tuple(weight.shape)
    data = weight if weight.dtype == np.float32 else weight.astype(np.float32)
    if group_size == -1:
        axis = reduction_axes if len(reduction_axes) > 1 else reduction_axes[0] % len(shape)
        return GroupedWeight(data, axis, shape, -1)
    axis = single_reduction_axis(shape, reduction_axes)
    channels = shape[axis]
    if channels % group_size:
        msg = f"channel size {channels} is not divisible by group size {group_size}"
        raise GroupSizeMismatch(msg)
    grouped = data.reshape(shape[:axis] + (channels // group_size, group_size) + shape[axis + 1 :])
    return GroupedWeight(grouped, axis + 1, shape, group_size)
