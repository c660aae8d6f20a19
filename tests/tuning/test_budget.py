"""The accuracy budget: parsing of limits, which side passes, and refusals that name the argument."""

from __future__ import annotations

import pytest

from optimum_wc.errors import InvalidArgumentError, InvalidArgumentTypeError
from optimum_wc.tuning import Budget


@pytest.mark.parametrize("value, expected", [("5%", 0.05), (" 2.5% ", 0.025), ("0.05", 0.05), (0.05, 0.05), (1, 1.0)])
def test_perplexity_limits_read_as_fractions(value, expected):
    assert Budget("max_perplexity_increase", value).limit == pytest.approx(expected)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("max_perplexity_increase", "5", "ambiguous: write '5%'"),
        ("max_perplexity_increase", "five", "a number or a percentage"),
        ("max_perplexity_increase", -0.1, "finite number > 0"),
        ("max_kl", float("nan"), "finite number > 0"),
        ("min_similarity", 1.2, r"\(0, 1.0\]"),
        ("min_similarity", "90%", "must be a number"),
        ("max_loss", 0.1, "use one of max_perplexity_increase, min_similarity, max_kl"),
    ],
)
def test_bad_limits_are_refused_by_name(name, value, message):
    with pytest.raises(InvalidArgumentError, match=message):
        Budget(name, value)


def test_a_limit_of_the_wrong_type_is_a_type_error():
    with pytest.raises(InvalidArgumentTypeError, match="`max_kl` must be a number"):
        Budget("max_kl", [0.1])


def test_exactly_one_budget():
    assert Budget.from_arguments(max_perplexity_increase=None, max_kl=0.01).name == "max_kl"
    with pytest.raises(InvalidArgumentError, match="exactly one budget .* got none"):
        Budget.from_arguments(max_perplexity_increase=None, max_kl=None)
    with pytest.raises(InvalidArgumentError, match="got max_perplexity_increase, max_kl"):
        Budget.from_arguments(max_perplexity_increase="5%", max_kl=0.01)


def test_lower_is_better_budgets_pass_at_or_below_the_limit_and_similarity_at_or_above():
    kl = Budget("max_kl", 0.01)
    assert kl.meets(0.01) and not kl.meets(0.0101)
    assert kl.shortfall(0.013) == pytest.approx(0.003) and kl.shortfall(0.005) == 0
    similarity = Budget("min_similarity", 0.9)
    assert similarity.meets(0.9) and not similarity.meets(0.89)
    assert similarity.shortfall(0.85) == pytest.approx(0.05) and similarity.shortfall(0.95) == 0
    assert similarity.loss(0.95) < similarity.loss(0.9)  # higher similarity is the better (lower) loss
    assert Budget("max_perplexity_increase", "5%").describe() == "perplexity increase at most 5.00%"
