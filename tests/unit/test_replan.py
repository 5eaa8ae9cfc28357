"""The re-plan of the remaining backlog: what the planner may change, and the deterministic re-calibration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.domain.replan import DROPPED_NOTE, apply_replan, recalibrate, scope
from conveyor.domain.roles import Plan
from conveyor.domain.ticket import Flag, State, TaskType, Ticket

AT = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def _ticket(n: int, state: State = State.QUEUED, **extra: Any) -> Ticket:
    fields: dict[str, Any] = {
        "id": f"TK-FEAT-{n:03d}",
        "title": f"Step {n}",
        "acceptance_criteria": (f"step {n} works",),
        "task_type": TaskType.FEATURE_ADD,
        "estimate_tokens": 10_000,
        "state": state,
    }
    return Ticket(**(fields | extra))


def _planned(hint: str, title: str, deps: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {
        "id_hint": hint,
        "title": title,
        "description": title,
        "acceptance_criteria": [f"{title} works"],
        "depends_on": list(deps),
        "complexity": 3,
        "task_type": "FEATURE_ADD",
        "estimate_tokens": 4_000,
    } | extra


def _backlog() -> list[Ticket]:
    return [
        _ticket(1, State.DONE, used_tokens=30_000),
        _ticket(2, State.IMPLEMENTING, depends_on=("TK-FEAT-001",)),
        _ticket(3, depends_on=("TK-FEAT-001",)),
        _ticket(4, depends_on=("TK-FEAT-003",)),
        _ticket(5, flags=frozenset({Flag.BLOCKED})),
        Ticket(id="TK-FEAT-001-QA", title="Follow-up", estimate_tokens=5_000, task_type=TaskType.REFACTOR),
    ]


def test_scope_is_queued_unheld_unsuffixed_tickets() -> None:
    assert [t.id for t in scope(_backlog())] == ["TK-FEAT-003", "TK-FEAT-004"]


def test_the_plan_updates_kept_tickets_drops_the_rest_and_adds_new_ones() -> None:
    plan = Plan.model_validate(
        {"tickets": [_planned("TK-FEAT-004", "Step 4, redone"), _planned("X", "Step 6", ("TK-FEAT-004",))]}
    )
    before = _backlog()
    result = apply_replan(before, plan, prefix="TK", at=AT)
    after = {t.id: t for t in result.tickets}

    assert result.updated == ["TK-FEAT-004"]
    assert result.added == ["TK-FEAT-006"]  # after the highest number in use, never reusing one
    assert result.dropped == ["TK-FEAT-003"]
    assert after["TK-FEAT-003"].state is State.OBSOLETE and DROPPED_NOTE in after["TK-FEAT-003"].notes
    assert after["TK-FEAT-004"].title == "Step 4, redone" and after["TK-FEAT-004"].estimate_tokens == 4_000
    assert after["TK-FEAT-006"].depends_on == ("TK-FEAT-004",)
    for untouched in ("TK-FEAT-001", "TK-FEAT-002", "TK-FEAT-005", "TK-FEAT-001-QA"):  # out of scope
        assert after[untouched] == next(t for t in before if t.id == untouched)


def test_a_kept_ticket_keeps_its_dependency_on_a_finished_one() -> None:
    plan = Plan.model_validate({"tickets": [_planned("TK-FEAT-003", "Step 3"), _planned("TK-FEAT-004", "Step 4")]})
    after = {t.id: t for t in apply_replan(_backlog(), plan, prefix="TK", at=AT).tickets}
    assert after["TK-FEAT-003"].depends_on == ("TK-FEAT-001",)
    assert after["TK-FEAT-004"].depends_on == ()  # the plan's own structure replaces the old in-scope one


def test_a_plan_depending_on_a_dropped_ticket_cannot_exist() -> None:
    with pytest.raises(ValueError, match="not a ticket of this plan"):
        Plan.model_validate({"tickets": [_planned("TK-FEAT-004", "Step 4", ("TK-FEAT-003",))]})


def test_recalibrate_scales_remaining_estimates_by_this_runs_variance() -> None:
    result = recalibrate(_backlog(), ["TK-FEAT-001"])
    after = {t.id: t for t in result.tickets}
    assert result.updated == ["TK-FEAT-003", "TK-FEAT-004"]
    assert after["TK-FEAT-003"].estimate_tokens == 30_000  # used 30K of 10K: x3, the clamp's maximum
    assert result.factors == {"FEATURE_ADD": 3.0}
    assert after["TK-FEAT-005"].estimate_tokens == 10_000  # held: not in scope


def test_recalibrate_falls_back_to_all_finished_tickets_and_clamps() -> None:
    tickets = [
        _ticket(1, State.DONE, used_tokens=1_000),
        _ticket(2, task_type=TaskType.REFACTOR),
    ]
    result = recalibrate(tickets, ["TK-FEAT-001"])
    assert result.tickets[1].estimate_tokens == 5_000  # x0.1 clamped to x0.5
    assert result.factors == {"REFACTOR": 0.5}


def test_recalibrate_leaves_estimates_within_tolerance_and_without_data() -> None:
    near = [_ticket(1, State.DONE, used_tokens=10_500), _ticket(2)]
    assert not recalibrate(near, ["TK-FEAT-001"]).changed
    assert not recalibrate([_ticket(1, State.DONE), _ticket(2)], ["TK-FEAT-001"]).changed


def test_the_plan_may_reverse_a_dependency_between_tickets_in_scope() -> None:
    tickets = [_ticket(3), _ticket(4, depends_on=("TK-FEAT-003",))]
    plan = Plan.model_validate(
        {"tickets": [_planned("TK-FEAT-003", "Step 3", ("TK-FEAT-004",)), _planned("TK-FEAT-004", "Step 4")]}
    )
    result = apply_replan(tickets, plan, prefix="TK", at=AT)  # in-scope structure is the plan's: no cycle
    assert {t.id: t.depends_on for t in result.tickets} == {"TK-FEAT-003": ("TK-FEAT-004",), "TK-FEAT-004": ()}
