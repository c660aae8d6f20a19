"""The search space: validation, expansion into runnable candidates, NNCF-style names, and the CLI's KEY=V1,V2."""

from __future__ import annotations

import itertools

import pytest

from optimum_wc import CompressionSettings, CompressWeightsMode
from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError
from optimum_wc.tuning import Candidate, SearchSpace, parse_search


def test_default_grid_is_data_free_and_folds_int8_into_one_candidate():
    candidates = SearchSpace().candidates()
    four_bit = [c for c in candidates if c.mode != CompressWeightsMode.INT8_ASYM]
    assert len(four_bit) == 3 * 4 * 3 * 2  # modes x group sizes x ratios x all_layers
    assert [c for c in candidates if c not in four_bit] == [Candidate(CompressWeightsMode.INT8_ASYM)]
    assert not any(c.data_aware for c in candidates)
    assert len(set(candidates)) == len(candidates)


def test_names_follow_nncf_and_list_what_differs_from_the_defaults():
    assert Candidate(CompressWeightsMode.INT4_ASYM, 64, 0.8).name == "INT4_ASYM,group_size=64,ratio=0.8"
    candidate = Candidate(CompressWeightsMode.INT4_SYM, -1, 1.0, all_layers=True, awq=True, gptq=True)
    assert candidate.name == "INT4_SYM,group_size=-1,ratio=1.0,all_layers,awq,gptq"
    assert Candidate(CompressWeightsMode.INT8_SYM).name == "INT8_SYM"
    assert candidate.sizing() == Candidate(CompressWeightsMode.INT4_SYM, -1, 1.0, all_layers=True)
    assert candidate.compute_cost > Candidate(CompressWeightsMode.INT4_SYM, awq=True).compute_cost > 0


def test_every_candidate_is_accepted_by_compress_weights_and_every_grid_point_is_covered():
    space = SearchSpace(
        modes=("int4_sym", "nf4", "int8_sym"),
        group_sizes=(64,),
        ratios=(1.0, 0.5),
        awq=(False, True),
        scale_estimation=(False, True),
        gptq=(False, True),
    )
    candidates = space.candidates()
    for candidate in candidates:
        options = candidate.compress_kwargs()
        if candidate.data_aware:
            options["dataset"] = [{}]
        CompressionSettings.from_arguments(**options)  # does not raise
    grid = itertools.product(("int4_sym", "nf4"), (1.0, 0.5), (False, True), (False, True), (False, True))
    expected = {(mode, ratio, awq, se, gptq) for mode, ratio, awq, se, gptq in grid}
    found = {
        (c.mode.value, c.ratio, c.awq, c.scale_estimation, c.gptq) for c in candidates if c.mode.value != "int8_sym"
    }
    assert found == expected
    assert [c.name for c in candidates if c.mode.value == "int8_sym"] == ["INT8_SYM"]  # no data-aware INT8
    assert space.data_aware and not SearchSpace().data_aware


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"modes": ()}, InvalidArgumentError, "`modes` must list at least one value"),
        ({"modes": ("int3",)}, ValueError, "`modes`=.int3. is not a CompressWeightsMode. Allowed: INT8_SYM"),
        ({"group_sizes": (0,)}, InvalidArgumentError, "`group_sizes` values must be positive ints or -1"),
        ({"ratios": (1.5,)}, InvalidArgumentError, r"`ratios` values must be numbers in \(0, 1\]"),
        ({"awq": ("yes",)}, InvalidArgumentTypeError, "`awq` values must be True or False"),
    ],
)
def test_bad_search_values_are_refused_by_field(fields, error, message):
    with pytest.raises(error, match=message):
        SearchSpace(**fields)


def test_a_single_value_is_a_one_value_tuple_and_duplicates_go():
    space = SearchSpace(modes="int4_asym", group_sizes=[64, 64, -1], ratios=0.8)
    assert space.modes == (CompressWeightsMode.INT4_ASYM,) and space.group_sizes == (64, -1) and space.ratios == (0.8,)


def test_cli_search_strings():
    space = parse_search(
        ["modes=int4_sym,INT8_ASYM", "group_size=64,-1", "ratios=1,0.8", "awq=false,true", "all-layers=true"]
    )
    assert space.modes == (CompressWeightsMode.INT4_SYM, CompressWeightsMode.INT8_ASYM)
    assert space.group_sizes == (64, -1) and space.ratios == (1.0, 0.8) and space.awq == (False, True)
    assert space.all_layers == (True,) and space.gptq == (False,)  # unnamed keys keep their defaults
    assert parse_search(None) == SearchSpace()
    with pytest.raises(InvalidArgumentError, match="expected KEY=V1,V2 with KEY one of modes, group_sizes"):
        parse_search(["bits=4"])
    with pytest.raises(InvalidArgumentError, match="group_sizes: 'x' is not an int"):
        parse_search(["group_sizes=x"])
    with pytest.raises(InvalidArgumentError, match="gptq: 'maybe' is not one of true, false"):
        parse_search(["gptq=maybe"])
