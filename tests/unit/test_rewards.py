"""Seed 000's reward signal: components, weighted total and the declining-streak trigger."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from conveyor.domain.rewards import (
    COST_VS_ESTIMATE,
    FIRST_PASS_APPROVAL,
    ITERATIONS,
    QA_FIRST_PASS,
    REWARD_WEIGHTS,
    RewardInputs,
    RewardTrigger,
    declining_streak,
    reward_components,
    reward_total,
)


def inputs(**overrides: object) -> RewardInputs:
    base: dict[str, object] = {
        "first_review_approved": True,
        "qa_attempts": 1,
        "cost_usd": 1.0,
        "estimate_usd": 1.0,
        "iterations": 0,
        "max_iterations": 3,
    }
    return RewardInputs.model_validate({**base, **overrides})


def component(name: str, **overrides: object) -> float:
    return reward_components(inputs(**overrides))[name]


# -- components -------------------------------------------------------------------------------------------


def test_perfect_ticket_scores_one_everywhere() -> None:
    components = reward_components(inputs())
    assert components == {FIRST_PASS_APPROVAL: 1.0, QA_FIRST_PASS: 1.0, COST_VS_ESTIMATE: 1.0, ITERATIONS: 1.0}
    assert reward_total(components) == 1.0


def test_first_pass_approval() -> None:
    assert component(FIRST_PASS_APPROVAL, first_review_approved=True) == 1.0
    assert component(FIRST_PASS_APPROVAL, first_review_approved=False) == 0.0


@pytest.mark.parametrize(("attempts", "expected"), [(1, 1.0), (2, 0.0), (7, 0.0)])
def test_qa_first_pass(attempts: int, expected: float) -> None:
    assert component(QA_FIRST_PASS, qa_attempts=attempts) == expected


@pytest.mark.parametrize(
    ("cost", "estimate", "expected"),
    [
        (0.0, 2.0, 1.0),
        (1.0, 2.0, 1.0),
        (2.0, 2.0, 1.0),  # exactly on estimate
        (2.5, 2.0, 0.75),
        (3.0, 2.0, 0.5),
        (3.9, 2.0, 0.05),
        (4.0, 2.0, 0.0),  # twice the estimate
        (10.0, 2.0, 0.0),  # beyond: floored
        (0.0, 0.0, 1.0),  # a zero estimate is met only by a zero cost
        (0.01, 0.0, 0.0),
        (0.0, None, 0.5),  # no estimate: neutral
        (100.0, None, 0.5),
    ],
)
def test_cost_vs_estimate(cost: float, estimate: float | None, expected: float) -> None:
    assert component(COST_VS_ESTIMATE, cost_usd=cost, estimate_usd=estimate) == expected


@pytest.mark.parametrize(
    ("iterations", "maximum", "expected"),
    [(0, 3, 1.0), (1, 3, 0.6667), (2, 3, 0.3333), (3, 3, 0.0), (5, 3, 0.0), (1, 1, 0.0), (1, 4, 0.75)],
)
def test_iterations(iterations: int, maximum: int, expected: float) -> None:
    assert component(ITERATIONS, iterations=iterations, max_iterations=maximum) == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"qa_attempts": 0},
        {"cost_usd": -0.01},
        {"cost_usd": math.nan},
        {"cost_usd": math.inf},
        {"estimate_usd": -1.0},
        {"iterations": -1},
        {"max_iterations": 0},
        {"surprise": 1},
    ],
)
def test_invalid_inputs_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        inputs(**bad)


@given(
    approved=st.booleans(),
    attempts=st.integers(1, 10),
    cost=st.floats(0, 1e6),
    estimate=st.none() | st.floats(0, 1e6),
    iterations=st.integers(0, 20),
    maximum=st.integers(1, 10),
)
def test_components_and_total_stay_in_unit_interval(
    approved: bool, attempts: int, cost: float, estimate: float | None, iterations: int, maximum: int
) -> None:
    components = reward_components(
        RewardInputs(
            first_review_approved=approved,
            qa_attempts=attempts,
            cost_usd=cost,
            estimate_usd=estimate,
            iterations=iterations,
            max_iterations=maximum,
        )
    )
    assert set(components) == set(REWARD_WEIGHTS)
    assert all(0.0 <= value <= 1.0 for value in components.values())
    assert 0.0 <= reward_total(components) <= 1.0


# -- total ------------------------------------------------------------------------------------------------


def test_weights_sum_to_one() -> None:
    assert math.isclose(sum(REWARD_WEIGHTS.values()), 1.0)
    assert dict(REWARD_WEIGHTS) == {
        FIRST_PASS_APPROVAL: 0.3,
        QA_FIRST_PASS: 0.3,
        COST_VS_ESTIMATE: 0.2,
        ITERATIONS: 0.2,
    }


def test_total_is_the_weighted_sum_rounded_to_four_places() -> None:
    components = reward_components(
        inputs(first_review_approved=False, qa_attempts=2, cost_usd=2.5, estimate_usd=2.0, iterations=1)
    )
    # 0.3 * 0 + 0.3 * 0 + 0.2 * 0.75 + 0.2 * 0.6667
    assert reward_total(components) == 0.2833
    assert reward_total(dict.fromkeys(REWARD_WEIGHTS, 0.0)) == 0.0


def test_unknown_component_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown reward component"):
        reward_total({**dict.fromkeys(REWARD_WEIGHTS, 1.0), "vibes": 1.0})


def test_missing_component_is_an_error() -> None:
    with pytest.raises(ValueError, match="missing reward component"):
        reward_total({FIRST_PASS_APPROVAL: 1.0})


@pytest.mark.parametrize("value", [-0.1, 1.1, math.nan, math.inf])
def test_component_out_of_range_is_an_error(value: float) -> None:
    with pytest.raises(ValueError, match="within"):
        reward_total({**dict.fromkeys(REWARD_WEIGHTS, 1.0), ITERATIONS: value})


# -- streak -----------------------------------------------------------------------------------------------


def test_three_declines_trigger() -> None:
    assert declining_streak([0.9, 0.8, 0.7, 0.6])
    assert declining_streak([0.1, 0.2, 0.9, 0.8, 0.7, 0.6])  # only the most recent completions count


def test_fewer_values_do_not_trigger() -> None:
    assert not declining_streak([])
    assert not declining_streak([0.9])
    assert not declining_streak([0.9, 0.8, 0.7])  # two declines only


def test_equal_value_breaks_the_streak() -> None:
    assert not declining_streak([0.9, 0.8, 0.8, 0.7])
    assert not declining_streak([0.9, 0.8, 0.7, 0.7])


def test_a_rise_breaks_the_streak() -> None:
    assert not declining_streak([0.9, 0.8, 0.7, 0.6, 0.65])
    assert not declining_streak([0.9, 0.8, 0.85, 0.7, 0.6])


def test_streak_length_is_configurable() -> None:
    assert declining_streak([0.9, 0.8], length=1)
    assert not declining_streak([0.9, 0.8, 0.7, 0.6], length=4)
    assert declining_streak([1.0, 0.9, 0.8, 0.7, 0.6], length=4)
    with pytest.raises(ValueError, match="streak length"):
        declining_streak([0.9, 0.8], length=0)


def test_trigger_values() -> None:
    assert [t.value for t in RewardTrigger] == ["replan", "halt"]
