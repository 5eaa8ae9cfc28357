"""The ticket subflow: one Prefect flow run per ticket, named after it (issue 5 §2).

Inputs are serialisable (repository, run id, ticket id); the run's workspace is found in this process.
Delivery itself is synchronous service code and runs in a worker thread, so sibling subflows go on. When the
ticket is held (an agent escalated, the iteration limit, a failure) or needs approval, this subflow pauses
with the typed form of tasks/ticket_gate.py while the other tickets continue; without anyone to answer (an
ephemeral API), or when the pause times out, build-spec ``on_escalation`` decides.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger

from conveyor.domain.ticket import Flag, set_flag
from conveyor.services.delivery import DeliveryResult, DeliveryStatus, deliver, hold_if_open
from conveyor.services.escalation import Next, apply_decision, apply_policy
from conveyor.services.workspace import Workspace, lookup
from tasks.ticket_gate import ask_ticket_decision

MAX_ANSWERS = 10


def _name() -> str:
    from prefect.runtime import flow_run

    return str((flow_run.parameters or {}).get("ticket_id", "ticket"))


async def _decide(ws: Workspace, ticket_id: str, question: str, interactive: bool, timeout_s: float) -> Next:
    logger = get_run_logger()
    ws.tracker.ask(ticket_id, question)
    if not interactive:
        return apply_policy(ws, ticket_id, ws.settings.on_escalation, timed_out=False)
    logger.warning("%s waits for a person: %s (answer in the UI or with `conveyor answer`)", ticket_id, question)
    answer = await ask_ticket_decision(f"**{ticket_id}**: {question}", timeout_s)
    if answer is None:
        return apply_policy(ws, ticket_id, ws.settings.on_escalation, timed_out=True)
    logger.info("%s: answer %s", ticket_id, answer.action)
    return apply_decision(
        ws, ticket_id, answer.action, guidance=answer.guidance, budget_usd=answer.budget_usd, reason=answer.reason
    )


def _result(result: DeliveryResult | None, next_: Next, ticket_id: str, reason: str = "") -> dict[str, Any]:
    if result is None:
        return {"ticket_id": ticket_id, "status": next_.value, "reason": reason}
    return {
        "ticket_id": ticket_id,
        "status": result.status.value,
        "reason": result.reason or reason,
        "head": result.head,
        "qa_tree": result.qa_tree,
    }


@flow(name="deliver-ticket", flow_run_name=_name, validate_parameters=True)
async def deliver_ticket(
    repo: str, run_id: str, ticket_id: str, *, interactive: bool = False, escalation_timeout_s: float = 3600.0
) -> dict[str, Any]:
    """Deliver ``ticket_id`` of ``repo`` in run ``run_id``: ready for the merge queue, held, or finished."""
    ws = lookup(repo, run_id)
    for _ in range(MAX_ANSWERS):
        try:
            result = await asyncio.to_thread(deliver, ws, ticket_id)
        except Exception as exc:
            get_run_logger().exception("%s: delivery failed", ticket_id)
            reason = f"delivery failed: {type(exc).__name__}: {exc}"
            await asyncio.to_thread(hold_if_open, ws, ticket_id, reason)
            result = DeliveryResult(ticket_id, DeliveryStatus.HELD, reason)
        if result.status is DeliveryStatus.READY:
            ticket = ws.tracker.ticket(ticket_id)
            if not ticket.approval_required:
                return _result(result, Next.CONTINUE, ticket_id)
            if _approved(ws, ticket_id):
                return _result(result, Next.CONTINUE, ticket_id)
            ws.tracker.apply(set_flag(ticket, Flag.AWAITING_APPROVAL), event="awaiting-approval")
            question = "needs approval before it merges (answer approve, or retry / defer / skip / abort)"
            next_ = await _decide(ws, ticket_id, question, interactive, escalation_timeout_s)
            if next_ is Next.CONTINUE and _approved(ws, ticket_id):
                return _result(result, Next.CONTINUE, ticket_id)
        elif result.status is DeliveryStatus.FINISHED:
            return _result(result, Next.FINISHED, ticket_id)
        else:
            next_ = await _decide(ws, ticket_id, result.reason, interactive, escalation_timeout_s)
        if next_ is not Next.CONTINUE:
            return _result(None, next_, ticket_id, result.reason)
    return _result(None, Next.WAIT, ticket_id, f"no decision after {MAX_ANSWERS} answers")


def _approved(ws: Workspace, ticket_id: str) -> bool:
    """Approved when its latest answered escalation says approve."""
    escalations = ws.tracker.state.ticket(ticket_id).escalations
    answered = [e for e in escalations if e.answer]
    return bool(answered) and str(answered[-1].answer).startswith("approve")
