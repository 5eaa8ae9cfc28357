"""Re-planning the remaining backlog when rewards decline (issue 5 §4; seed 000 "If reward scores trend
downward for three tickets, trigger adaptive re-planning").

**Scope.** Only tickets nobody has started are re-planned: queued, not held by a person, not a follow-up with
an id suffix (``-QA``, ``-OPS``: the review or the ops step filed them for a reason the planner does not see).
Tickets under way, held or finished pass through untouched.

**With a model** the planner answers a :class:`~conveyor.domain.roles.Plan` for the remaining work;
:func:`apply_replan` folds it into the backlog with the upsert rules of bootstrap
(:mod:`conveyor.domain.bootstrap_merge`), matching first by ``id_hint`` equal to an existing ticket id (the
brief asks the planner to keep them), then by title. A ticket in scope the new plan leaves out becomes
obsolete with a note saying the re-plan dropped it (a row stays; a person may set it back). New tickets get
fresh ids. Dependencies on tickets outside the scope (done or under way) are kept.

**Without a model** (deterministic mode) :func:`recalibrate` re-estimates the tickets in scope from this run's
own cost variance: per task type, the used tokens over the estimates of the tickets finished this run,
clamped like learned calibrations (:data:`~conveyor.domain.estimates.CALIBRATION_MIN` ..
:data:`~conveyor.domain.estimates.CALIBRATION_MAX`), falling back to all finished tickets when a type has
none. That is the one part of a re-plan no model is needed for: the budget forecast then reflects what the
work really costs. A factor within :data:`RECALIBRATE_TOLERANCE` of 1 changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from conveyor.domain.bootstrap_merge import MergeResult, merge_backlog
from conveyor.domain.bootstrap_plan import backlog_from_plan, plan_ticket_ids
from conveyor.domain.estimates import CALIBRATION_MAX, CALIBRATION_MIN
from conveyor.domain.ids import parse_ticket_id
from conveyor.domain.roles import Plan
from conveyor.domain.ticket import State, TaskType, Ticket

RECALIBRATE_TOLERANCE = 0.1
DROPPED_NOTE = "obsolete: dropped by the re-plan after declining rewards"


def in_scope(ticket: Ticket) -> bool:
    """Re-planned: not started, not held, not a follow-up filed by review or ops."""
    return ticket.state is State.QUEUED and not ticket.is_held and not parse_ticket_id(ticket.id).suffixes


def scope(tickets: Iterable[Ticket]) -> list[Ticket]:
    return [t for t in tickets if in_scope(t)]


@dataclass(frozen=True)
class ReplanResult:
    tickets: list[Ticket]
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)  # deterministic mode: task type → factor applied

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.dropped)

    def describe(self) -> str:
        parts = []
        if self.updated:
            parts.append(f"updated {', '.join(self.updated)}")
        if self.added:
            parts.append(f"added {', '.join(self.added)}")
        if self.dropped:
            parts.append(f"dropped {', '.join(self.dropped)}")
        if self.factors:
            parts.append("estimates x " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.factors.items())))
        return "; ".join(parts) or "no change"


def apply_replan(existing: Sequence[Ticket], plan: Plan, *, prefix: str, at: datetime) -> ReplanResult:
    """Fold the planner's ``plan`` of the remaining work into ``existing`` (rules in the module docstring)."""
    remaining = {t.id for t in scope(existing)}
    fresh = backlog_from_plan(plan, prefix=prefix, add_docs=False)
    fresh_ids = plan_ticket_ids(plan, prefix=prefix)
    pairs = {
        fresh_ids[i]: planned.id_hint.strip()
        for i, planned in enumerate(plan.tickets)
        if planned.id_hint and planned.id_hint.strip() in remaining
    }
    merged: MergeResult = merge_backlog(
        existing, fresh, owns=lambda t: t.id in remaining, at=at, pairs=pairs, gone_note=DROPPED_NOTE
    )
    return ReplanResult(merged.tickets, merged.added, merged.updated, merged.obsoleted)


def _ratio(tickets: Iterable[Ticket]) -> float | None:
    pairs = [(t.estimate_tokens, t.used_tokens) for t in tickets if t.estimate_tokens and t.used_tokens]
    estimated = sum(e for e, _ in pairs if e)
    used = sum(u for _, u in pairs if u)
    return used / estimated if estimated else None


def recalibrate(existing: Sequence[Ticket], finished: Iterable[str]) -> ReplanResult:
    """Deterministic re-plan: re-estimate the tickets in scope from the cost variance of ``finished`` tickets."""
    by_id = {t.id: t for t in existing}
    done = [by_id[tid] for tid in finished if tid in by_id and by_id[tid].state is State.DONE]
    overall = _ratio(done)
    if overall is None:
        return ReplanResult(list(existing))
    per_type: dict[TaskType | None, float] = {}
    for ticket in done:
        if ticket.task_type not in per_type:
            found = _ratio(t for t in done if t.task_type == ticket.task_type)
            if found is not None:
                per_type[ticket.task_type] = found
    tickets: list[Ticket] = []
    updated: list[str] = []
    factors: dict[str, float] = {}
    for ticket in existing:
        raw = per_type.get(ticket.task_type, overall)
        factor = min(CALIBRATION_MAX, max(CALIBRATION_MIN, raw))
        if not in_scope(ticket) or not ticket.estimate_tokens or abs(factor - 1.0) <= RECALIBRATE_TOLERANCE:
            tickets.append(ticket)
            continue
        estimate = max(100, round(ticket.estimate_tokens * factor / 100) * 100)
        tickets.append(ticket.model_copy(update={"estimate_tokens": estimate}))
        updated.append(ticket.id)
        factors[ticket.task_type.value if ticket.task_type else "untyped"] = round(factor, 2)
    return ReplanResult(tickets, updated=updated, factors=factors)
