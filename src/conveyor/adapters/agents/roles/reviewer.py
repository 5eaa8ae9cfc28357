"""Reviewer: a ticket and its diff → approve | approve-with-suggestions | request-changes, with code findings
(blocker / should-fix / suggestion) and security findings (critical / high / medium / low).

The review scope follows seed 001's timing table (:func:`conveyor.domain.roles.review_scope`): docs-only
changes get no review (no model call: an approve verdict saying so), configuration changes a security review
only, test-only changes a code review only. Findings of a kind outside the scope are dropped. What the loop
does with the verdict is :attr:`ReviewVerdict.sends_back` (ARCHITECTURE.md §8).

Default tier: normal. Default stage: ``reviewing``.
"""

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import dspy  # type: ignore[import-untyped]

from conveyor.adapters.agents.roles.base import (
    RoleCall,
    RoleOutcome,
    RoleProgram,
    clip_head,
    run_role,
    ticket_text,
)
from conveyor.domain.agent import AgentRole, Usage
from conveyor.domain.roles import ReviewDecision, ReviewScope, ReviewVerdict, review_scope
from conveyor.domain.ticket import ModelTier, Ticket

MAX_DIFF_CHARS = 150_000
_DIFF_PATH = re.compile(r"^(?:\+\+\+ b/|--- a/)(?P<path>\S+)", re.MULTILINE)


class ReviewSignature(dspy.Signature):  # type: ignore[misc]
    """Review a change against its ticket."""

    ticket: str = dspy.InputField(desc="The ticket the change implements: id, title, description, criteria.")
    scope: str = dspy.InputField(desc="The reviews to perform: 'code', 'security', or both.")
    diff: str = dspy.InputField(desc="The change, as a unified diff against its base commit.")
    verdict: ReviewVerdict = dspy.OutputField(desc="The decision, the findings by severity, and comments.")


class ReviewerProgram(RoleProgram):
    ROLE = AgentRole.REVIEWER
    VERSION = "1"
    SIGNATURE = ReviewSignature
    OUTPUT_FIELD = "verdict"
    OUTPUT_TYPE = ReviewVerdict
    DEFAULT_TIER = ModelTier.NORMAL
    DEFAULT_STAGE = "reviewing"


def paths_in_diff(diff: str) -> list[str]:
    """The files a unified diff touches (``--- a/`` and ``+++ b/`` headers; /dev/null ignored)."""
    return sorted({m["path"] for m in _DIFF_PATH.finditer(diff) if m["path"] != "/dev/null"})


def run(
    call: RoleCall,
    *,
    ticket: Ticket,
    diff: str,
    scope: Iterable[ReviewScope] | None = None,
    program: ReviewerProgram | None = None,
) -> RoleOutcome[ReviewVerdict]:
    """Review ``diff`` for ``ticket``. ``scope`` defaults to the timing table applied to the diff's files;
    an empty scope returns an approve verdict without calling the model (``calls == 0``)."""
    effective = frozenset(scope) if scope is not None else review_scope(paths_in_diff(diff))
    if call.ticket_id is None:
        call = replace(call, ticket_id=ticket.id)
    if not effective:
        return RoleOutcome(
            role=AgentRole.REVIEWER,
            output=ReviewVerdict(
                decision=ReviewDecision.APPROVE,
                comments="No review required: documentation or task-tracking changes only (seed 001 timing table).",
            ),
            prompt_version="",
            prompt_source="none",
            calls=0,
            repaired=False,
            usage=Usage(),
            cost_usd=0.0,
            last_result=None,
        )
    inputs: dict[str, Any] = {
        "ticket": ticket_text(ticket),
        "scope": ", ".join(s.value for s in sorted(effective)),
        "diff": clip_head(diff, MAX_DIFF_CHARS) or "(empty diff)",
    }
    outcome = run_role(ReviewerProgram, call, inputs, ReviewVerdict, program=program)
    scoped = outcome.output.in_scope(effective)
    return outcome if scoped is outcome.output else replace(outcome, output=scoped)
