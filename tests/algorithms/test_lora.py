"""LoRA correction's kernel: bit for bit nncf's ``calculate_low_rank_matrices`` on the same arrays, and what the fit
is for (a smaller output error than the compressed weight's alone)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from optimum_wc import kernels
from optimum_wc.algorithms.activations import InputStatistics
from optimum_wc.algorithms.lora import group_normalized, least_squares, low_rank_adapters
from optimum_wc.config.advanced import AdvancedLoraCorrectionParameters
from optimum_wc.errors import MissingExtraError


def _case(seed: int, out: int, hidden: int, items: int, transposed: bool):
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.05, size=(out, hidden)).astype(np.float32)
    weight[:, rng.integers(0, hidden, 3)] *= 8  # a few outlier input channels
    means = np.abs(rng.normal(0, 1, size=(items, hidden))).astype(np.float32) * rng.uniform(0.1, 4, hidden)
    means = means.astype(np.float32)
    tokens = tuple(int(t) for t in rng.integers(1, 40, items))
    return (np.ascontiguousarray(weight.T) if transposed else weight), InputStatistics(means, tokens)


def _nncf_adapters(weight, reduction_axis, mode, group_size, stats, params):
    """nncf's own function, on nncf's own compression of the weight."""
    import nncf
    from nncf.common.tensor_statistics.statistics import WCTensorStatistic
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.quantization.algorithms.weight_compression.lora_correction import LoraCorrectionAlgorithm
    from nncf.quantization.algorithms.weight_compression.weight_lowering import compress_weight
    from nncf.tensor import Tensor

    config = WeightCompressionConfig(mode=nncf.CompressWeightsMode(mode), group_size=group_size)
    compressed = compress_weight(Tensor(weight), (reduction_axis,), config)
    for field in ("tensor", "scale", "zero_point"):
        value = getattr(compressed, field)
        if value is not None:
            setattr(compressed, field, value.as_numpy_tensor())
    statistic = WCTensorStatistic(
        mean_values=[Tensor(row) for row in stats.means], shape_values=[(t, stats.means.shape[1]) for t in stats.tokens]
    )
    reference = nncf.AdvancedLoraCorrectionParameters(**vars(params))
    a, b, _ = LoraCorrectionAlgorithm.calculate_low_rank_matrices(
        Tensor(weight), compressed, config, (reduction_axis,), reference, statistic
    )
    return a.data, b.data


@pytest.mark.parametrize(
    "mode, group_size, transposed, items, params",
    [
        ("int4_asym", 32, False, 12, {}),
        ("int4_sym", -1, False, 12, {}),
        ("nf4", 64, True, 9, {"adapter_rank": 4}),
        ("int3_sym", 16, False, 20, {"apply_regularization": False, "subset_size": 6}),
        ("int2_sym", 32, True, 7, {"num_iterations": 1, "adapter_rank": 16}),
        ("int4_asym", 32, False, 5, {"num_iterations": 0}),
    ],
    ids=str,
)
def test_adapters_are_nncfs_bit_for_bit(mode, group_size, transposed, items, params):
    weight, stats = _case(3, 48, 128, items, transposed)
    params = AdvancedLoraCorrectionParameters(**params)
    axis = 0 if transposed else 1
    compressed = kernels.compress(weight, (axis,), mode, group_size)
    ours = low_rank_adapters(weight, kernels.decompress(compressed), axis, group_size, stats, params)
    a, b = _nncf_adapters(weight, axis, mode, group_size, stats, params)
    assert ours.a.shape == (params.adapter_rank, 128) and ours.b.shape == (48, params.adapter_rank)
    np.testing.assert_array_equal(ours.a, a)
    np.testing.assert_array_equal(ours.b, b)


def test_the_adapters_shrink_the_output_error_of_the_compressed_weight():
    weight, stats = _case(5, 64, 128, 16, False)
    dequantized = kernels.decompress(kernels.compress(weight, (1,), "int4_sym", 32))
    adapters = low_rank_adapters(weight, dequantized, 1, 32, stats, AdvancedLoraCorrectionParameters())
    x = stats.means.astype(np.float64)
    before = np.linalg.norm(x @ (weight - dequantized).T.astype(np.float64))
    corrected = dequantized + (adapters.b @ adapters.a)  # y = x Q^T + x A^T B^T
    after = np.linalg.norm(x @ (weight - corrected).T.astype(np.float64))
    assert after < 0.9 * before


def test_without_iterations_the_adapters_are_the_truncated_svd_of_the_residual():
    """Per channel (no group weighting), zero iterations: ``B A`` is the best rank-r approximation of ``W - Q``."""
    weight, stats = _case(6, 40, 96, 8, False)
    dequantized = kernels.decompress(kernels.compress(weight, (1,), "int4_asym", -1))
    params = AdvancedLoraCorrectionParameters(num_iterations=0, adapter_rank=5)
    adapters = low_rank_adapters(weight, dequantized, 1, -1, stats, params)
    u, s, vt = np.linalg.svd((weight - dequantized).astype(np.float64), full_matrices=False)
    best = (u[:, :5] * s[:5]) @ vt[:5]
    np.testing.assert_allclose(adapters.b @ adapters.a, best, atol=1e-6)


@pytest.mark.parametrize("size, group_size", [(128, 32), (100, 32), (64, 64), (30, 32), (1024, 128)])
def test_group_normalization_sums_each_group_as_a_sum_of_its_slice(size, group_size):
    """The vectorized row sums equal ``np.sum`` of each slice (nncf's loop) exactly; a tail is left alone."""
    s = np.random.default_rng(size).uniform(0, 10, size).astype(np.float32)
    expected = s.copy()
    for start in range(0, (size // group_size) * group_size, group_size):
        part = expected[start : start + group_size]
        part[:] = part / np.sum(part)
        part[:] = part / np.max(part)
    np.testing.assert_array_equal(group_normalized(s, group_size), expected)


def test_without_scipy_the_error_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(MissingExtraError, match=r"optimum-wc\[lora\]"):
        least_squares()
