"""Which of nncf's two arithmetic paths a weight takes, where the two give different results.

nncf quantizes a weight of at least :data:`OPENVINO_PATH_MIN_SIZE` elements through small compiled OpenVINO
models, and a smaller one through numpy (its ``NNCF_DISABLE_OPTIMIZED_COMPRESSION`` variable sends every weight
through numpy). The two agree on ordinary values but not everywhere, and ours follows the path nncf would take:

- a NaN code (a NaN or zero scale) becomes the lowest level through OpenVINO (its clamp), 0 through numpy's cast;
- NF4 values exactly on a boundary between two levels go up through OpenVINO, down through numpy;
- OpenVINO's results are C-ordered; numpy's integer results keep the weight's memory order, which for a weight
  stored transposed decides how later sums over a group round.

"Size" is the size of the array nncf quantizes at once: all experts of a 3-D weight, for example.

One step of the OpenVINO path cannot be reproduced in numpy bit for bit: the MX formats' ``log(s) / log(2)``, whose
OpenVINO kernel differs from numpy's ``log2`` by an ulp here and there (enough to change its ceiling near a power
of two, and possibly different on another instruction set). The openvino layer registers that function with
:func:`register_openvino_log2`, so the kernels stay free of OpenVINO.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

OPENVINO_PATH_MIN_SIZE = 10_000
OPENVINO_PATH_SWITCH = "NNCF_DISABLE_OPTIMIZED_COMPRESSION"


def openvino_path(size: int) -> bool:
    """Whether nncf quantizes an array of ``size`` elements through OpenVINO."""
    return size >= OPENVINO_PATH_MIN_SIZE and os.environ.get(OPENVINO_PATH_SWITCH) is None


_OPENVINO_LOG2: list[Callable[[np.ndarray], np.ndarray]] = []


def register_openvino_log2(function: Callable[[np.ndarray], np.ndarray]) -> None:
    """Sets the float32 ``log(x) / log(2)`` that nncf's OpenVINO path computes (see the module docstring)."""
    _OPENVINO_LOG2[:] = [function]


def openvino_log2() -> Callable[[np.ndarray], np.ndarray]:
    """The registered OpenVINO ``log(x) / log(2)``; raises if ``optimum_wc.openvino`` was never imported."""
    if not _OPENVINO_LOG2:
        raise RuntimeError("nncf's OpenVINO log2 is not registered: import optimum_wc.openvino first.")
    return _OPENVINO_LOG2[0]
