"""The HumanGate of a release (issue 6 step 4): the release flow pauses with a typed approval form.

Build-spec ``approvals.release: true`` asks for it. The answer comes from the Prefect UI or ``conveyor answer
release --action approve|reject``; nobody answering in time counts as no approval.
"""

from __future__ import annotations

from typing import Literal

from prefect.input import RunInput
from pydantic import Field

from tasks.ticket_gate import ask_form


class ReleaseApproval(RunInput):
    """A person's decision on a validated release (version, notes and checks are in the question)."""

    action: Literal["approve", "reject"] = Field(
        description="approve: tag and publish the release; reject: stop, nothing is written."
    )
    reason: str = Field("", description="Why (recorded in the release report).")


async def ask_release_approval(description: str, timeout_s: float, poll_s: int = 2) -> ReleaseApproval | None:
    return await ask_form(ReleaseApproval, description, timeout_s, poll_s)
