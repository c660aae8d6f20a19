"""GPTQ: the Hessian, and a lower layer-output error than round-to-nearest, checked in float64."""

import numpy as np
import pytest

from optimum_wc import kernels
from optimum_wc.algorithms.gptq import Hessian, gptq_quantize, gptq_quantize_stacked, invert_hessian
from optimum_wc.config.advanced import AdvancedGPTQParameters


def test_hessian_is_two_over_n_sum_of_outer_products():
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(1, int(n), 8)).astype(np.float32) for n in rng.integers(3, 9, size=5)]
    hessian = Hessian(8)
    for item in items:
        hessian.add(item)
    expected = sum(x[0].astype(np.float64).T @ x[0].astype(np.float64) for x in items) * 2 / len(items)
    np.testing.assert_allclose(hessian.matrix, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode, group_size", [("int4_sym", 16), ("int4_asym", -1), ("nf4", 32)])
def test_lower_output_error_than_round_to_nearest(mode, group_size):
    rng = np.random.default_rng(2)
    weight = rng.normal(size=(32, 64)).astype(np.float32)
    mixing = rng.normal(size=(64, 64)) * 0.3 + np.eye(64)
    x = (rng.normal(size=(256, 64)) @ mixing).astype(np.float32)  # correlated inputs
    hessian = Hessian(64)
    hessian.add(x[None])
    result = gptq_quantize(
        weight, invert_hessian(hessian.matrix, 0.1), mode, group_size, AdvancedGPTQParameters(block_size=16)
    )
    rtn = kernels.decompress(kernels.compress(weight, (1,), mode, group_size))

    def error(q):
        return np.sum(((weight.astype(np.float64) - q.astype(np.float64)) @ x.T.astype(np.float64)) ** 2)

    assert error(result.weight) < 0.9 * error(rtn)
    # the weights lie on the grid of the returned parameters: lowering them again changes nothing
    again = kernels.decompress(kernels.compress(result.weight, (1,), mode, group_size, result.scale, result.zero_point))
    np.testing.assert_allclose(again, result.weight, rtol=0, atol=1e-6)


def test_dead_inputs_give_zero_columns():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 50, 16)).astype(np.float32)
    x[..., 5] = 0
    hessian = Hessian(16)
    hessian.add(x)
    result = gptq_quantize(
        rng.normal(size=(8, 16)).astype(np.float32), invert_hessian(hessian.matrix, 0.1), "int4_sym", -1
    )
    assert np.all(result.weight[:, 5] == 0)


def _uneven_layer():
    """Inputs whose energy differs by column (as in LLMs)."""
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(48, 64)).astype(np.float32)
    energy = rng.permutation(np.geomspace(0.05, 5.0, 64))
    x = (rng.normal(size=(512, 64)) * energy).astype(np.float32)
    hessian = Hessian(64)
    hessian.add(x[None])
    inverse = invert_hessian(hessian.matrix, 0.1, act_order=True)
    assert sorted(inverse.order.tolist()) == list(range(64)) and inverse.order[0] == np.argmax(energy)

    def error(q):
        return np.sum(((weight.astype(np.float64) - q.astype(np.float64)) @ x.T.astype(np.float64)) ** 2)

    return weight, hessian, inverse, error


@pytest.mark.parametrize("mode, group_size", [("int4_sym", 16), ("int4_asym", 32), ("nf4", -1)])
def test_act_order_quantizes_groups_of_the_permuted_columns_and_lowers_the_error(mode, group_size):
    weight, hessian, inverse, error = _uneven_layer()
    ordered = gptq_quantize(weight, inverse, mode, group_size, AdvancedGPTQParameters(block_size=16, act_order=True))
    static = gptq_quantize(
        weight, inverse, mode, group_size, AdvancedGPTQParameters(block_size=16, act_order=True, static_groups=True)
    )
    plain = gptq_quantize(
        weight, invert_hessian(hessian.matrix, 0.1), mode, group_size, AdvancedGPTQParameters(block_size=16)
    )
    assert error(ordered.weight) < error(plain.weight)
    if group_size == -1:  # one group per row: the same in any order, stored in the original one
        np.testing.assert_array_equal(ordered.weight, static.weight)
        assert ordered.order is None
        return
    assert error(ordered.weight) < error(static.weight)
    np.testing.assert_array_equal(ordered.order, inverse.order)
    np.testing.assert_array_equal(ordered.stored[:, np.argsort(ordered.order)], ordered.weight)
    # the stored weight is what its groups' parameters give: groups of consecutive columns in the permuted order
    again = kernels.decompress(
        kernels.compress(ordered.stored, (1,), mode, group_size, ordered.scale, ordered.zero_point)
    )
    np.testing.assert_allclose(again, ordered.stored, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode, group_size", [("int4_sym", 16), ("int4_asym", 32), ("nf4", -1)])
def test_act_order_with_static_groups_keeps_the_layout_of_the_original_columns(mode, group_size):
    weight, hessian, inverse, error = _uneven_layer()
    settings = AdvancedGPTQParameters(block_size=16, act_order=True, static_groups=True)
    ordered = gptq_quantize(weight, inverse, mode, group_size, settings)
    plain = gptq_quantize(
        weight, invert_hessian(hessian.matrix, 0.1), mode, group_size, AdvancedGPTQParameters(block_size=16)
    )
    assert error(ordered.weight) < error(plain.weight)
    assert ordered.order is None and ordered.scale.shape == plain.scale.shape  # contiguous groups, original order
    # static groups: each group's parameters are the min-max ones of the original weight
    expected = (
        kernels.KERNELS[mode]
        .parameters(weight.reshape(48, -1, 64 if group_size == -1 else group_size), 2, 4)[0]
        .reshape(ordered.scale.shape)
    )
    np.testing.assert_array_equal(ordered.scale, expected)
    again = kernels.decompress(
        kernels.compress(ordered.weight, (1,), mode, group_size, ordered.scale, ordered.zero_point)
    )
    np.testing.assert_allclose(again, ordered.weight, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "mode, group_size, act_order",
    [("int4_sym", 16, False), ("int4_asym", -1, False), ("nf4", 32, True), ("int4_asym", 16, True)],
)
def test_stacked_weights_get_what_separate_calls_give(mode, group_size, act_order):
    """q, k and v (rows of different counts) in one pass: each result equals that of its own call, bit for bit."""
    weight, hessian, _, _ = _uneven_layer()
    inverse = invert_hessian(hessian.matrix, 0.1, act_order=act_order)
    weights = [weight[:32], weight[32:40] * 3, weight[40:]]
    settings = AdvancedGPTQParameters(block_size=16, act_order=act_order)
    stacked = gptq_quantize_stacked(weights, inverse, mode, group_size, settings)
    assert len(stacked) == 3
    for w, result in zip(weights, stacked):
        alone = gptq_quantize(w, inverse, mode, group_size, settings)
        assert result.weight.shape == w.shape
        np.testing.assert_array_equal(result.weight, alone.weight)
        np.testing.assert_array_equal(result.scale, alone.scale)
        if alone.zero_point is None:
            assert result.zero_point is None
        else:
            np.testing.assert_array_equal(result.zero_point, alone.zero_point)
        np.testing.assert_array_equal(result.stored, alone.stored)


def _columns_one_by_one(w, hinv, kernel, block_size, parameters_at):
    """Algorithm 1 as written, column by column on the untransposed weight (the paper's and nncf's loop)."""
    quantized = np.zeros_like(w)
    for i1 in range(0, w.shape[1], block_size):
        i2 = min(i1 + block_size, w.shape[1])
        block, errors = w[:, i1:i2].copy(), np.zeros((w.shape[0], i2 - i1), dtype=w.dtype)
        for i in range(i2 - i1):
            scale, zero_point = parameters_at(i1 + i)
            q = (kernel.quantized_levels(block[:, i : i + 1], scale, zero_point, kernel.bits) * scale)[:, 0]
            quantized[:, i1 + i] = q
            errors[:, i] = (block[:, i] - q) / hinv[i1 + i, i1 + i]
            block[:, i:] -= np.outer(errors[:, i], hinv[i1 + i, i1 + i : i2])
        w[:, i2:] -= errors @ hinv[i1:i2, i2:]
    return quantized


@pytest.mark.parametrize("mode, group_size, block_size", [("int4_sym", 16, 32), ("int4_asym", 24, 20), ("nf4", -1, 40)])
def test_the_transposed_column_loop_gives_the_values_of_the_loop_column_by_column(mode, group_size, block_size):
    """Same values bit for bit, the weight updated in place alike; groups read from the weight as updated so far."""
    from optimum_wc.algorithms.gptq import _quantize_columns
    from optimum_wc.kernels.registry import KERNELS

    rng = np.random.default_rng(7)
    weight = rng.normal(size=(48, 72)).astype(np.float32)
    hessian = Hessian(72)
    hessian.add((rng.normal(size=(300, 72)) @ (rng.normal(size=(72, 72)) * 0.3 + np.eye(72))).astype(np.float32)[None])
    hinv = invert_hessian(hessian.matrix, 0.05).upper
    kernel = KERNELS[mode]
    size = 72 if group_size == -1 else group_size
    results = []
    for loop in (_quantize_columns, _columns_one_by_one):
        w, parameters = weight.copy(), {}

        def parameters_at(column, w=w, parameters=parameters):
            group = column // size
            if group not in parameters:
                parameters[group] = kernel.parameters(w[:, group * size : (group + 1) * size], 1, kernel.bits)
            return parameters[group]

        results.append((loop(w, hinv, kernel, block_size, parameters_at), w))
    (ours, ours_w), (reference, reference_w) = results
    assert np.array_equal(ours, reference) and np.array_equal(ours_w, reference_w)
    assert not np.array_equal(ours_w, weight)  # the loop did update the weight


def test_inverse_hessian_is_nncfs_bit_for_bit():
    """The damped inverse's upper Cholesky factor computed with nncf's own calls (``L^-T L^-1`` by gemm on two
    buffers, not syrk on one, whose sums round otherwise on some BLAS kernels)."""
    from nncf.tensor import Tensor
    from nncf.tensor import functions as fns

    rng = np.random.default_rng(5)
    x = (rng.normal(size=(600, 256)) * rng.uniform(0.1, 3, size=256)).astype(np.float32)
    hessian = Hessian(256)
    hessian.add(x[None])
    h = Tensor(hessian.matrix.copy())
    diagonal = fns.arange(256, backend=h.backend)
    h[diagonal, diagonal] += 0.1 * fns.mean(fns.diag(h))
    expected = fns.linalg.cholesky(fns.linalg.cholesky_inverse(fns.linalg.cholesky(h)), upper=True)
    np.testing.assert_array_equal(invert_hessian(hessian.matrix, 0.1).upper, expected.data)


@pytest.mark.parametrize("mode, group_size", [("int4_sym", 32), ("int4_asym", 64)])
def test_stacked_weights_with_scale_estimation_get_what_separate_calls_give(mode, group_size):
    """Scale estimation inside GPTQ multiplies each group by the calibration inputs: on stacked rows those products,
    and the update of the later columns, take one weight's rows at a time, so each result is its own call's."""
    from optimum_wc.algorithms.scale_estimation import estimate_scale
    from optimum_wc.config.advanced import AdvancedScaleEstimationParameters

    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 256)).astype(np.float32)
    hessian = Hessian(256)
    hessian.add(x[None])
    inverse = invert_hessian(hessian.matrix, 0.1)
    means = rng.normal(size=(256, 24)).astype(np.float32)
    magnitudes = np.abs(means).max(axis=1)
    settings = AdvancedScaleEstimationParameters(subset_size=24, initial_steps=2, scale_steps=3)

    def parameters(w_slice, column):
        columns = slice(column, column + w_slice.shape[1])
        found = estimate_scale(w_slice, magnitudes[columns], means[columns], mode, -1, settings)
        return found.scale, found.zero_point

    weights = [rng.normal(size=(rows, 256)).astype(np.float32) for rows in (256, 64, 64)]
    stacked = gptq_quantize_stacked(
        weights, inverse, mode, group_size, AdvancedGPTQParameters(block_size=64), parameters
    )
    for w, result in zip(weights, stacked):
        alone = gptq_quantize(w, inverse, mode, group_size, AdvancedGPTQParameters(block_size=64), parameters)
        np.testing.assert_array_equal(result.weight, alone.weight)
        np.testing.assert_array_equal(result.scale, alone.scale)


def test_expert_hessians_are_each_experts_two_over_n_sum_of_outer_products():
    """Fused MoE experts: one Hessian per expert from inputs ``[experts, tokens, in]``, each item counted once."""
    from optimum_wc.algorithms.gptq import ExpertHessians

    rng = np.random.default_rng(6)
    items = [rng.normal(size=(3, int(n), 8)).astype(np.float32) for n in rng.integers(1, 7, size=5)]
    hessians = ExpertHessians(3, 8)
    for item in items:
        hessians.add(item)
    for expert in range(3):
        expected = sum(x[expert].astype(np.float64).T @ x[expert].astype(np.float64) for x in items) * 2 / len(items)
        np.testing.assert_allclose(hessians.matrix[expert], expected, rtol=1e-5, atol=1e-5)
