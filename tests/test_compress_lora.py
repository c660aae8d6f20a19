"""LoRA correction (``lora_correction=True``): the same IR as nncf 3.4.0 for each mode and option it takes, and
nncf's refusals, made before any work (where nncf fails only once it meets the layer, or fails with a crash)."""

from __future__ import annotations

import nncf
import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
import optimum_wc
from pairwise import all_pairs, missing_pairs
from parity import compare_ir, compress_and_save
from tiny_models import ARCHITECTURES

# pairwise over the options nncf takes with LoRA correction ("lora": its parameters, "ignored": a pattern)
FACTORS = {
    "arch": sorted(ARCHITECTURES),
    "mode": ["int4_sym", "int4_asym", "int3_sym", "int2_sym", "nf4"],
    "group_size": [-1, 32, 128],
    "ratio": [1.0, 0.6],
    "backup_mode": ["int8_asym", "none", "int8_sym", "fp8_e4m3"],
    "awq": [False, True],
    "scale_estimation": [False, True],
    "ignored": [None, ".*(mlp|fc[12]).*"],  # the MLPs (opt's are fc1 and fc2)
    "adapter_rank": [8, 4],
    "num_iterations": [3, 0, 1],
    "apply_regularization": [True, False],
    "use_int8_adapters": [True, False],
    "subset_size": [128, 3],
}
LORA_FIELDS = ("adapter_rank", "num_iterations", "apply_regularization", "use_int8_adapters", "subset_size")
ROWS = all_pairs(FACTORS)


def _case(row: dict) -> dict:
    """A row as a case of ``_pair``."""
    case = {k: v for k, v in row.items() if k not in LORA_FIELDS and v is not None and v is not False}
    case["lora"] = {k: row[k] for k in LORA_FIELDS}
    return case


def test_rows_cover_every_pair():
    assert missing_pairs(FACTORS, ROWS) == []


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=lambda row: "-".join(str(v) for v in row.values()))
def test_identical_to_nncf_pairwise(row, tiny_ir, tmp_path):
    from helpers import calibration_items

    case = _case(row)
    xml = tiny_ir(case.pop("arch"))
    theirs, ours = _pair(case)
    reference = compress_and_save(xml, tmp_path / "nncf", "nncf", dataset=nncf.Dataset(calibration_items()), **theirs)
    candidate = compress_and_save(xml, tmp_path / "ours", "optimum_wc", dataset=calibration_items(), **ours)
    report = compare_ir(reference, candidate)
    assert report.identical, report.describe()


# beyond the pairwise rows: f16 weights, the ADJUST fallback, a codebook whose u8 indices get no adapters
CASES = [
    {"arch": "llama-fp16", "mode": "int4_sym", "ratio": 0.6, "awq": True, "scale_estimation": True},
    {"mode": "int4_sym", "group_size": 96, "fallback": "adjust", "lora": {"num_iterations": 1}},
    {"mode": "codebook", "codebook": np.linspace(-1, 1, 40, dtype=np.float32)},
]


def _pair(case: dict) -> tuple[dict, dict]:
    """nncf's arguments and ours for a case."""
    case = dict(case)
    lora, fallback = case.pop("lora", {}), case.pop("fallback", None)
    codebook, ignored = case.pop("codebook", None), case.pop("ignored", None)
    kwargs = []
    for lib in (nncf, optimum_wc):
        args = dict(case, lora_correction=True)
        if "mode" in args:
            args["mode"] = lib.CompressWeightsMode(args["mode"])
        if "backup_mode" in args:
            args["backup_mode"] = lib.BackupMode(args["backup_mode"])
        if ignored:
            args["ignored_scope"] = lib.IgnoredScope(patterns=[ignored])
        advanced = {"lora_correction_params": lib.AdvancedLoraCorrectionParameters(**lora), "codebook": codebook}
        if fallback:
            advanced["group_size_fallback_mode"] = lib.GroupSizeFallbackMode(fallback)
        args["advanced_parameters"] = lib.AdvancedCompressionParameters(**advanced)
        kwargs.append(args)
    return kwargs[0], kwargs[1]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for k, v in c.items() if k != "codebook"))
def test_identical_to_nncf(case, tiny_ir, tmp_path):
    from helpers import calibration_items

    case = dict(case)
    xml = tiny_ir(case.pop("arch", "llama"))
    theirs, ours = _pair(case)
    reference = compress_and_save(xml, tmp_path / "nncf", "nncf", dataset=nncf.Dataset(calibration_items()), **theirs)
    candidate = compress_and_save(xml, tmp_path / "ours", "optimum_wc", dataset=calibration_items(), **ours)
    report = compare_ir(reference, candidate)
    assert report.identical, report.describe()
    adapters = [op for op in ov.Core().read_model(candidate).get_ops() if op.get_friendly_name().endswith("_lora_A")]
    expected = 0 if "codebook" in case else 1
    assert (len(adapters) > 0) == (expected and case.get("lora", {}).get("use_int8_adapters", True))


def test_the_adapters_bring_the_model_closer_to_float(tiny_ir):
    from helpers import calibration_items, logits_error, model_logits

    xml = tiny_ir("llama")
    items = calibration_items()
    reference = model_logits(ov.Core().read_model(xml), items)
    errors = {}
    for lora in (False, True):
        model = optimum_wc.compress_weights(
            ov.Core().read_model(xml), mode="int2_sym", dataset=items, lora_correction=lora, progress=False
        )
        errors[lora] = logits_error(reference, model_logits(model, items))
    assert errors[True] < errors[False]


@pytest.mark.parametrize(
    "kwargs, theirs, ours",
    [
        ({"mode": "cb4"}, nncf.InternalError, optimum_wc.InternalError),
        # nncf fails with a KeyError, looking for the embedding's inputs: a clear refusal here
        ({"mode": "int4_sym", "all_layers": True}, KeyError, optimum_wc.ParameterNotSupportedError),
    ],
    ids=["cb4", "4-bit-embedding"],
)
def test_refused_before_any_work(kwargs, theirs, ours, tiny_ir, monkeypatch):
    from helpers import calibration_items, nncf_kwargs

    xml = tiny_ir("llama")
    with pytest.raises(theirs):
        nncf.compress_weights(
            ov.Core().read_model(xml),
            dataset=nncf.Dataset(calibration_items()),
            lora_correction=True,
            **nncf_kwargs(kwargs),
        )
    _forbid_statistics(monkeypatch)
    with pytest.raises(ours):
        optimum_wc.compress_weights(
            ov.Core().read_model(xml), dataset=calibration_items(), lora_correction=True, progress=False, **kwargs
        )


def _forbid_statistics(monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("statistics were collected before the refusal")

    monkeypatch.setattr("optimum_wc.pipeline.data_aware.input_statistics", boom)


def test_inputs_zero_in_a_whole_group_fail_as_in_nncf_naming_the_layer():
    model, items = _matmul_model(False, None)
    for item in items:
        item[..., :32] = 0  # the first group of channels: its magnitudes normalize to 0 / 0
    arguments = {"group_size": 32, "ratio": 1.0, "all_layers": True, "lora_correction": True}
    with pytest.raises(np.linalg.LinAlgError):
        nncf.compress_weights(
            model.clone(), mode=nncf.CompressWeightsMode.INT4_ASYM, dataset=nncf.Dataset(items), **arguments
        )
    with pytest.raises(np.linalg.LinAlgError, match="LoRA correction of mm failed"):
        optimum_wc.compress_weights(model, mode="int4_asym", dataset=items, progress=False, **arguments)


def _matmul_model(transpose_a: bool, experts: int | None) -> tuple[ov.Model, list[np.ndarray]]:
    rng = np.random.default_rng(1)
    lead = (experts or 1,)
    x = opset.parameter([*lead, -1, 64], ov.Type.f32, name="x")
    source = opset.transpose(x, opset.constant(np.array([0, 2, 1]))) if transpose_a else x
    shape = (experts, 32, 64) if experts else (32, 64)
    weight = opset.constant(rng.normal(0, 0.1, shape).astype(np.float32), name="w")
    y = opset.matmul(source, weight, transpose_a, True, name="mm")
    items = [rng.normal(size=(*lead, 6 + i, 64)).astype(np.float32) for i in range(4)]
    return ov.Model([y], [x]), items


@pytest.mark.parametrize("transpose_a, experts", [(True, None), (False, 4)], ids=["transposed-input", "experts"])
def test_unsupported_models_are_refused(transpose_a, experts, monkeypatch):
    """nncf refuses transposed activations with UnsupportedModelError, and fails inside numpy on fused experts."""
    model, items = _matmul_model(transpose_a, experts)
    with pytest.raises(nncf.UnsupportedModelError if transpose_a else ValueError):
        nncf.compress_weights(
            model.clone(),
            mode=nncf.CompressWeightsMode.INT4_ASYM,
            group_size=32,
            ratio=1.0,
            all_layers=True,
            dataset=nncf.Dataset(items),
            lora_correction=True,
        )
    _forbid_statistics(monkeypatch)
    with pytest.raises(optimum_wc.UnsupportedModelError):
        optimum_wc.compress_weights(
            model,
            mode="int4_asym",
            group_size=32,
            ratio=1.0,
            all_layers=True,
            dataset=items,
            lora_correction=True,
            progress=False,
        )
