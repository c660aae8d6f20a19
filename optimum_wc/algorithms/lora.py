"""LoRA correction: low-rank adapters that absorb the quantization error of a weight (nncf's LoRA Correction).

With ``W`` the float weight ``[out, in]``, ``Q`` its dequantized compressed form and ``X`` ``[samples, in]`` the
per-item mean inputs, the residual ``R = (W - Q)^T`` (``[in, out]``) is first approximated by a rank-``r`` SVD,
``R ~ U V`` with ``U`` ``[in, r]`` and ``V = S_r V_r`` ``[r, out]``, taken of ``R`` with each row scaled by the
largest input magnitude of its channel, normalized within its quantization group (noisier channels weigh more).
Then ``num_iterations`` rounds of alternating least squares refine it against the output noise ``N = X R``:

    V = argmin || X U V - N ||            (with regularization: also || U V - R ||, stacked)
    U = argmin || X U - N V^+ ||          (with regularization: also || U - R V^+ ||, stacked)

The model then computes ``y = x Q^T + (x U) V``; the adapters are ``A = U^T`` ``[r, in]`` and ``B = V^T``
``[out, r]``. The products and solvers are nncf's (numpy's SVD and pseudo-inverse, scipy's ``gelsy`` least
squares) on arrays of the same memory layout, so that the adapters come out bit for bit as nncf's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimum_wc.algorithms.activations import InputStatistics, magnitudes_and_samples
from optimum_wc.config.advanced import AdvancedLoraCorrectionParameters
from optimum_wc.config.enums import CompressWeightsMode
from optimum_wc.errors import MissingExtraError
from optimum_wc.kernels import compress, store
from optimum_wc.kernels.packing import StoredWeight


@dataclass(frozen=True)
class LowRankAdapters:
    """The two adapter matrices, in the order the model applies them: ``y += (x A^T) B^T``.

    Attributes:
        a: ``[rank, in]`` float32.
        b: ``[out, rank]`` float32.
    """

    a: np.ndarray
    b: np.ndarray

    def __iter__(self):
        return iter((self.a, self.b))


def least_squares():
    """scipy's least-squares solver (the ``lora`` extra), or a clear error naming the extra."""
    try:
        from scipy.linalg import lstsq
    except ImportError as missing:
        raise MissingExtraError("lora_correction", "lora", "scipy") from missing
    return lstsq


def group_normalized(magnitudes: np.ndarray, group_size: int) -> np.ndarray:
    """Each whole group of ``magnitudes`` divided by its sum, then by its largest value (so each group peaks at 1).

    Channels after the last whole group are left as they are."""
    s = magnitudes.copy()
    whole = (s.shape[0] // group_size) * group_size
    groups = s[:whole].reshape(-1, group_size)  # a view: rows are written back into ``s``
    groups /= np.add.reduce(groups, axis=1, keepdims=True)
    groups /= np.max(groups, axis=1, keepdims=True)
    return s


def low_rank_adapters(
    weight: np.ndarray,
    dequantized: np.ndarray,
    reduction_axis: int,
    group_size: int,
    inputs: InputStatistics,
    params: AdvancedLoraCorrectionParameters,
) -> LowRankAdapters:
    """Fits the adapters of one 2-D MatMul weight.

    Args:
        weight: The float weight in its stored layout (``[out, in]``, or ``[in, out]`` with ``reduction_axis`` 0).
        dequantized: What its decompression subgraph computes, same shape (float32).
        reduction_axis: The input-channel axis of ``weight``.
        group_size: The quantization group size, -1 for per-channel.
        inputs: Per-item mean inputs of the MatMul.
        params: Rank, iterations, regularization and sample count.
    """
    lstsq = least_squares()
    rank = params.adapter_rank
    stored = (weight - dequantized).astype(np.float32)
    scaled = stored.T if reduction_axis == 1 else stored  # [in, out]
    residual = scaled.copy()  # C order, as the products below expect
    s, x = magnitudes_and_samples(inputs, params.subset_size)  # [in], [in, samples]
    x = x.T  # [samples, in]
    if group_size > 0:
        scaled = scaled * np.expand_dims(group_normalized(s, group_size), 1)

    u_full, s_full, v_full = np.linalg.svd(scaled, full_matrices=False)
    u = u_full[:, :rank]  # [in, r]
    v = np.diag(s_full[:rank]) @ v_full[:rank, :]  # [r, out]

    noise = x @ residual  # [samples, out]
    for _ in range(params.num_iterations):
        xu = x @ u
        if params.apply_regularization:
            v = _solve(lstsq, np.concatenate([u, xu], axis=0), np.concatenate([residual, noise], axis=0))
        else:
            v = _solve(lstsq, xu, noise)
        v_inverse = np.linalg.pinv(v)  # [out, r]
        noise_v = noise @ v_inverse
        if params.apply_regularization:
            identity = np.eye(u.shape[0], dtype=u.dtype)
            u = _solve(
                lstsq,
                np.concatenate([identity, x], axis=0),
                np.concatenate([residual @ v_inverse, noise_v], axis=0),
            )
        else:
            u = _solve(lstsq, x, noise_v)
    return LowRankAdapters(u.T, v.T)


def _solve(lstsq, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin_x ||a x - b||`` by LAPACK's complete orthogonal factorization (``gelsy``), as nncf solves it."""
    return lstsq(a, b, lapack_driver="gelsy")[0]


@dataclass(frozen=True)
class StoredAdapters:
    """The adapters as the model will hold them: INT8_ASYM per channel (nncf's ``use_int8_adapters``, along the
    weight's own reduction axis), or float32 arrays."""

    a: StoredWeight | np.ndarray
    b: StoredWeight | np.ndarray


def store_adapters(adapters: LowRankAdapters, reduction_axes: tuple[int, ...], int8: bool) -> StoredAdapters:
    if not int8:
        return StoredAdapters(adapters.a, adapters.b)
    a, b = (store(compress(m, reduction_axes, CompressWeightsMode.INT8_ASYM.value, -1)) for m in adapters)
    return StoredAdapters(a, b)
