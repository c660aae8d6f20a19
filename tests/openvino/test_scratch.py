"""Compressed codes moved to memory-mapped temporary IRs: the same IR bytes, and nothing left on disk."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
import optimum_wc
from optimum_wc.openvino import scratch as scratch_module


@pytest.mark.parametrize(
    "mode, extra", [("int4_asym", {"group_size": 32, "ratio": 0.8}), ("int8_sym", {}), ("nf4", {})]
)
def test_same_bytes_and_outputs_with_and_without_scratch(mode, extra, tiny_ir, tmp_path, monkeypatch):
    xml = tiny_ir("llama")
    monkeypatch.setattr(scratch_module, "CHUNK_BYTES", 20_000)  # several chunks on a tiny model
    outputs, logits = [], []
    ids = {
        "input_ids": np.array([[1, 5, 7, 9]]),
        "attention_mask": np.ones((1, 4), np.int64),
        "position_ids": np.arange(4)[None],
        "beam_idx": np.array([0], np.int32),
    }
    for folder, options in (("plain", {}), ("scratch", {"scratch_dir": tmp_path / "s"})):
        (tmp_path / "s").mkdir(exist_ok=True)
        model = ov.Core().read_model(xml)
        optimum_wc.compress_weights(model, mode=mode, progress=False, **extra, **options)
        gc.collect()
        logits.append(ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(ids)[0])
        ov.save_model(model, tmp_path / folder / "m.xml", compress_to_fp16=False)
        outputs.append((tmp_path / folder / "m.bin").read_bytes())
        del model
    assert outputs[0] == outputs[1] and np.array_equal(logits[0], logits[1])
    assert list((tmp_path / "s").iterdir()) == []  # the temporary IRs are gone

    held = []
    original = scratch_module.ScratchIR.hold
    monkeypatch.setattr(
        scratch_module.ScratchIR,
        "hold",
        lambda self, c, shared=None: held.append(c.get_friendly_name()) or original(self, c, shared),
    )
    monkeypatch.setattr("optimum_wc.compress.spill_threshold", lambda: 1)  # the large-model behaviour, on a tiny model
    model = ov.Core().read_model(xml)
    optimum_wc.compress_weights(model, mode=mode, progress=False, **extra)
    records = optimum_wc.pipeline.rt_info.read_layer_records(model)
    assert set(records) <= set(held) and held  # every weight's codes (and zero points) went through the scratch IR
    ours = [op for op in model.get_ops() if op.get_type_name() == "Constant" and op.get_friendly_name() in held]
    assert len(ours) == len(set(held)) and all(map(_mapped_from_scratch, ours))  # none left in anonymous memory
    ov.save_model(model, tmp_path / "auto" / "m.xml", compress_to_fp16=False)
    assert (tmp_path / "auto" / "m.bin").read_bytes() == outputs[0]


def _mapped_from_scratch(constant: ov.Node) -> bool:
    """Whether the Constant's bytes lie in a memory mapping of one of our (unlinked) scratch files."""
    address = constant.get_tensor_view().data.ctypes.data
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high:
                return len(fields) > 5 and "optimum-wc-scratch-" in fields[5]
    return False


def test_compress_weights_takes_the_path_of_an_ir(tiny_ir, tmp_path, monkeypatch):
    from optimum_wc.errors import CorruptModelError, InvalidArgumentTypeError

    xml = tiny_ir("llama")
    expected = optimum_wc.compress_weights(ov.Core().read_model(xml), mode="int4_sym", progress=False)
    ov.save_model(expected, tmp_path / "a.xml", compress_to_fp16=False)
    held = []
    original = scratch_module.ScratchIR.hold
    monkeypatch.setattr(
        scratch_module.ScratchIR, "hold", lambda self, c, shared=None: held.append(c) or original(self, c, shared)
    )
    for source in (xml, str(xml.parent)):  # the .xml, or its folder
        held.clear()
        model = optimum_wc.compress_weights(source, mode="int4_sym", progress=False)
        assert held  # the codes went through the scratch IRs
        ov.save_model(model, tmp_path / "b.xml", compress_to_fp16=False)
        assert (tmp_path / "b.bin").read_bytes() == (tmp_path / "a.bin").read_bytes()
    assert xml.with_suffix(".bin").stat().st_size > (tmp_path / "b.bin").stat().st_size  # the input is untouched
    with pytest.raises(CorruptModelError, match="does not exist"):
        optimum_wc.compress_weights(tmp_path / "missing.xml", mode="int8_asym")
    with pytest.raises(InvalidArgumentTypeError, match="openvino.Model or the path of an IR"):
        optimum_wc.compress_weights(42)


def test_from_pretrained_and_the_cli_use_the_scratch_irs_for_large_models(tiny_ir, tmp_path, monkeypatch):
    from optimum_wc.cli import main

    held = []
    original = scratch_module.ScratchIR.hold
    monkeypatch.setattr(
        scratch_module.ScratchIR, "hold", lambda self, c, shared=None: held.append(c) or original(self, c, shared)
    )
    monkeypatch.setattr("optimum_wc.compress.spill_threshold", lambda: 1)  # "large"
    model = optimum_wc.OVModelForCausalLM.from_pretrained(tiny_ir("llama").parent, load_in_8bit=True, compile=False)
    assert held and model.quantization_config.mode.value == "int8_asym"
    held.clear()
    assert main(["export", str(tiny_ir("llama").parent), str(tmp_path / "out"), "--weight-format", "int4"]) == 0
    assert held and (tmp_path / "out" / "openvino_model.xml").is_file()


def _raw(constant: ov.Node) -> bytes:
    return bytes(np.ascontiguousarray(constant.data).reshape(-1).view(np.uint8))


def test_chunk_irs_written_here_read_back_every_element_type_name_and_shape(tmp_path):
    """The chunk IRs are written by our own writer: every element type the compression stores, packed sub-byte
    types with odd sizes, a scalar, names that need XML escaping: the mapped Constants are the same."""
    rng = np.random.default_rng(0)
    constants = []
    for bits_type, shape in (
        (ov.Type.u4, [5, 3, 7]),
        (ov.Type.i4, [4, 4]),
        (ov.Type.nf4, [3, 3]),
        (ov.Type.u3, [8, 2]),
    ):
        raw = rng.integers(0, 256, (int(np.prod(shape)) * bits_type.bitwidth + 7) // 8, dtype=np.uint8)
        constants.append(ov.op.Constant(ov.Tensor(raw, shape, bits_type), shared_memory=False))
    for dtype, shape in (
        (np.float16, [3]),
        (np.float32, []),
        (np.uint8, [9]),
        (np.int8, [2, 2]),
        (np.uint16, [3]),
        (np.int32, [4]),
    ):
        constants.append(ov.op.Constant(rng.standard_normal(shape).astype(np.float32).astype(dtype).reshape(shape)))
    bf16 = ov.Tensor(ov.Type.bf16, [2, 5])
    bf16.data.view(np.uint16)[...] = rng.integers(0, 2**15, (2, 5), dtype=np.uint16)
    constants.append(ov.op.Constant(bf16, shared_memory=False))
    for index, constant in enumerate(constants):
        constant.set_friendly_name(f"w{index} <&\"'> /x é")
    expected = [
        (c.get_friendly_name(), c.get_output_element_type(0), list(c.get_output_shape(0)), _raw(c)) for c in constants
    ]
    model = ov.Model([opset.result(c) for c in constants], [])
    with scratch_module.ScratchIR(tmp_path) as scratch:
        for constant in constants:
            scratch.hold(constant)
    mapped = [r.input_value(0).get_node() for r in model.get_results()]
    assert not any(m is c for m, c in zip(mapped, constants))  # replaced by the mapped ones
    got = [(c.get_friendly_name(), c.get_output_element_type(0), list(c.get_output_shape(0)), _raw(c)) for c in mapped]
    assert got == expected
    assert list(tmp_path.iterdir()) == []

    kept = ov.op.Constant(np.ones(3, np.float32))
    kept.get_rt_info()["origin"] = "kept"  # the chunk IRs would drop it: such a Constant is not moved
    model = ov.Model([opset.result(kept)], [])
    with scratch_module.ScratchIR(tmp_path) as scratch:
        scratch.hold(kept)
    assert "origin" in model.get_results()[0].input_value(0).get_node().get_rt_info()
