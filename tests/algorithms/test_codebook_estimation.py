"""Adaptive codebooks: the k-means, a layer's codebook and a family's, bit for bit nncf's on the same arrays."""

from __future__ import annotations

import types

import numpy as np
import pytest

from optimum_wc.algorithms.activations import InputStatistics
from optimum_wc.algorithms.codebook_estimation import (
    VALUE_TYPES,
    CodebookTask,
    family_codebook,
    family_name,
    layer_codebook,
    weighted_kmeans,
)
from optimum_wc.config.advanced import ADAPTIVE_VALUE_TYPES
from optimum_wc.kernels.codebook import CB4_LEVELS


def _nncf_config(group_size: int):
    import nncf
    from nncf.quantization.algorithms.weight_compression.config import WeightCompressionConfig
    from nncf.tensor import Tensor

    mode = nncf.CompressWeightsMode.ADAPTIVE_CODEBOOK
    return WeightCompressionConfig(mode=mode, group_size=group_size, codebook_values=Tensor(CB4_LEVELS.copy()))


def _nncf_statistic(stats: InputStatistics):
    from nncf.common.tensor_statistics.statistics import WCTensorStatistic
    from nncf.tensor import Tensor

    hidden = stats.means.shape[1]
    return WCTensorStatistic(
        mean_values=[Tensor(row) for row in stats.means], shape_values=[(t, hidden) for t in stats.tokens]
    )


def _inputs(rng, hidden: int, items: int) -> InputStatistics:
    means = np.abs(rng.normal(0, 1, (items, hidden))).astype(np.float32)
    return InputStatistics(means, tuple(int(t) for t in rng.integers(1, 30, items)))


@pytest.mark.parametrize(
    "size, count, intervals, positive", [(5000, 16, 700, False), (70000, 16, 700, False), (20000, 8, 700, True)]
)
def test_kmeans_candidates_are_nncfs(size, count, intervals, positive):
    from nncf.experimental.quantization.algorithms.weight_compression.codebook_estimation import (
        weights_clusterization_k_means,
    )
    from nncf.tensor import Tensor

    rng = np.random.default_rng(size)
    values = (rng.standard_t(4, size=size) * 0.4).astype(np.float32)
    values = np.abs(values) if positive else values
    weights = np.abs(rng.normal(1, 0.5, size)).astype(np.float32)
    _, _, theirs = weights_clusterization_k_means(Tensor(values), Tensor(weights), count, intervals)
    ours = weighted_kmeans(values, weights, count, intervals)
    assert len(ours) == len(theirs) >= 2
    for mine, reference in zip(ours, theirs):
        np.testing.assert_array_equal(mine, reference.data)


@pytest.mark.parametrize(
    "out, hidden, group_size, value_type, count, transposed",
    [
        (64, 128, -1, "f8e4m3", 16, False),
        (64, 128, 32, "f8e4m3", 16, False),
        (64, 128, -1, "float16", 8, False),
        (128, 96, -1, "f8e4m3", 16, True),  # stored [in, out]
        (200, 128, -1, "float32", 20, False),
    ],
    ids=str,
)
def test_layer_codebook_is_nncfs(out, hidden, group_size, value_type, count, transposed):
    from nncf.experimental.quantization.algorithms.weight_compression.codebook_estimation import CodebookEstimation
    from nncf.tensor import Tensor, TensorDataType

    rng = np.random.default_rng(out + hidden)
    weight = rng.normal(0, 0.05, (out, hidden)).astype(np.float32)
    weight = np.ascontiguousarray(weight.T) if transposed else weight
    axis = 0 if transposed else 1
    stats = _inputs(rng, hidden, 9)
    algorithm = CodebookEstimation(TensorDataType(value_type), False, count)
    reference = algorithm.calculate_codebook(
        _nncf_statistic(stats),
        Tensor(weight),
        (axis,),
        _nncf_config(group_size),
        types.SimpleNamespace(reduction_axes=(axis,)),
    )
    convert, _ = VALUE_TYPES[value_type]
    ours = layer_codebook(CodebookTask(weight, (axis,), stats), group_size, CB4_LEVELS, count, convert)
    assert ours.size == count
    np.testing.assert_array_equal(ours.astype(np.float32), reference.as_numpy_tensor().data.astype(np.float32))


@pytest.mark.parametrize("value_type, dtype", [("float16", np.float16), ("f8e4m3", np.float32)])
def test_family_codebook_is_nncfs(value_type, dtype):
    from nncf.experimental.quantization.algorithms.weight_compression.codebook_estimation import CodebookEstimation
    from nncf.tensor import Tensor, TensorDataType

    rng = np.random.default_rng(11)
    tasks = [CodebookTask(rng.normal(0, 0.05, (48, 64)).astype(dtype), (1,), _inputs(rng, 64, 7)) for _ in range(3)]
    algorithm = CodebookEstimation(TensorDataType(value_type), True, 16)
    reference = algorithm.calculate_codebook_for_group(
        [_nncf_statistic(t.inputs) for t in tasks],
        [Tensor(t.weight) for t in tasks],
        (1,),
        _nncf_config(-1),
        types.SimpleNamespace(reduction_axes=(1,)),
    )
    ours = family_codebook(tasks, CB4_LEVELS, 16, VALUE_TYPES[value_type][0])
    np.testing.assert_array_equal(ours.astype(np.float32), reference.as_numpy_tensor().data.astype(np.float32))


def test_families_are_named_by_letters_and_value_types_match_the_config():
    assert family_name("model.layers.12.mlp.down_proj.weight") == family_name("model.layers.3.mlp.down_proj.weight")
    assert family_name("model.layers.1.mlp.up_proj.weight") != family_name("model.layers.1.mlp.down_proj.weight")
    assert set(VALUE_TYPES) == set(ADAPTIVE_VALUE_TYPES)
