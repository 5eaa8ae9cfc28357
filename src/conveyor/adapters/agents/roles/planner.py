"""Planner: a product spec (docs/PRD.md) → a plan of tickets with dependencies, acceptance criteria,
complexity, estimate, touch set and task type (seed 001 bootstrap; seed 002 decomposition agent).

Default tier: complex. Default stage: ``bootstrap``.
"""

from typing import Any

import dspy  # type: ignore[import-untyped]

from conveyor.adapters.agents.roles.base import RoleCall, RoleOutcome, RoleProgram, clip_head, run_role
from conveyor.domain.agent import AgentRole
from conveyor.domain.roles import Plan
from conveyor.domain.ticket import ModelTier

MAX_SPEC_CHARS = 200_000


class PlannerSignature(dspy.Signature):  # type: ignore[misc]
    """Turn a product specification into a dependency-ordered plan of tickets."""

    spec: str = dspy.InputField(desc="The product specification (PRD) to plan, in Markdown.")
    context: str = dspy.InputField(
        desc="What else the planner should know: existing tickets, conventions, constraints (may be empty)."
    )
    plan: Plan = dspy.OutputField(desc="The tickets, in the order they should be done.")


class PlannerProgram(RoleProgram):
    ROLE = AgentRole.PLANNER
    VERSION = "1"
    SIGNATURE = PlannerSignature
    OUTPUT_FIELD = "plan"
    OUTPUT_TYPE = Plan
    DEFAULT_TIER = ModelTier.COMPLEX
    DEFAULT_STAGE = "bootstrap"


def run(call: RoleCall, *, spec: str, context: str = "", program: PlannerProgram | None = None) -> RoleOutcome[Plan]:
    """Plan ``spec`` (the PRD text). ``context`` is optional extra knowledge (existing backlog, conventions)."""
    inputs: dict[str, Any] = {"spec": clip_head(spec, MAX_SPEC_CHARS), "context": context or "(none)"}
    return run_role(PlannerProgram, call, inputs, Plan, program=program)
