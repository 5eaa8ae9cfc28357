"""The HumanGate adapter over Prefect (ARCHITECTURE.md §6): a pause with a typed RunInput form.

The flow run pauses; the Prefect UI renders the form from :class:`BudgetDecision` (the field descriptions are
what a person reads) under the description the flow gives, and a client answers with
``resume_flow_run(flow_run_id, run_input={...})``. The server validates the answer against the form's schema
before the run resumes, so a malformed answer is refused at the sender, never loaded by the flow. A pause that
nobody answers in time returns None: the caller applies its policy ("stop").

Must be called from the flow function itself (not from a task): Prefect pauses the flow run that calls it.
"""

from __future__ import annotations

import math
from typing import Literal

from prefect import pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

BudgetAction = Literal["reduce_scope", "split_phases", "raise_cap", "stop"]


class BudgetDecision(RunInput):
    """A person's answer when the projected budget is over the cap even after the automatic scope cut."""

    action: BudgetAction = Field(
        description=(
            "reduce_scope: defer the tickets listed in 'defer' (and every ticket depending on them); "
            "split_phases: keep only the most severe phase for now and defer the others; "
            "raise_cap: approve a higher budget, given in 'new_cap_usd'; "
            "stop: end the run, nothing is written."
        ),
    )
    defer: list[str] = Field(
        default_factory=list,
        description="reduce_scope only: ticket ids to defer, e.g. CV-SEC-003. Tickets depending on them are deferred "
        "too; finished tickets stay as they are, and a ticket under way cannot be deferred.",
    )
    new_cap_usd: float | None = Field(
        None,
        gt=0,
        description="raise_cap only: the new run budget cap in USD; it must be above the projected total.",
    )


def _poll_seconds(timeout_s: float) -> int:
    """How often the paused run asks the API whether it was answered: every second for short pauses, at most 10 s."""
    return max(1, min(10, int(timeout_s / 60)))


def ask_budget_decision(
    summary: str, timeout_s: float, *, suggested_cap_usd: float | None = None, poll_s: int | None = None
) -> BudgetDecision | None:
    """Pause the current flow run with the budget form; the answer, or None when nobody answered in ``timeout_s``.

    ``summary`` is the description shown above the form (markdown in the UI); ``suggested_cap_usd`` pre-fills
    ``new_cap_usd``. The action has no default: a person chooses one.
    """
    initial: dict[str, float] = {}
    if suggested_cap_usd is not None:  # whole cents, rounded up: never below the suggestion
        initial["new_cap_usd"] = max(0.01, math.ceil(suggested_cap_usd * 100) / 100)
    form = BudgetDecision.with_initial_data(description=summary, **initial)
    timeout = max(1, round(timeout_s))
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=timeout, poll_interval=poll_s or _poll_seconds(timeout_s))
    except FlowPauseTimeout:
        return None
    return answer
