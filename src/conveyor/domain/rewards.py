"""The reward signal of a completed ticket (seed 000: "capture ... reward signal", "reward score").

Four components, each in [0, 1], are persisted per ticket (``Ticket.reward``) so a later optimiser can see
what went well, not just a single number:

- ``first_pass_approval``: 1 if the reviewer approved on the first review, else 0;
- ``qa_first_pass``: 1 if QA passed on its first attempt (no retries), else 0;
- ``cost_vs_estimate``: with ``r = cost / estimate``, 1 for ``r ≤ 1``, ``2 - r`` for ``1 < r < 2`` and 0 from
  twice the estimate on. Without an estimate the cost says nothing either way: 0.5. A zero estimate counts
  as met only by a zero cost;
- ``iterations``: ``max(0, 1 - iterations / max_iterations)``, so a ticket done without a round trip back to
  the implementer scores 1 and one that used up its allowance scores 0.

Total = 0.3 * first_pass_approval + 0.3 * qa_first_pass + 0.2 * cost_vs_estimate + 0.2 * iterations, in
[0, 1]. Quality outcomes weigh more than efficiency, and the weights (:data:`REWARD_WEIGHTS`) sum to 1.
Components and the total are rounded to 4 decimal places, which keeps float noise out of the state files.

Trend (seed 000: "If reward scores trend downward for three tickets, trigger adaptive re-planning or halt
for human review"). Read as three consecutive completions, each with a strictly lower total than the
completion before it: the last three totals each fall, which takes four totals. An equal total breaks the
streak. :class:`RewardTrigger` names the two responses; which one fires is the run's policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

FIRST_PASS_APPROVAL = "first_pass_approval"
QA_FIRST_PASS = "qa_first_pass"
COST_VS_ESTIMATE = "cost_vs_estimate"
ITERATIONS = "iterations"

REWARD_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {FIRST_PASS_APPROVAL: 0.3, QA_FIRST_PASS: 0.3, COST_VS_ESTIMATE: 0.2, ITERATIONS: 0.2}
)
NO_ESTIMATE_SCORE = 0.5
DECLINING_STREAK_LENGTH = 3
_DIGITS = 4


class RewardTrigger(StrEnum):
    REPLAN = "replan"  # adaptive re-planning of the remaining backlog
    HALT = "halt"  # pause the run for human review


class RewardInputs(BaseModel):
    """What the run recorded about a completed ticket."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_review_approved: bool
    qa_attempts: int = Field(ge=1)
    cost_usd: float = Field(ge=0, allow_inf_nan=False)
    estimate_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    iterations: int = Field(ge=0)
    max_iterations: int = Field(ge=1)


def _cost_score(cost: float, estimate: float | None) -> float:
    if estimate is None:
        return NO_ESTIMATE_SCORE
    if cost <= estimate:
        return 1.0
    if estimate == 0:
        return 0.0
    return max(0.0, 2.0 - cost / estimate)


def reward_components(inputs: RewardInputs) -> dict[str, float]:
    """The four components of the module docstring, each in [0, 1]."""
    raw = {
        FIRST_PASS_APPROVAL: 1.0 if inputs.first_review_approved else 0.0,
        QA_FIRST_PASS: 1.0 if inputs.qa_attempts == 1 else 0.0,
        COST_VS_ESTIMATE: _cost_score(inputs.cost_usd, inputs.estimate_usd),
        ITERATIONS: max(0.0, 1.0 - inputs.iterations / inputs.max_iterations),
    }
    return {name: round(value, _DIGITS) for name, value in raw.items()}


def reward_total(components: Mapping[str, float]) -> float:
    """The weighted sum; every component must be present, known and within [0, 1]."""
    unknown = sorted(set(components) - set(REWARD_WEIGHTS))
    if unknown:
        raise ValueError(f"unknown reward component(s): {', '.join(unknown)}")
    # A missing component would silently count as 0 and drag the total down, so it is an error too.
    missing = sorted(set(REWARD_WEIGHTS) - set(components))
    if missing:
        raise ValueError(f"missing reward component(s): {', '.join(missing)}")
    for name, value in components.items():
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"reward component {name} must be within [0, 1], got {value}")
    return round(sum(REWARD_WEIGHTS[name] * value for name, value in components.items()), _DIGITS)


def declining_streak(totals: Sequence[float], length: int = DECLINING_STREAK_LENGTH) -> bool:
    """The last ``length`` totals each fell strictly below the one before (so ``length + 1`` are needed)."""
    if length < 1:
        raise ValueError(f"streak length must be >= 1, got {length}")
    if len(totals) < length + 1:
        return False
    tail = totals[-(length + 1) :]
    return all(later < earlier for earlier, later in pairwise(tail))
