"""The HumanGate of one ticket (issue 5 §5): its delivery subflow pauses with a typed RunInput form.

Other tickets go on meanwhile (async subflows). The answer comes from the Prefect UI or ``conveyor answer``;
the server validates it against the form's schema before the run resumes. Nobody answering in time returns
None, and the caller applies build-spec ``on_escalation``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, cast

from prefect import pause_flow_run
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

FormT = TypeVar("FormT", bound=RunInput)
TicketAction = Literal["retry", "grant_budget", "skip", "defer", "approve", "abort"]


class TicketDecision(RunInput):
    """A person's answer for a blocked, escalated or approval-waiting ticket."""

    action: TicketAction = Field(
        description=(
            "retry: back to the implementer with the guidance below (the iteration count starts again); "
            "grant_budget: raise this ticket's cap to 'budget_usd' and retry; "
            "skip: drop the ticket (dependents may start); defer: move it to the deferred list with the reason; "
            "approve: allow a ticket that needs approval to merge; abort: stop the whole run."
        )
    )
    guidance: str = Field("", description="retry / grant_budget: what the implementer should do differently.")
    budget_usd: float | None = Field(None, gt=0, description="grant_budget: the ticket's new cap in USD.")
    reason: str = Field("", description="skip / defer / abort: why, recorded with the ticket.")


async def ask_form(form_type: type[FormT], description: str, timeout_s: float, poll_s: int) -> FormT | None:
    """Pause the calling flow run with ``form_type``'s form; the answer, or None when nobody answered in time."""
    form = form_type.with_initial_data(description=description)
    try:
        paused: Any = pause_flow_run(wait_for_input=form, timeout=max(1, round(timeout_s)), poll_interval=poll_s)
        return cast(FormT, await paused)
    except FlowPauseTimeout:
        return None


async def ask_ticket_decision(description: str, timeout_s: float, poll_s: int = 2) -> TicketDecision | None:
    """Pause the ticket's own subflow with the ticket form."""
    return await ask_form(TicketDecision, description, timeout_s, poll_s)


class RunBudgetDecision(RunInput):
    """A person's answer when the run's budget is frozen (projected cost over the cap): no new ticket starts."""

    action: Literal["raise_cap", "stop"] = Field(
        description="raise_cap: continue with the cap in 'new_cap_usd'; stop: end the run (work so far is kept)."
    )
    new_cap_usd: float | None = Field(None, gt=0, description="raise_cap: the new run cap in USD.")


async def ask_run_budget(description: str, timeout_s: float, poll_s: int = 2) -> RunBudgetDecision | None:
    """Pause the execution loop's own flow run (the whole run) with the budget form."""
    return await ask_form(RunBudgetDecision, description, timeout_s, poll_s)
