"""AWQ, scale estimation and GPTQ through ``compress_weights``: parity with nncf 3.4.0 on tiny exported models.

Stated tolerance: none. AWQ (data-aware and data-free), scale estimation and GPTQ give byte-identical IRs: the
statistics are computed in the model by the same ReduceMean nncf inserts, GPTQ's layer inputs come from the same
extracted subgraphs, and the arithmetic is nncf's, in float32. This matters because GPTQ is chaotic in its inputs
(a 1e-7 relative change of the activations moves about half of the codes of a layer). One deliberate
difference: when AWQ inserts a Multiply (``activation -> MatMul`` patterns, e.g. OPT's ReLU -> fc2), nncf's GPTQ
reads that MatMul's input *before* the Multiply, so it fits ``W diag(c)`` to the wrong inputs; we use the real
input, and ``test_awq_then_gptq_on_inserted_scales_is_not_worse_than_nncf`` shows the result is not worse.
"""

from __future__ import annotations

import nncf
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from helpers import calibration_items
import openvino as ov
import optimum_wc
from parity import compare_ir, compress_and_save, differing_share

pytestmark = pytest.mark.slow  # data-aware compression beside nncf's, for several thread counts

IDENTICAL = [
    # arch, mode, group size, options
    ("llama", "int4_sym", 64, {"awq": True}),
    ("llama", "int4_asym", 32, {"awq": True, "dataset": None}),
    ("opt", "int4_sym", 32, {"awq": True, "dataset": None}),
    ("opt", "nf4", 64, {"awq": True}),
    ("opt", "int4_asym", -1, {"awq": True, "scale_estimation": True}),
    ("qwen2", "nf4", 128, {"awq": True, "scale_estimation": True}),
    ("llama", "int4_sym", 64, {"scale_estimation": True, "ratio": 0.7}),
    ("llama-fp16", "int4_asym", 64, {"awq": True, "scale_estimation": True}),
    ("llama", "int4_asym", -1, {"gptq": True}),
    ("llama", "int4_sym", 64, {"gptq": True, "scale_estimation": True}),
    ("qwen2", "int4_asym", 32, {"awq": True, "gptq": True, "scale_estimation": True}),
    ("opt", "int4_sym", 128, {"gptq": True}),
    ("gpt2", "nf4", 32, {"gptq": True}),
    ("llama", "nf4", 64, {"gptq": True, "scale_estimation": True}),  # nncf's GPTQ estimates integer scales only
]


def _run_both(xml, tmp_path, mode, group_size, options, items=8, first_length=None):
    options = dict(options)
    with_data = options.pop("dataset", True)

    def dataset():
        chosen = calibration_items(items)
        if first_length is not None:
            chosen[0] = {key: v if key == "beam_idx" else v[:, :first_length] for key, v in chosen[0].items()}
        return {"dataset": nncf.Dataset(chosen)} if with_data else {}

    reference = compress_and_save(
        xml,
        tmp_path / "nncf",
        "nncf",
        mode=nncf.CompressWeightsMode(mode),
        group_size=group_size,
        **dataset(),
        **options,
    )
    ours = compress_and_save(
        xml, tmp_path / "ours", "optimum_wc", mode=mode, group_size=group_size, **dataset(), **options
    )
    return reference, ours


def _ids(case):
    arch, mode, group_size, options = case
    return f"{arch}-{mode}-g{group_size}-" + "+".join(k for k, v in options.items() if v is not None and k != "ratio")


@pytest.mark.parametrize("case", IDENTICAL, ids=[_ids(c) for c in IDENTICAL])
def test_identical_to_nncf(case, tiny_ir, tmp_path):
    arch, mode, group_size, options = case
    reference, ours = _run_both(tiny_ir(arch), tmp_path, mode, group_size, options)
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


@pytest.mark.parametrize("options", [{"awq": True, "scale_estimation": True}, {"gptq": True}], ids=["awq+se", "gptq"])
def test_identical_to_nncf_with_an_item_of_one_token(options, tiny_ir, tmp_path):
    """An item of one token takes OpenVINO's path for one-token attention, which depends on how the model is built."""
    reference, ours = _run_both(tiny_ir("llama"), tmp_path, "int4_sym", 16, options, items=6, first_length=1)
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


def _continued_items(first_reset: bool) -> list[dict]:
    """Three sequences, each a prompt then two single tokens that carry on its state (nncf's reset key False)."""
    rng = np.random.default_rng(3)
    items = []
    for _ in range(3):
        ids = rng.integers(3, 500, size=(1, 12))
        start = int(rng.integers(3, 8))
        for end in (start, start + 1, start + 2):
            begin = 0 if end == start else end - 1
            items.append(
                {
                    "input_ids": ids[:, begin:end],
                    "attention_mask": np.ones((1, end), dtype=np.int64),
                    "position_ids": np.arange(begin, end)[None],
                    "beam_idx": np.zeros(1, dtype=np.int32),
                    "nncf_reset_state": first_reset and end == start,
                }
            )
    return items


@pytest.mark.parametrize(
    "options, first_reset",
    [({"awq": True, "scale_estimation": True}, True), ({"awq": True, "gptq": True}, False)],
    ids=["awq+se", "awq+gptq"],  # nncf's GPTQ refuses a reset ("Cannot reset state of a stateless model")
)
def test_identical_to_nncf_with_items_that_carry_on_the_state(options, first_reset, tiny_ir, tmp_path):
    xml = tiny_ir("llama")
    common = {"group_size": 16, "ratio": 0.8, **options}
    items = _continued_items(first_reset)
    reference = compress_and_save(
        xml, tmp_path / "nncf", "nncf", mode=nncf.CompressWeightsMode.INT4_SYM, dataset=nncf.Dataset(items), **common
    )
    ours = compress_and_save(xml, tmp_path / "ours", "optimum_wc", mode="int4_sym", dataset=items, **common)
    report = compare_ir(reference, ours)
    assert report.identical, report.describe()


# Cases whose products are large enough on "llama-wide" for OpenBLAS to split them between threads.
THREADED = [
    ("int4_sym", 128, {"gptq": True, "scale_estimation": True}),
    ("int4_asym", 64, {"awq": True, "scale_estimation": True}),
    ("int4_asym", 128, {"awq": True, "gptq": True}),
]


@pytest.mark.parametrize("blas_threads", [1, 2])
@pytest.mark.parametrize("case", THREADED, ids=[_ids(("llama-wide", *c)) for c in THREADED])
def test_identical_to_nncf_for_each_blas_thread_count_and_any_workers(case, blas_threads, tiny_ir, tmp_path):
    """Under one BLAS setting (kernel and thread count) our bytes are nncf's under it, for 1 and 2 workers. The
    setting itself may change both (OpenBLAS's Haswell kernel sums edge tiles by thread), never one alone."""
    mode, group_size, options = case
    xml = tiny_ir("llama-wide")
    items = calibration_items(12)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        reference = compress_and_save(
            xml,
            tmp_path / "nncf",
            "nncf",
            mode=nncf.CompressWeightsMode(mode),
            group_size=group_size,
            dataset=nncf.Dataset(items),
            **options,
        )
        for workers in (1, 2):
            ours = compress_and_save(
                xml,
                tmp_path / f"ours{workers}",
                "optimum_wc",
                mode=mode,
                group_size=group_size,
                dataset=items,
                num_workers=workers,
                **options,
            )
            report = compare_ir(reference, ours)
            assert report.identical, f"{workers} workers: {report.describe()}"


def _mean_kl(reference_xml, candidate_xml) -> float:
    core = ov.Core()

    def logits(xml):
        request = core.compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
        rows = []
        for item in calibration_items(32, seed=7):  # held-out items
            request.reset_state()
            request.infer(item)
            rows.append(request.get_output_tensor(0).data[0].astype(np.float64))
        return np.concatenate(rows)

    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    p, q = log_softmax(logits(reference_xml)), log_softmax(logits(candidate_xml))
    return float(np.mean(np.sum(np.exp(p) * (p - q), axis=-1)))


@pytest.mark.parametrize("mode, group_size", [("int4_sym", 128), ("int4_asym", 64)])
def test_awq_then_gptq_on_inserted_scales_is_not_worse_than_nncf(mode, group_size, tiny_ir, tmp_path):
    xml = tiny_ir("opt")
    reference, ours = _run_both(xml, tmp_path, mode, group_size, {"awq": True, "gptq": True}, items=32)
    assert not compare_ir(reference, ours).identical  # the deliberate difference is real on this model...
    assert _mean_kl(xml, ours) <= _mean_kl(xml, reference) * 1.01  # ...and does not cost accuracy


def test_data_aware_algorithms_change_the_weights(tiny_ir, tmp_path):
    """The parity above is not vacuous: each algorithm moves the model away from plain min-max INT4."""
    xml = tiny_ir("llama")
    plain = compress_and_save(xml, tmp_path / "plain", "optimum_wc", mode="int4_sym", group_size=64)
    for options in [{"awq": True}, {"scale_estimation": True}, {"gptq": True}]:
        candidate = compress_and_save(
            xml,
            tmp_path / "-".join(options),
            "optimum_wc",
            mode="int4_sym",
            group_size=64,
            dataset=calibration_items(),
            **options,
        )
        assert any(differing_share(plain, candidate).values()), options


def test_awq_inserts_the_named_multiply_where_it_cannot_fold(tiny_ir):
    model = ov.Core().read_model(tiny_ir("opt"))
    optimum_wc.compress_weights(model, mode="int4_sym", group_size=32, awq=True, progress=False)
    names = {op.get_friendly_name(): op for op in model.get_ops()}
    inserted = [n for n in names if n.endswith("/awq_mul")]
    assert len(inserted) == 2 and all(names[n].get_type_name() == "Multiply" for n in inserted)
    assert all(f"{n}/scale" in names for n in inserted)


@pytest.mark.parametrize(
    "options, text",
    [
        ({"scale_estimation": True}, "dataset"),
        ({"gptq": True}, "dataset"),
        ({"awq": True, "mode": "int8_asym"}, "awq"),
        ({"gptq": True, "lora_correction": True, "dataset": [{}]}, "gptq"),
    ],
    ids=["se-without-data", "gptq-without-data", "awq-int8", "gptq-and-lora"],
)
def test_bad_combinations_are_refused_before_any_change(options, text, tiny_ir):
    model = ov.Core().read_model(tiny_ir("llama"))
    before = {op.get_friendly_name() for op in model.get_ops()}
    options = {"mode": "int4_sym", **options}
    with pytest.raises(ValueError, match=text):
        optimum_wc.compress_weights(model, progress=False, **options)
    assert {op.get_friendly_name() for op in model.get_ops()} == before
