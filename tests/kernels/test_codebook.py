"""Codebook indices against numpy's ``searchsorted`` over the midpoints (what nncf calls), ties included, for
codebooks of several dtypes and sizes."""

from __future__ import annotations

import numpy as np
import pytest

from optimum_wc.kernels.codebook import CB4_LEVELS, codebook_indices, codebook_scale


@pytest.mark.parametrize(
    "codebook",
    [
        CB4_LEVELS,
        np.array([-4, -2, -1, -0.25, 0.25, 1, 2, 4], np.float32),
        np.sort(np.random.default_rng(1).standard_normal(16)).astype(np.float16),
        np.array([-1.0, -0.3, 0.0, 0.4, 1.0]),  # float64
        np.sort(np.random.default_rng(2).standard_normal(40)).astype(np.float32),  # u8 indices
    ],
    ids=["cb4", "f32-8", "f16-16", "f64-5", "f32-40"],
)
def test_indices_are_searchsorted_over_the_midpoints(codebook):
    rng = np.random.default_rng(0)
    midpoints = 0.5 * (codebook[1:] + codebook[:-1])
    on_midpoints = midpoints.astype(np.float32)
    values = np.concatenate(
        [
            rng.standard_normal(50_000).astype(np.float32) * 3,
            on_midpoints,
            np.nextafter(on_midpoints, np.float32(np.inf)),
            np.nextafter(on_midpoints, np.float32(-np.inf)),
        ]
    )
    indices = codebook_indices(values, np.float32(1.0), codebook)
    assert np.array_equal(indices, np.searchsorted(midpoints, values))
    assert indices.dtype == (np.uint8 if codebook.size <= 256 else np.uint16)


def test_scale_is_absmax_over_the_largest_codebook_magnitude():
    weight = np.array([[0.0, 0.0], [1.0, -7.0]], np.float32)
    scale = codebook_scale(weight, 1, CB4_LEVELS)
    assert scale[0, 0] == np.finfo(np.float32).eps and scale[1, 0] == np.float32(7.0) / np.float32(3.5)
