"""SpQR's engine: each piece against an independent float64 or brute-force computation, and the whole against
GPTQ and round-to-nearest on the layer-output error."""

import numpy as np
import pytest

from optimum_wc import kernels
from optimum_wc.algorithms.gptq import Hessian, gptq_quantize, invert_hessian
from optimum_wc.algorithms.spqr import (
    integer_second_level,
    leave_one_out_gain,
    second_level,
    spqr_quantize,
)
from optimum_wc.algorithms.spqr_storage import share_permutations, to_spqr_storage
from optimum_wc.config.spqr import SpQRConfig


def _layer(seed=0, rows=64, columns=128, heavy=0.01):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(rows, columns)).astype(np.float32) * 0.02
    weight[rng.random(weight.shape) < heavy] *= 15  # a few weights far outside their group's range
    mixing = rng.normal(size=(columns, columns)) * 0.2 + np.diag(1 + 4 * rng.random(columns))
    x = (rng.normal(size=(512, columns)) @ mixing).astype(np.float32)
    hessian = Hessian(columns)
    hessian.add(x[None])
    return weight, x, hessian.matrix


def _output_error(weight, approx, x):
    return float(np.mean(((weight.astype(np.float64) - approx) @ x.T.astype(np.float64)) ** 2))


def _reference_min_max(x, bits):
    low, high = x.min(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)
    scale = (high - low) / (2**bits - 1)
    zero = -low / scale
    return scale * (np.clip(np.round(x / scale + zero), 0, 2**bits - 1) - zero)


def test_leave_one_out_gain_equals_brute_force():
    rng = np.random.default_rng(1)
    group = rng.normal(size=(8, 16)).astype(np.float64)
    group[2, 5] = 9.0
    d = rng.uniform(0.5, 2.0, size=16)
    gain = leave_one_out_gain(group.astype(np.float32), d.astype(np.float32), 3)
    base = np.sum(((_reference_min_max(group, 3) - group) / d) ** 2, axis=1)
    for row in range(8):
        for left in range(16):
            keep = np.arange(16) != left
            others = group[row, keep][None]
            loo = np.sum(((_reference_min_max(others, 3) - others) / d[keep]) ** 2)
            assert gain[row, left] == pytest.approx(base[row] - loo, rel=1e-4, abs=1e-5)
    assert np.argmax(gain[2]) == 5  # leaving the outlier out helps most


def test_second_level_statistics_are_within_half_a_step_and_rebuilt_as_stored():
    rng = np.random.default_rng(2)
    values = rng.uniform(0.001, 0.05, size=(64, 6)).astype(np.float32)
    level = second_level(values, 3, 16)
    assert level.codes.shape == (64, 6) and level.codes.max() <= 7
    assert level.step.dtype == np.float16 and level.step.shape == (4, 6)
    rebuilt = level.values().astype(np.float64)
    # float64 reference: code * step + minimum with the float16 step and minimum; half a step of rounding at most
    step = np.repeat(level.step.astype(np.float64), 16, axis=0)
    minimum = np.repeat(level.minimum.astype(np.float64), 16, axis=0)
    np.testing.assert_allclose(rebuilt, level.codes * step + minimum, rtol=2e-3)
    assert np.all(np.abs(rebuilt - values) <= step / 2 + np.abs(values) * 2e-3 + 1e-7)


def test_every_weight_is_rebuilt_from_what_is_stored():
    weight, _, hessian = _layer()
    result = spqr_quantize(weight, invert_hessian(hessian, 1.0, act_order=True), SpQRConfig(bits=3))
    # float64 rebuild from the codes and the four float16 second-level arrays alone
    beta = 16
    s = np.repeat(
        result.scale.codes * np.repeat(result.scale.step.astype(np.float64), 16, 0)
        + np.repeat(result.scale.minimum.astype(np.float64), 16, 0),
        beta,
        axis=1,
    )
    z = np.repeat(
        result.zero_point.codes * np.repeat(result.zero_point.step.astype(np.float64), 16, 0)
        + np.repeat(result.zero_point.minimum.astype(np.float64), 16, 0),
        beta,
        axis=1,
    )
    dense = s * (result.codes - z)  # permuted column order
    assert result.codes.max() <= 7 and result.scale.codes.max() <= 7 and result.zero_point.codes.max() <= 7
    full = dense.copy()
    inverse_order = np.argsort(result.permutation)
    full[result.outliers.rows, inverse_order[result.outliers.columns]] += result.outliers.values.astype(np.float64)
    unpermuted = np.empty_like(full)
    unpermuted[:, result.permutation] = full
    np.testing.assert_allclose(unpermuted, result.weight, rtol=1e-3, atol=2e-4)
    assert 0 < len(result.outliers) < 0.05 * weight.size
    assert np.all(np.diff(result.outliers.rows) >= 0)  # sorted by row


def test_outliers_are_the_weights_whose_normalized_error_exceeds_the_threshold():
    weight, _, hessian = _layer(seed=3)
    inverse = invert_hessian(hessian, 1.0)
    none = spqr_quantize(weight, inverse, SpQRConfig(outlier_threshold=float("inf")))
    few = spqr_quantize(weight, inverse, SpQRConfig(outlier_threshold=1.0))
    many = spqr_quantize(weight, inverse, SpQRConfig(outlier_threshold=0.1))
    assert len(none.outliers) == 0
    assert 0 < len(few.outliers) < len(many.outliers)  # a higher threshold keeps fewer outliers
    np.testing.assert_allclose(none.weight, none.dense(), rtol=0, atol=0)


@pytest.mark.parametrize("bits", [3, 4])
def test_lower_output_error_than_gptq_and_round_to_nearest_in_groups_of_128(bits):
    weight, x, hessian = _layer(seed=4)
    spqr = spqr_quantize(weight, invert_hessian(hessian, 1.0, act_order=True), SpQRConfig(bits=bits))
    gptq = gptq_quantize(weight, invert_hessian(hessian, 0.1), "int4_asym", 128).weight
    rtn = kernels.decompress(kernels.compress(weight, (1,), "int4_asym", 128))
    ours = _output_error(weight, spqr.weight, x)
    assert ours < _output_error(weight, gptq, x) < _output_error(weight, rtn, x)
    simplified = spqr_quantize(
        weight, invert_hessian(hessian, 1.0, True), SpQRConfig(bits=bits, simplified_outliers=True)
    )
    assert _output_error(weight, simplified.weight, x) < _output_error(weight, rtn, x)


def test_a_dead_input_is_quantized_as_zero_and_gets_no_outliers():
    weight, _, hessian = _layer(seed=5)
    weight[:, 7] = 5.0  # would be an outlier in every row, but the input is always zero
    hessian[:, 7] = hessian[7, :] = 0
    result = spqr_quantize(weight, invert_hessian(hessian, 1.0), SpQRConfig())
    step = np.repeat(result.scale.values(), 16, axis=1)
    assert np.all(np.abs(result.weight[:, 7]) <= step[:, 7])  # the code of 0, within one step
    assert 7 not in result.outliers.columns


@pytest.mark.parametrize("bits, expected_code_bytes", [(3, 64 * 128 * 3 // 8), (4, 64 * 128 // 2)])
def test_stored_bytes_follow_the_average_bits_formula(bits, expected_code_bytes):
    weight, _, hessian = _layer(seed=6)
    result = spqr_quantize(weight, invert_hessian(hessian, 1.0, act_order=True), SpQRConfig(bits=bits))
    stored = to_spqr_storage(result)
    rows, columns = weight.shape
    groups = columns // 16
    outliers = len(result.outliers)
    assert stored.parts == {
        "codes": expected_code_bytes,
        "statistics": 2 * (rows * groups * 3 // 8 + 2 * 2 * (rows // 16) * groups),  # u3 codes, f16 step + minimum
        # CSR: a u16 column and an f16 value each, a u16 offset a row
        "outliers": outliers * (2 + 2) + rows * 2,
        "permutation": columns * 2,
    }
    # bits + (b_s + b_z) / beta_1 + 2 * 32 / (beta_1 beta_2) + 32 r + row offsets + permutation
    formula = bits + 6 / 16 + 64 / 256 + 32 * outliers / weight.size + 16 / columns + 16 / rows
    assert stored.nbytes * 8 / weight.size == pytest.approx(formula)


def test_an_equal_permutation_is_counted_once():
    weight, _, hessian = _layer(seed=7)
    inverse = invert_hessian(hessian, 1.0, act_order=True)
    first, second = (to_spqr_storage(spqr_quantize(w, inverse)) for w in (weight, weight[::-1].copy()))
    shared = share_permutations([first, second])
    assert shared[0].parts["permutation"] == 256 and shared[1].parts["permutation"] == 0


def test_integer_zero_points_stay_integers_in_range():
    rng = np.random.default_rng(8)
    zeros = rng.integers(0, 16, size=(64, 5)).astype(np.float32)
    zeros[:16, 0] = 15  # a constant chunk at the top of the range
    level = integer_second_level(zeros, 3, 16, 15)
    values = level.values()
    assert level.step.dtype == np.uint8 and level.minimum.dtype == np.uint8
    assert np.array_equal(values, np.round(values)) and values.min() >= 0 and values.max() <= 15
    step = np.repeat(level.step, 16, axis=0)
    assert np.all(np.abs(values - zeros) <= np.maximum(step, 1))  # within one step (half, unless clipped)
    np.testing.assert_array_equal(values[:16, 0], 15)

    weight, x, hessian = _layer(seed=9)
    inverse = invert_hessian(hessian, 0.1, act_order=True)
    result = spqr_quantize(weight, inverse, SpQRConfig(round_zero=True, group_size=32))
    z = result.zero_point.values()
    assert np.array_equal(z, np.round(z)) and z.min() >= 0 and z.max() <= 15
    fractional = spqr_quantize(weight, inverse, SpQRConfig(group_size=32))
    rtn = kernels.decompress(kernels.compress(weight, (1,), "int4_asym", 32))
    # integer zero points cost a little accuracy, far less than round-to-nearest in the same groups
    assert (
        _output_error(weight, fractional.weight, x)
        < _output_error(weight, result.weight, x)
        < _output_error(weight, rtn, x)
    )
