"""Byte-identical output to nncf 3.4.0 for the float formats (FP8, FP4, MX, NVFP4) and INT3/INT2, pairwise over the
options on every tiny architecture, and on weights built to land on the formats' rounding edges."""

from __future__ import annotations

import nncf
import numpy as np
import pytest

from helpers import nncf_kwargs
import openvino as ov
from openvino import opset13 as opset
from pairwise import all_pairs, missing_pairs
from parity import assert_same_as_nncf, compare_ir, compress_and_save
from tiny_models import ARCHITECTURES

pytestmark = pytest.mark.slow

FIXED_GROUP = ("mxfp4", "mxfp8_e4m3", "nvfp4")
FACTORS = {
    "arch": sorted(ARCHITECTURES),
    "mode": ["fp8_e4m3", "fp4", "mxfp4", "mxfp8_e4m3", "nvfp4", "int3_sym", "int2_sym", "cb4"],
    "group_size": [None, -1, 32, 128],
    "ratio": [1.0, 0.6],
    "all_layers": [False, True],
    "backup_mode": [None, "int8_asym", "none", "fp8_e4m3", "mxfp8_e4m3"],
}


def _allowed(row: dict) -> bool:
    return row["mode"] not in FIXED_GROUP or row.get("group_size") is None


ROWS = all_pairs(FACTORS, _allowed)


def _kwargs(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "arch" and v is not None}


def test_rows_cover_every_allowed_pair():
    def possible(pair) -> bool:
        values = dict(pair)
        return not (values.get("mode") in FIXED_GROUP and values.get("group_size", None) is not None)

    assert [pair for pair in missing_pairs(FACTORS, ROWS) if possible(pair)] == []
    assert all(_allowed(row) for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: "-".join(str(v) for v in row.values()))
def test_identical_to_nncf(row, tiny_ir, tmp_path):
    assert_same_as_nncf(tiny_ir(row["arch"]), tmp_path, **_kwargs(row))


@pytest.mark.parametrize("mode", ["mxfp4", "fp8_e4m3", "nvfp4"])
def test_identical_to_nncf_on_f16_weights(mode, tiny_ir, tmp_path):
    assert_same_as_nncf(tiny_ir("llama-fp16"), tmp_path, mode=mode, all_layers=True)


def _edge_weight(rows: int, columns: int, group: int, rng: np.random.Generator) -> np.ndarray:
    """Groups whose largest magnitude is 6 * 2**k or 448 * 2**k, moved by a few float32 ulps (where the ceiling of
    the MX scale's log2 and the eps clamp decide), some all zero, the rest random."""
    weight = (rng.standard_normal((rows, columns)) * 0.02).astype(np.float32)
    groups = weight.reshape(rows, columns // group, group)
    flat = groups.reshape(-1, group)
    for index in range(flat.shape[0]):
        kind = index % 5
        if kind == 4:
            continue
        if kind == 3:
            flat[index] = 0.0
            continue
        base = np.float32((6.0, 448.0, 6.0)[kind] * 2.0 ** int(rng.integers(-30, 4)))
        peak = (base.view(np.int32) + np.int32(rng.integers(-3, 4))).view(np.float32)
        flat[index] *= np.float32(0.5) * peak / max(float(np.max(np.abs(flat[index]))), 1e-30)
        flat[index, int(rng.integers(group))] = peak * np.float32(rng.choice([-1, 1]))
    return groups.reshape(rows, columns)


def _edge_model(rng: np.random.Generator) -> ov.Model:
    """Two MatMuls on the OpenVINO path (at least 10000 elements) and one on the numpy path."""
    x = opset.parameter([1, 3, 256], ov.Type.f32, name="x")
    node = x
    for index, (rows, columns) in enumerate([(256, 256), (96, 256), (32, 96)]):
        weight = opset.constant(_edge_weight(rows, columns, 32, rng), name=f"w{index}")
        node = opset.matmul(node, weight, False, True, name=f"mm{index}")
    return ov.Model([node], [x])


@pytest.mark.parametrize("mode", ["mxfp4", "mxfp8_e4m3", "fp8_e4m3", "fp4", "nvfp4", "int3_sym"])
def test_identical_to_nncf_on_rounding_edges(mode, tmp_path):
    xml = tmp_path / "edges.xml"
    ov.save_model(_edge_model(np.random.default_rng(7)), xml, compress_to_fp16=False)
    kwargs = {"mode": mode, "all_layers": True, "backup_mode": "none"}
    if mode not in FIXED_GROUP:
        kwargs["group_size"] = 32
    assert_same_as_nncf(xml, tmp_path, **kwargs)


def test_fp8_backup_group_size_refused_like_nncf(tiny_ir):
    """FP8_E4M3 backs up in groups of the primary group size: where it does not divide, nncf fails."""
    xml = tiny_ir("llama")
    with pytest.raises(nncf.InvalidGroupSizeError):
        nncf.compress_weights(ov.Core().read_model(xml), mode=nncf.CompressWeightsMode.FP4, group_size=96)
    import optimum_wc

    with pytest.raises(optimum_wc.InvalidGroupSizeError):
        optimum_wc.compress_weights(ov.Core().read_model(xml), mode="fp4", group_size=96, progress=False)


DATA_AWARE = [
    {"mode": "int3_sym", "awq": True, "scale_estimation": True, "group_size": 32},
    {"mode": "int2_sym", "gptq": True, "group_size": 32},
    {"mode": "int3_sym", "scale_estimation": True, "group_size": 64, "ratio": 0.8},
    {"mode": "mxfp4", "ratio": 0.6, "sensitivity_metric": "hessian_input_activation"},
    {"mode": "nvfp4", "ratio": 0.6},
    {"mode": "fp8_e4m3", "ratio": 0.6, "sensitivity_metric": "mean_activation_magnitude", "group_size": 64},
    {"mode": "cb4", "awq": True, "scale_estimation": True, "group_size": 32},
    {"mode": "cb4", "gptq": True},
    {"mode": "codebook", "awq": True, "codebook": "f32-8"},
    {"mode": "codebook", "scale_estimation": True, "codebook": "f32-40"},
    {"mode": "codebook", "gptq": True, "group_size": 64, "codebook": "f16-16"},
    {"mode": "codebook", "gptq": True, "scale_estimation": True, "codebook": "f32-40"},  # u8 codes: no SE
    {"mode": "codebook", "awq": True, "scale_estimation": True, "group_size": 32, "codebook": "f32-40"},
    {"arch": "gpt2", "mode": "int3_sym", "scale_estimation": True, "group_size": 64},  # weights stored [in, out]
    {"arch": "gpt2", "mode": "int2_sym", "awq": True, "scale_estimation": True},
]


@pytest.mark.parametrize("kwargs", DATA_AWARE, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_data_aware_identical_to_nncf(kwargs, tiny_ir, tmp_path):
    from helpers import calibration_items
    import optimum_wc

    kwargs = dict(kwargs)
    xml = tiny_ir(kwargs.pop("arch", "llama"))
    codebook = _codebooks()[kwargs.pop("codebook")] if "codebook" in kwargs else None
    reference_kwargs = nncf_kwargs(kwargs)
    if "sensitivity_metric" in kwargs:
        reference_kwargs["sensitivity_metric"] = nncf.SensitivityMetric(kwargs["sensitivity_metric"])
    if codebook is not None:
        reference_kwargs["advanced_parameters"] = nncf.AdvancedCompressionParameters(codebook=codebook)
        kwargs["advanced_parameters"] = optimum_wc.AdvancedCompressionParameters(codebook=codebook)
    dataset = nncf.Dataset(calibration_items())
    reference = compress_and_save(xml, tmp_path / "nncf", "nncf", dataset=dataset, **reference_kwargs)
    ours = compress_and_save(xml, tmp_path / "ours", "optimum_wc", dataset=calibration_items(), **kwargs)
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "mxfp4", "awq": True},
        {"mode": "nvfp4", "scale_estimation": True},
        {"mode": "fp8_e4m3", "gptq": True},
        {"mode": "mxfp4", "group_size": 64},
        {"mode": "nvfp4", "group_size": 32},
    ],
    ids=str,
)
def test_refused_like_nncf(kwargs, tiny_ir):
    """The same refusals, with nncf's error classes (ours subclass ValueError under the same names)."""
    from helpers import calibration_items
    import optimum_wc

    xml = tiny_ir("llama")
    reference_kwargs = nncf_kwargs(kwargs)
    with pytest.raises(nncf.errors.ValidationError if "group_size" in kwargs else nncf.ParameterNotSupportedError):
        nncf.compress_weights(ov.Core().read_model(xml), dataset=nncf.Dataset(calibration_items()), **reference_kwargs)
    error = optimum_wc.ValidationError if "group_size" in kwargs else optimum_wc.ParameterNotSupportedError
    with pytest.raises(error):
        optimum_wc.compress_weights(ov.Core().read_model(xml), dataset=calibration_items(), progress=False, **kwargs)


def _codebooks() -> dict[str, object]:
    rng = np.random.default_rng(5)
    return {
        "f32-8": np.array([-4, -2, -1, -0.25, 0.25, 1, 2, 4], dtype=np.float32),
        "f16-16": np.sort(rng.standard_normal(16)).astype(np.float16),
        "f32-40": np.sort(rng.standard_normal(40)).astype(np.float32),  # u8 indices
        "f64-5": np.array([-1.0, -0.3, 0.0, 0.4, 1.0]),
        "ov-f32-4": ov.Tensor(np.array([-1.5, -0.5, 0.5, 1.5], dtype=np.float32)),
    }


@pytest.mark.parametrize("name", list(_codebooks()))
@pytest.mark.parametrize("extra", [{}, {"group_size": 32, "ratio": 0.7, "all_layers": True}], ids=["default", "g32"])
def test_codebook_identical_to_nncf(name, extra, tiny_ir, tmp_path):
    import optimum_wc

    codebook = _codebooks()[name]
    xml = tiny_ir("qwen2")
    model = nncf.compress_weights(
        ov.Core().read_model(xml),
        mode=nncf.CompressWeightsMode.CODEBOOK,
        advanced_parameters=nncf.AdvancedCompressionParameters(codebook=codebook),
        **extra,
    )
    reference = tmp_path / "nncf" / "openvino_model.xml"
    reference.parent.mkdir()
    ov.save_model(model, reference, compress_to_fp16=False)
    params = optimum_wc.AdvancedCompressionParameters(codebook=codebook)
    ours = compress_and_save(xml, tmp_path / "ours", "optimum_wc", mode="codebook", advanced_parameters=params, **extra)
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()
