"""The float formats' kernels against independent references: OpenVINO's own conversions and packing, nncf's numpy
FP8 conversion, and the formats' definitions."""

from __future__ import annotations

import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
from optimum_wc.kernels.floats import (
    F4E2M1_POSITIVE,
    F4E2M1_VALUES,
    F8E4M3_VALUES,
    absmax_scale,
    e8m0_exponent,
    to_f4e2m1,
    to_f8e4m3,
)
from optimum_wc.kernels.nncf_paths import OPENVINO_PATH_MIN_SIZE
from optimum_wc.kernels.packing import pack

OV_TYPES = {"f4e2m1": ov.Type.f4e2m1, "f8e4m3": ov.Type.f8e4m3}
CONVERTERS = {"f4e2m1": (to_f4e2m1, F4E2M1_VALUES), "f8e4m3": (to_f8e4m3, F8E4M3_VALUES)}


def _openvino_convert(values: np.ndarray, fmt: str) -> np.ndarray:
    """float32 -> fmt -> float32 through a compiled OpenVINO model (what nncf converts with)."""
    parameter = opset.parameter([-1], ov.Type.f32)
    node = opset.convert(opset.convert(parameter, OV_TYPES[fmt]), ov.Type.f32)
    compiled = ov.Core().compile_model(ov.Model([node], [parameter]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(values)[0]


def _near(points: np.ndarray, ulps: int) -> np.ndarray:
    """``points`` and the float32 values up to ``ulps`` away from each, both signs."""
    bits = points.astype(np.float32).view(np.int32)[:, None] + np.arange(-ulps, ulps + 1, dtype=np.int32)[None, :]
    values = bits.reshape(-1).view(np.float32)
    values = values[np.isfinite(values)]  # the bits below +0 are NaNs; weights with NaN are refused before
    return np.concatenate([values, -values])


def _samples(fmt: str) -> np.ndarray:
    """Every value of the format, every midpoint between neighbours (the ties), a few ulps around each, values
    beyond the largest, and random values."""
    grid = np.unique(np.abs(CONVERTERS[fmt][1][np.isfinite(CONVERTERS[fmt][1])]))
    midpoints = (grid[1:] + grid[:-1]) / 2
    beyond = grid[-1] * np.array([1.01, 1.03, 1.05, 1.2, 2.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    random = rng.uniform(-1.1 * grid[-1], 1.1 * grid[-1], 200_000).astype(np.float32)
    tiny = rng.uniform(-2 * grid[1], 2 * grid[1], 20_000).astype(np.float32)
    return np.concatenate([_near(np.concatenate([grid, midpoints, beyond]), 4), random, tiny, [0.0, -0.0]])


@pytest.mark.parametrize("fmt", ["f4e2m1", "f8e4m3"])
def test_conversion_matches_openvino(fmt):
    values = _samples(fmt).astype(np.float32)
    convert, table = CONVERTERS[fmt]
    ours = table[convert(values)]
    reference = _openvino_convert(values, fmt)
    both_nan = np.isnan(ours) & np.isnan(reference)
    assert np.array_equal(ours[~both_nan].view(np.int32), reference[~both_nan].view(np.int32))  # signed zeros too
    assert np.isnan(ours).sum() == np.isnan(reference).sum()


def test_f8e4m3_matches_nncf_numpy_conversion():
    """nncf converts NVFP4's scales of fewer than 10000 elements with its own numpy function."""
    from nncf.quantization.algorithms.weight_compression.fp8_conversion import fp32_to_fp8e4m3
    from nncf.tensor import Tensor

    values = _samples("f8e4m3")
    values = values[np.abs(values) <= 448]  # nncf's function is used on normalised values only
    reference = fp32_to_fp8e4m3(Tensor(values)).data
    assert np.array_equal(F8E4M3_VALUES[to_f8e4m3(values)], reference)


def test_tables_follow_the_format_definitions():
    assert F4E2M1_POSITIVE.tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert np.nanmax(F8E4M3_VALUES) == 448 and np.nanmin(np.abs(F8E4M3_VALUES[F8E4M3_VALUES != 0])) == 2.0**-9
    assert np.isnan(F8E4M3_VALUES[0x7F]) and np.isnan(F8E4M3_VALUES[0xFF])
    assert np.isfinite(F8E4M3_VALUES).sum() == 254


@pytest.mark.parametrize("storage", ["f4e2m1", "f8e4m3", "u2", "u3"])
def test_packing_matches_openvino_constants(storage):
    rng = np.random.default_rng(1)
    if storage in OV_TYPES:
        codes = rng.integers(0, 16 if storage == "f4e2m1" else 256, 37).astype(np.uint8)
        codes = codes[np.isfinite(CONVERTERS[storage][1][codes])]
        values = CONVERTERS[storage][1][codes]
    else:
        codes = rng.integers(0, 4 if storage == "u2" else 8, 37).astype(np.uint8)
        values = codes.astype(np.float32)
    constant = opset.constant(values, dtype=getattr(ov.Type, storage))
    assert np.array_equal(pack(codes, storage).data.view(np.uint8), np.asarray(constant.get_data()).view(np.uint8))


def test_e8m0_exponent_is_the_ceiling_of_log2():
    """On nncf's numpy path (small arrays) the exponent is numpy's float32 log2, ceiled and clipped."""
    import optimum_wc.openvino  # noqa: F401  (registers the OpenVINO log2 for the large arrays)

    scale = np.float32([2.0**-130, 2.0**-127, 0.3, 1.0, 1.5, 2.0**100, 2.0**127])
    assert e8m0_exponent(scale, scale.size).tolist() == [-127, -127, -1, 0, 1, 100, 127]
    large = np.float32(np.random.default_rng(2).uniform(1e-6, 10, OPENVINO_PATH_MIN_SIZE))
    exact = np.clip(np.ceil(np.log2(large.astype(np.float64))), -127, 127)
    assert np.abs(e8m0_exponent(large, large.size) - exact).max() <= 1


def test_absmax_scale_clamps_like_each_nncf_path():
    """All-zero and tiny groups: nncf's OpenVINO path clamps max|W| to eps before dividing by the format's maximum,
    its numpy path after."""
    eps = np.finfo(np.float32).eps
    small = np.zeros((4, 8), np.float32)
    small[1] = eps * 2
    large = np.zeros((OPENVINO_PATH_MIN_SIZE // 8 + 1, 8), np.float32)
    large[1] = eps * 2
    assert absmax_scale(small, 1, np.float32(6))[:2, 0].tolist() == [eps, eps]
    np.testing.assert_array_equal(
        absmax_scale(large, 1, np.float32(6))[:2, 0], [np.float32(eps) / np.float32(6), np.float32(2 * eps) / 6]
    )


@pytest.mark.parametrize("mode", ["fp8_e4m3", "fp4", "mxfp4", "mxfp8_e4m3", "nvfp4"])
def test_each_value_goes_to_the_nearest_value_of_the_format(mode):
    """Against the definition: every normalised weight lands on a nearest format value (float64 distances), the
    scale is max|W| / max (a power of two no smaller than that for MX), and NVFP4's scales are FP8 values."""
    from optimum_wc.kernels import KERNELS, compress

    rng = np.random.default_rng(3)
    weight = (rng.standard_normal((48, 64)) * rng.uniform(0.01, 3, (48, 1))).astype(np.float32)
    group = {"mxfp4": 32, "mxfp8_e4m3": 32, "nvfp4": 16}.get(mode, 16)
    result = compress(weight, (1,), mode, group)
    kernel = KERNELS[mode]
    table = F8E4M3_VALUES if kernel.storage == "f8e4m3" else F4E2M1_VALUES
    grouped = weight.reshape(48, 64 // group, group).astype(np.float64)
    absmax = np.abs(grouped).max(axis=-1, keepdims=True)
    top = np.nanmax(table)
    if mode == "nvfp4":
        first_level = absmax / top  # the FP4 codes use the float32 scale before its own FP8 rounding
        assert np.all(np.isin(result.scale, F8E4M3_VALUES))
        assert result.global_scale.size == 1
        scale = first_level
    else:
        scale = result.scale.astype(np.float64)
        if mode.startswith("mx"):
            assert np.all(np.log2(scale) == np.round(np.log2(scale))) and np.all(scale >= absmax / top)
            assert np.all(scale < 2 * absmax / top)
        else:
            np.testing.assert_allclose(scale, absmax / top, rtol=1e-6)
    normalized = grouped / scale
    finite = table[np.isfinite(table)].astype(np.float64)
    nearest = np.abs(finite[None, None, None, :] - normalized[..., None]).min(axis=-1)
    distance = np.abs(table[result.codes].astype(np.float64) - normalized)
    # FP8 rounds through float16 first (OpenVINO's conversion): a tie may then break off by half a float16 step
    slack = 2.0**-10 if kernel.storage == "f8e4m3" else 1e-6  # twice a half float16 step, relative
    assert np.all(distance <= nearest + slack * np.abs(normalized) + 1e-12)


@pytest.mark.parametrize("fmt", ["f4e2m1", "f8e4m3"])
def test_conversion_of_a_transposed_array_is_that_of_its_copy(fmt):
    """Weights stored transposed reach the kernels as non-contiguous arrays (tiny values included)."""
    values = np.random.default_rng(4).standard_normal((300, 200)).astype(np.float32) * 40
    values[::3, ::5] *= 1e-4
    convert = CONVERTERS[fmt][0]
    assert np.array_equal(convert(values.T), convert(np.ascontiguousarray(values.T)))


def test_e8m0_exponent_on_openvinos_path_is_openvinos_ceiling():
    """OpenVINO's ceiling is looked up near powers of two only: the exponents equal the ceiling of OpenVINO's log2 of
    every scale, for every float32 within 4096 ulps of each power of two (8 times the table's reach; subnormals
    included) and random scales."""
    from optimum_wc.openvino.log2 import openvino_log2

    base = np.ldexp(np.float32(1), np.arange(-149, 128)).astype(np.float32)
    bits = base.view(np.int32)[:, None] + np.arange(-4096, 4097, dtype=np.int32)[None, :]
    near = bits.reshape(-1).view(np.float32)
    random = np.exp(np.random.default_rng(6).uniform(-80, 80, 200_000)).astype(np.float32)
    scale = np.concatenate([near[(near > 0) & np.isfinite(near)], random])
    expected = np.clip(np.ceil(openvino_log2(scale)), -127, 127)
    assert np.array_equal(e8m0_exponent(scale, OPENVINO_PATH_MIN_SIZE), expected)


@pytest.mark.parametrize("group", [2, 16, 32, 64, 48])
def test_absmax_of_groups_is_numpys(group):
    from optimum_wc.kernels.floats import group_absmax

    weight = np.random.default_rng(group).standard_normal((40, 6, group)).astype(np.float32)
    weight[3, 2] = 0.0
    assert np.array_equal(group_absmax(weight, 2), np.max(np.abs(weight), axis=2, keepdims=True))
