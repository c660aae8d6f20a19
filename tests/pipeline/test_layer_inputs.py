"""What GPTQ and SpQR keep of a MatMul input, and the batches of weights that share one."""

import threading

import numpy as np

from optimum_wc.algorithms.gptq import Hessian, invert_hessian
from optimum_wc.config.enums import CompressWeightsMode
from optimum_wc.config.settings import LayerPrecision
from optimum_wc.pipeline.layer_inputs import LayerInputs, batches
from optimum_wc.pipeline.planning import WeightPlan


def _weight(name: str, mode: CompressWeightsMode, group_size: int) -> WeightPlan:
    return WeightPlan(target=name, precision=LayerPrecision(mode, group_size))  # only the precision is read


def test_batches_group_by_shared_inputs_and_precision_in_order_of_first_appearance():
    first, second = object(), object()
    sym, asym = CompressWeightsMode.INT4_SYM, CompressWeightsMode.INT4_ASYM
    weights = {
        "q": _weight("q", sym, 32),
        "o": _weight("o", sym, 32),
        "k": _weight("k", sym, 32),
        "v": _weight("v", sym, 64),
        "g": _weight("g", asym, 32),
    }
    inputs = {"q": first, "k": first, "v": first, "g": first, "o": second}
    grouped = batches(list(weights.values()), lambda w: inputs[w.target])
    assert [([w.target for w in batch], shared) for batch, shared in grouped] == [
        (["q", "k"], first),
        (["o"], second),
        (["v"], first),
        (["g"], first),
    ]


def test_layer_inputs_give_nncfs_hessian_and_item_means_and_invert_it_once():
    rng = np.random.default_rng(0)
    items = [rng.normal(size=(1, int(n), 8)).astype(np.float32) for n in (3, 5, 4)]
    inputs, reference = LayerInputs(8, keep_means=True), Hessian(8)
    for item in items:
        inputs.add(item)
        reference.add(item)
    np.testing.assert_array_equal(inputs.hessian.matrix, reference.matrix)
    for mean, item in zip(inputs.means, items):
        np.testing.assert_array_equal(mean, item.mean(axis=(0, 1)))
    assert inputs.tokens == [3, 5, 4]
    expected = invert_hessian(reference.matrix, 0.1)
    results = []
    threads = [threading.Thread(target=lambda: results.append(inputs.inverse(0.1, False))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result is results[0] for result in results) and inputs.hessian is None
    np.testing.assert_array_equal(results[0].upper, expected.upper)
