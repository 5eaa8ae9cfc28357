"""Answers to a held ticket (issue 5 §5): a person's decision, or build-spec ``on_escalation`` when nobody answers.

Actions: ``retry`` (back to the implementer with the guidance as feedback; the iteration count starts again),
``grant_budget`` (the ticket's cap is raised, then retry), ``skip`` and ``defer`` (terminal; defer writes the
deferral entry), ``approve`` (a ticket needing approval may merge), ``abort`` (the whole run stops).
Every answer is recorded on the ticket's escalation in run-state.json.
"""

from __future__ import annotations

from enum import StrEnum

from conveyor.domain.build_spec import EscalationPolicy
from conveyor.domain.ticket import Flag, State, Ticket, clear_flag, transition
from conveyor.services.completion import categorise, on_given_up
from conveyor.services.workspace import Workspace


class Next(StrEnum):
    CONTINUE = "continue"  # deliver again
    FINISHED = "finished"  # the ticket reached a terminal state
    ABORT = "abort"  # stop the run
    WAIT = "wait"  # stays held for a person (policy pause with nobody to answer)


def _last_reason(ws: Workspace, ticket_id: str) -> str:
    blockers = ws.tracker.state.ticket(ticket_id).blockers
    return blockers[-1].reason if blockers else "escalated"


def give_up(ws: Workspace, ticket: Ticket, state: State, why: str) -> Ticket:
    done = transition(ticket, state, at=ws.clock())
    category, approach = categorise(why)
    ws.tracker.apply(done, event=state.value, detail=why)
    if state in (State.DEFERRED, State.FAILED):
        on_given_up(ws, done, category, why, approach)
    return done


def apply_decision(
    ws: Workspace, ticket_id: str, action: str, *, guidance: str = "", budget_usd: float | None = None, reason: str = ""
) -> Next:
    ticket = ws.tracker.ticket(ticket_id)
    ws.tracker.answer(ticket_id, f"{action}: {guidance or reason}".rstrip(": "))
    if action == "abort":
        return Next.ABORT
    if action in ("skip", "defer"):
        why = reason or _last_reason(ws, ticket_id)
        give_up(ws, ticket, State.SKIPPED if action == "skip" else State.DEFERRED, why)
        return Next.FINISHED
    if action == "approve":
        ws.tracker.apply(clear_flag(ticket, Flag.AWAITING_APPROVAL), event="approved", detail=reason or guidance)
        return Next.CONTINUE
    if action == "grant_budget" and budget_usd is not None:
        with ws.tracker.lock:
            caps = ws.tracker.ledger.caps
            overrides = {**caps.ticket_overrides, ticket_id: budget_usd}
            ws.tracker.ledger = ws.tracker.ledger.model_copy(
                update={"caps": caps.model_copy(update={"ticket_overrides": overrides})}
            )
    # retry (and grant_budget): back to the implementer with fresh iterations
    if guidance:
        ws.write_feedback(ticket_id, ticket.iterations + 1, f"Guidance from a person: {guidance}")
    cleared = clear_flag(clear_flag(ticket, Flag.BLOCKED), Flag.ESCALATED).model_copy(update={"iterations": 0})
    if cleared.state is not State.IMPLEMENTING and cleared.state is not State.QUEUED:
        cleared = transition(cleared, State.IMPLEMENTING, at=ws.clock()).model_copy(update={"iterations": 0})
    ws.tracker.apply(cleared, event="retried", detail=guidance or action)
    return Next.CONTINUE


def apply_policy(ws: Workspace, ticket_id: str, policy: EscalationPolicy, *, timed_out: bool) -> Next:
    """What ``on_escalation`` does when nobody answers (a timed-out pause, or a run nobody can answer)."""
    why = _last_reason(ws, ticket_id)
    suffix = " (the pause timed out)" if timed_out else ""
    ws.tracker.answer(ticket_id, f"policy {policy.value}{suffix}")
    ticket = ws.tracker.ticket(ticket_id)
    if policy is EscalationPolicy.STOP:
        return Next.ABORT
    if policy is EscalationPolicy.SKIP:
        give_up(ws, ticket, State.SKIPPED, why + suffix)
        return Next.FINISHED
    if policy is EscalationPolicy.DEFER:
        give_up(ws, ticket, State.DEFERRED, why + suffix)
        return Next.FINISHED
    return Next.WAIT
