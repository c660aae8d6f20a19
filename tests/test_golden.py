"""Our compressed IR against the digests of nncf 3.4.0's for ten data-free configurations (tests/golden.py): the
parity oracle, kept in the repository, without nncf."""

from __future__ import annotations

import json

import pytest

from golden import CONFIGS, DIGESTS, arguments, digest, golden_model
import optimum_wc

GOLDEN = json.loads(DIGESTS.read_text())


def test_the_input_graph_is_the_one_the_digests_were_made_from():
    assert GOLDEN["nncf"] == "3.4.0" and digest(golden_model()) == GOLDEN["input"]
    assert sorted(GOLDEN) == sorted([*CONFIGS, "input", "nncf"])


@pytest.mark.parametrize("name", CONFIGS)
def test_ours_matches_nncfs_golden_digest(name):
    model = optimum_wc.compress_weights(golden_model(), progress=False, **arguments(CONFIGS[name], "optimum_wc"))
    assert digest(model) == GOLDEN[name]
