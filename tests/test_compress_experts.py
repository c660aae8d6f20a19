"""Data-aware parity with nncf on hand-built graphs: fused 3-D expert weights (as MoE models export them), weights
stored transposed (the layouts whose sums nncf rounds differently, see ``scale_estimation.py``), and a MatMul
whose output meets a deeper branch (which nncf's scheduler hands to GPTQ twice, see ``nncf_schedule.py``)."""

from __future__ import annotations

import nncf
import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
import optimum_wc
from parity import compare_ir, undo_int16_scales

EXPERTS, HIDDEN, FFN = 4, 64, 96


def _w(rng, *shape):
    return rng.normal(0, 0.1, size=shape).astype(np.float32)


def _linear(x, rng, out: int, inp: int, name: str, transposed: bool, experts: int | None):
    """A MatMul on ``x`` whose weight is ``[(experts,) out, in]`` (``transpose_b``) or stored
    ``[(experts,) in, out]``."""
    lead = () if experts is None else (experts,)
    shape = (*lead, inp, out) if transposed else (*lead, out, inp)
    return opset.matmul(x, opset.constant(_w(rng, *shape), name=f"{name}_w"), False, not transposed, name=name)


def _mlp(transposed: bool, experts: int | None, merge: str, hidden: int = HIDDEN, ffn: int = FFN) -> ov.Model:
    """``down(swish(gate(x)) * up(x))`` on ``x`` ``[experts or 1, tokens, hidden]``; with ``merge="activation"``,
    ``down(relu(gate(x)))``, so that AWQ inserts its scale after the activation rather than folding it into ``up``."""
    rng = np.random.default_rng(7)
    x = opset.parameter([experts or 1, -1, hidden], ov.Type.f32, name="x")
    if merge == "activation":
        hidden_act = opset.relu(_linear(x, rng, ffn, hidden, "gate", transposed, experts), name="act")
    else:
        gate = opset.swish(_linear(x, rng, ffn, hidden, "gate", transposed, experts), name="act")
        hidden_act = opset.multiply(gate, _linear(x, rng, ffn, hidden, "up", transposed, experts))
    down = _linear(hidden_act, rng, hidden, ffn, "down", transposed, experts)
    return ov.Model([down], [x])


def _branch_meets_deeper_branch() -> ov.Model:
    """``shared_down(relu(shared_up(x))) + c(relu(b(relu(a(x)))))``: the shape of GraniteMoeHybrid's shared MLP
    beside its experts."""
    rng = np.random.default_rng(8)
    x = opset.parameter([1, -1, HIDDEN], ov.Type.f32, name="x")
    shared = _linear(
        opset.relu(_linear(x, rng, FFN, HIDDEN, "shared_up", False, None), name="shared_act"),
        rng,
        HIDDEN,
        FFN,
        "shared_down",
        False,
        None,
    )
    deep = opset.relu(_linear(x, rng, FFN, HIDDEN, "a", False, None), name="a_act")
    deep = opset.relu(_linear(deep, rng, FFN, FFN, "b", False, None), name="b_act")
    deep = _linear(deep, rng, HIDDEN, FFN, "c", False, None)
    return ov.Model([_linear(opset.add(shared, deep), rng, HIDDEN, HIDDEN, "out", False, None)], [x])


def _items(experts: int | None, hidden: int = HIDDEN) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.normal(size=(experts or 1, int(t), hidden)).astype(np.float32) for t in rng.integers(3, 9, size=8)]


GRAPHS = {
    "experts": lambda: (_mlp(False, EXPERTS, "matmul"), _items(EXPERTS)),
    "experts-inserted-scale": lambda: (_mlp(False, EXPERTS, "activation"), _items(EXPERTS)),
    "experts-transposed": lambda: (_mlp(True, EXPERTS, "matmul"), _items(EXPERTS)),
    "transposed": lambda: (_mlp(True, None, "matmul"), _items(None)),  # under nncf's OpenVINO-path size
    "transposed-large": lambda: (_mlp(True, None, "matmul", 128, 512), _items(None, 128)),  # above it
    "branch-meets-deeper-branch": lambda: (_branch_meets_deeper_branch(), _items(None)),
}
OPTIONS = {
    "awq+se": dict(mode="int4_asym", awq=True, scale_estimation=True),
    "awq": dict(mode="int4_asym", awq=True),
    "awq-data-free": dict(mode="int4_asym", awq=True, data_free=True),
    "se": dict(mode="int4_sym", scale_estimation=True),
    "gptq+se": dict(mode="int4_sym", gptq=True, scale_estimation=True),
    "gptq": dict(mode="int4_asym", gptq=True),
}
# nncf writes the scales that scale estimation finds for weights stored transposed, from 10000 elements, as i16 (a
# broken model): compared after the repair (parity.undo_int16_scales), which must happen there and nowhere else.
INT16_SCALES = {
    (graph, options) for graph in ("experts-transposed", "transposed-large") for options in ("awq+se", "se")
}
# nncf 3.4.0 fails with an error of its own ("The truth value of an array ... is ambiguous") on asymmetric GPTQ of
# 3-D weights (it tests a list of zero-point tensors for None); ours compresses them, expert by expert.
NNCF_FAILS = {("experts", "gptq"), ("experts-inserted-scale", "gptq")}


def _run(library: str, graph: str, options: dict, tmp_path, repaired: list[str]):
    model, items = GRAPHS[graph]()
    kwargs = {k: v for k, v in options.items() if k != "data_free"}
    kwargs.update(group_size=32, ratio=1.0, all_layers=True)
    if not options.get("data_free"):
        kwargs["dataset"] = nncf.Dataset(items) if library == "nncf" else items
    try:
        if library == "nncf":
            nncf.compress_weights(model, **{**kwargs, "mode": nncf.CompressWeightsMode(kwargs["mode"])})
            repaired.extend(undo_int16_scales(model))
        else:
            optimum_wc.compress_weights(model, progress=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - compared by the caller
        return exc
    path = tmp_path / library / "openvino_model.xml"
    ov.save_model(model, path, compress_to_fp16=False)
    return path


@pytest.mark.parametrize("options", sorted(OPTIONS))
@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_identical_to_nncf(graph, options, tmp_path):
    repaired: list[str] = []
    reference = _run("nncf", graph, OPTIONS[options], tmp_path, repaired)
    ours = _run("optimum_wc", graph, OPTIONS[options], tmp_path, [])
    if (graph, options) in NNCF_FAILS:
        assert isinstance(reference, ValueError) and "ambiguous" in str(reference), reference
        assert _error(ours, graph) < _error(
            _run("optimum_wc", graph, {"mode": "int4_asym", "data_free": True}, tmp_path / "data-free", []), graph
        )
        return
    if isinstance(reference, Exception) or isinstance(ours, Exception):
        assert isinstance(reference, Exception) and isinstance(ours, Exception), f"nncf: {reference!r}; ours: {ours!r}"
        return
    assert bool(repaired) == ((graph, options) in INT16_SCALES), f"nncf's i16 scales: {repaired}"
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


def _error(xml, graph: str) -> float:
    """Relative output error of the saved model ``xml`` to the float graph, on its calibration items."""
    model, items = GRAPHS[graph]()
    reference, compressed = ov.Core().compile_model(model, "CPU"), ov.Core().compile_model(xml, "CPU")
    expected = np.concatenate([reference(item)[0].ravel() for item in items])
    got = np.concatenate([compressed(item)[0].ravel() for item in items])
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def test_scales_of_transposed_experts_are_float16_and_improve_on_data_free(tmp_path):
    """Where nncf's model is broken (its scales read as integers), ours is more accurate than without data."""
    model, items = GRAPHS["experts-transposed"]()
    compiled = ov.Core().compile_model(model, "CPU")
    reference = np.concatenate([compiled(item)[0].ravel() for item in items])

    def error(**options) -> float:
        compressed, _ = GRAPHS["experts-transposed"]()
        optimum_wc.compress_weights(
            compressed, mode="int4_asym", group_size=32, ratio=1.0, all_layers=True, progress=False, **options
        )
        scales = [op for op in compressed.get_ops() if op.get_friendly_name().endswith("/scale")]
        assert scales and all(op.get_output_element_type(0) == ov.Type.f16 for op in scales)
        run = ov.Core().compile_model(compressed, "CPU")
        out = np.concatenate([run(item)[0].ravel() for item in items])
        return float(np.linalg.norm(out - reference) / np.linalg.norm(reference))

    assert error(scale_estimation=True, dataset=items) < error()
