"""SpQR (Dettmers et al., 2023, "SpQR: A Sparse-Quantized Representation for Near-Lossless LLM Weight
Compression"): GPTQ in very small groups, whose statistics are quantized again, with the weights that quantize
worst kept apart in 16 bit.

Notation of the paper, for ``W`` ``[d_out, d_in]`` and the Hessian ``H = 2/N sum_n x_n x_n^T`` of its inputs::

    H_jj = 0 (dead input):   H_jj = 1, W[:, j] = 0
    act_order:               permute the columns by decreasing H_jj
    H += percdamp * mean(diag H) * I
    U = Cholesky(H^-1)^T     (upper),  d_j = U_jj
    tau = outlier_threshold * mean_j( Var_i(W_ij) / d_j^2 )              (outlier threshold, relative)
    for each block of 128 columns, for each column j:
        if j starts a group of beta_1 columns:
            LOO: a weight whose removal lowers the group's error sum_k ((w - q(w)) / d_k)^2 by more than tau
                 is replaced by the mean of its row's other weights for fitting the statistics
            s, z = min-max statistics of each row (beta_1 weights, ``bits``, fractional z)
            s, z = each quantized again, over beta_2 consecutive rows, to qq_scale_bits / qq_zero_bits
        q_j = clamp(round(w_j / s + z), 0, 2^bits - 1),   w^_j = s (q_j - z)
        e_j = (w_j - w^_j) / d_j;   outliers: e_ij^2 > tau keep w_ij exactly (e_ij = 0)
        W[:, j+1:block_end] -= e_j U[j, j+1:block_end];   after the block, the lazy update of GPTQ

Deliberate differences, each equivalent in exact arithmetic:

- ``round_zero`` (SpQR's option of that name) keeps the zero points integers, with an integer second-level step
  and minimum: OpenVINO then runs the dense part with its integer-zero-point kernels, as fast as INT4_ASYM for
  groups of 32 or more (a fractional zero point, or groups of 16, take about twice as long on the CPU plugin).
- The second-level statistics are stored as ``(step, minimum)`` with ``v^ = step * code + minimum`` rather than
  ``step * (code - zero)``: the same values, but float16 cannot overflow on the zero of a nearly constant chunk.
  They are rounded to float16 (what the IR stores) before the first-level statistics are taken from them, so the
  weights GPTQ sees quantized are those OpenVINO computes.
- A weight chosen as an outlier keeps its dense code (the one of ``w``, not of 0) and the outlier stores the
  float16 correction ``w - w^``, which is added on the activation side; the reconstruction is ``w`` up to float16
  rounding of a small number.

Arithmetic is float32, as in GPTQ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimum_wc.algorithms.gptq import InverseHessian
from optimum_wc.config.spqr import SpQRConfig

BLOCK_SIZE = 128  # columns per block of the GPTQ-style error propagation


@dataclass(frozen=True)
class SecondLevel:
    """A first-level statistic ``[d_out, groups]`` quantized over chunks of ``beta_2`` rows: ``codes`` ``[d_out,
    groups]``, and ``step`` and ``minimum`` ``[d_out / beta_2, groups]``: float16, or uint8 for integer zero points
    (then every value is an integer)."""

    codes: np.ndarray
    step: np.ndarray
    minimum: np.ndarray

    def values(self) -> np.ndarray:
        """The statistic as the IR computes it: in float32, rounded to float16 once (returned as float32)."""
        chunks = self.step.shape[0]
        codes = self.codes.reshape(chunks, -1, self.codes.shape[1]).astype(np.float32)
        values = codes * self.step[:, None, :].astype(np.float32) + self.minimum[:, None, :].astype(np.float32)
        return values.reshape(self.codes.shape).astype(np.float16).astype(np.float32)


@dataclass(frozen=True)
class Outliers:
    """Weights kept apart: rows, columns (of the original weight) and float16 corrections ``w - w^``."""

    rows: np.ndarray
    columns: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.size)


@dataclass(frozen=True)
class SpQRResult:
    """One weight compressed by SpQR.

    ``codes`` ``[d_out, d_in]`` are in the permuted column order (groups are contiguous there); ``permutation[k]``
    is the original column of permuted column ``k`` (None: identity). ``weight`` is the reconstruction in the
    original order (dense part plus outliers), float32.
    """

    codes: np.ndarray
    scale: SecondLevel
    zero_point: SecondLevel
    outliers: Outliers
    permutation: np.ndarray | None
    weight: np.ndarray
    settings: SpQRConfig

    def dense(self) -> np.ndarray:
        """The dense part ``s (q - z)``, float32, in the permuted column order."""
        rows, columns = self.codes.shape
        beta = self.settings.group_size
        grouped = self.codes.reshape(rows, columns // beta, beta).astype(np.float32)
        dense = (grouped - self.zero_point.values()[:, :, None]) * self.scale.values()[:, :, None]
        return dense.reshape(rows, columns)


def min_max(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric min-max statistics of each row of ``x`` (last axis): scale and fractional zero, keepdims.

    An all-zero row gets the range [-1, 1]; a constant row a scale of 1 (it is then reconstructed exactly).
    """
    low, high = np.min(x, axis=-1, keepdims=True), np.max(x, axis=-1, keepdims=True)
    zero_rows = (low == 0) & (high == 0)
    low, high = np.where(zero_rows, -1, low), np.where(zero_rows, 1, high)
    scale = (high - low) / (2**bits - 1)
    scale = np.where(scale > 0, scale, 1).astype(np.float32)
    return scale, (-low / scale).astype(np.float32)


def quantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int) -> np.ndarray:
    """``clamp(round(x / s + z), 0, 2^bits - 1)`` (round half to even), as uint8."""
    safe = np.where(scale > 0, scale, 1)
    return np.clip(np.round(x / safe + zero), 0, 2**bits - 1).astype(np.uint8)


def reconstruct(x: np.ndarray, bits: int) -> np.ndarray:
    """``x`` quantized with its own min-max statistics (last axis) and dequantized."""
    scale, zero = min_max(x, bits)
    return scale * (quantize(x, scale, zero, bits) - zero)


def second_level(values: np.ndarray, bits: int, beta_2: int) -> SecondLevel:
    """Quantizes a statistic ``[d_out, groups]`` over chunks of ``beta_2`` rows to ``bits`` (min-max)."""
    rows, groups = values.shape
    chunks = values.reshape(rows // beta_2, beta_2, groups)
    low, high = np.min(chunks, axis=1), np.max(chunks, axis=1)
    step = ((high - low) / (2**bits - 1)).astype(np.float16)
    minimum = low.astype(np.float16)
    safe = np.where(step > 0, step, 1).astype(np.float32)
    codes = np.clip(np.round((chunks - minimum[:, None, :].astype(np.float32)) / safe[:, None, :]), 0, 2**bits - 1)
    return SecondLevel(codes.astype(np.uint8).reshape(rows, groups), step, minimum)


def integer_second_level(values: np.ndarray, bits: int, beta_2: int, maximum: int) -> SecondLevel:
    """Quantizes integer zero points ``[d_out, groups]`` (in ``[0, maximum]``) over chunks of ``beta_2`` rows to
    ``bits`` with an integer step and minimum, so that every rebuilt value is again an integer in ``[0, maximum]``."""
    rows, groups = values.shape
    chunks = values.reshape(rows // beta_2, beta_2, groups)
    low, high = np.min(chunks, axis=1), np.max(chunks, axis=1)
    step = np.maximum(np.ceil((high - low) / (2**bits - 1)), 1)
    codes = np.clip(np.round((chunks - low[:, None, :]) / step[:, None, :]), 0, 2**bits - 1)
    codes -= (low[:, None, :] + step[:, None, :] * codes) > maximum  # rounded up past the range: one step down
    return SecondLevel(codes.astype(np.uint8).reshape(rows, groups), step.astype(np.uint8), low.astype(np.uint8))


def leave_one_out_gain(group: np.ndarray, d: np.ndarray, bits: int) -> np.ndarray:
    """How much the group's error ``sum_k ((w_k - w^_k) / d_k)^2`` drops when each weight is left out of the
    statistics and kept exact: ``[d_out, beta_1]``."""
    beta = group.shape[1]
    others = np.array([[k for k in range(beta) if k != left] for left in range(beta)])  # [beta, beta - 1]
    loo = group[:, others]  # [d_out, beta, beta - 1]
    loo_error = np.sum(((reconstruct(loo, bits) - loo) / d[others]) ** 2, axis=-1)
    base_error = np.sum(((reconstruct(group, bits) - group) / d) ** 2, axis=-1, keepdims=True)
    return base_error - loo_error


def _group_statistics(
    group: np.ndarray, d: np.ndarray, tau: float, settings: SpQRConfig
) -> tuple[SecondLevel, SecondLevel]:
    if np.isfinite(tau) and not settings.simplified_outliers:
        likely = leave_one_out_gain(group, d, settings.bits) > tau
        kept = ~likely
        mean = np.sum(np.where(kept, group, 0), axis=1, keepdims=True) / np.maximum(
            np.sum(kept, axis=1, keepdims=True), 1
        )
        group = np.where(likely, mean, group)
    scale, zero = min_max(group, settings.bits)
    scale_level = second_level(scale, settings.qq_scale_bits, settings.qq_groupsize)
    if settings.round_zero:
        maximum = 2**settings.bits - 1
        zero = np.clip(np.round(zero), 0, maximum)
        return scale_level, integer_second_level(zero, settings.qq_zero_bits, settings.qq_groupsize, maximum)
    return scale_level, second_level(zero, settings.qq_zero_bits, settings.qq_groupsize)


def spqr_quantize(weight: np.ndarray, inverse: InverseHessian, settings: SpQRConfig = SpQRConfig()) -> SpQRResult:
    """Compresses ``weight`` ``[d_out, d_in]`` given the inverse Hessian of its inputs (see the module docstring);
    ``inverse.order`` is the act-order permutation, or None."""
    w = weight.astype(np.float32, copy=True)
    w[:, inverse.dead] = 0
    if inverse.order is not None:
        w = w[:, inverse.order]
    rows, columns = w.shape
    beta = settings.group_size
    u = inverse.upper
    d = np.diag(u).astype(np.float32)
    tau = settings.outlier_threshold * float(np.mean(np.var(w, axis=0, ddof=1) / d**2))

    codes = np.zeros((rows, columns), dtype=np.uint8)
    dense = np.zeros_like(w)
    reconstructed = np.zeros_like(w)
    is_outlier = np.zeros((rows, columns), dtype=bool)
    scales: list[SecondLevel] = []
    zeros: list[SecondLevel] = []
    s = z = None
    for i1 in range(0, columns, BLOCK_SIZE):
        i2 = min(i1 + BLOCK_SIZE, columns)
        errors = np.zeros((rows, i2 - i1), dtype=np.float32)
        for j in range(i1, i2):
            if j % beta == 0:
                scale, zero = _group_statistics(w[:, j : j + beta], d[j : j + beta], tau, settings)
                scales.append(scale)
                zeros.append(zero)
                s, z = scale.values()[:, 0], zero.values()[:, 0]
            w_j = w[:, j]
            q_j = quantize(w_j, s, z, settings.bits)
            dense_j = s * (q_j - z)
            e_j = (w_j - dense_j) / d[j]
            if np.isfinite(tau):
                outlier = e_j**2 > tau
                is_outlier[:, j] = outlier
                e_j = np.where(outlier, 0, e_j)
            codes[:, j] = q_j
            dense[:, j] = dense_j
            reconstructed[:, j] = np.where(is_outlier[:, j], w_j, dense_j)
            errors[:, j - i1] = e_j
            w[:, j + 1 : i2] -= np.outer(e_j, u[j, j + 1 : i2])
        w[:, i2:] -= errors @ u[i1:i2, i2:]

    scale = _concatenate(scales)
    zero_point = _concatenate(zeros)
    permutation = inverse.order
    out_rows, out_columns = np.nonzero(is_outlier)
    corrections = reconstructed[out_rows, out_columns] - dense[out_rows, out_columns]
    original_columns = out_columns if permutation is None else permutation[out_columns]
    order = np.lexsort((original_columns, out_rows))
    outliers = Outliers(out_rows[order], original_columns[order], corrections[order].astype(np.float16))
    result = reconstructed
    if permutation is not None:
        result = np.empty_like(reconstructed)
        result[:, permutation] = reconstructed
    return SpQRResult(codes, scale, zero_point, outliers, permutation, result, settings)


def _concatenate(levels: list[SecondLevel]) -> SecondLevel:
    return SecondLevel(
        np.concatenate([level.codes for level in levels], axis=1),
        np.concatenate([level.step for level in levels], axis=1),
        np.concatenate([level.minimum for level in levels], axis=1),
    )
