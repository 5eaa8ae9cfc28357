"""run-state.json and run-queue.json models: seed 000's shape plus the stage record, pure updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from conveyor.domain.budget import BudgetLedger
from conveyor.domain.run_state import (
    RUN_QUEUE_SCHEMA_VERSION,
    RUN_STATE_SCHEMA_VERSION,
    Artefacts,
    Blocker,
    Checkpoint,
    Escalation,
    Lesson,
    Reward,
    RunQueue,
    RunState,
    RunStateStatus,
    StageRecord,
    TicketRunState,
)
from conveyor.domain.ticket import (
    Flag,
    Severity,
    SourceRef,
    State,
    TaskType,
    Ticket,
    TicketKind,
    set_flag,
    transition,
)

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def fresh() -> RunState:
    return RunState.start("RUN-20260301-0930", "acme/portal", T0, milestone="0.0.1", ticket_ids=["MMP-SEC-001"])


def test_status_vocabulary_is_seed_000_plus_failed_and_deferred() -> None:
    assert [s.value for s in RunStateStatus] == [
        "pending",
        "in_progress",
        "qa",
        "deploy",
        "done",
        "blocked",
        "failed",
        "deferred",
    ]


def test_seed_000_shape() -> None:
    data = fresh().model_dump(mode="json")
    assert data["run_id"] == "RUN-20260301-0930"
    assert data["schema_version"] == RUN_STATE_SCHEMA_VERSION == 1
    ticket = data["tickets"]["MMP-SEC-001"]
    assert ticket["status"] == "pending"
    assert ticket["artefacts"] == {"branch": "", "pr": "", "logs": []}
    assert ticket["stage"]["stage"] == "queued"
    assert data["started_at"] == data["updated_at"] == "2026-03-01T09:30:00Z"


def test_run_id_and_ticket_ids_are_validated() -> None:
    with pytest.raises(ValidationError, match="RUN-YYYYMMDD-HHMM"):
        RunState.start("run-1", "r", T0)
    with pytest.raises(ValidationError, match="PREFIX-CAT-NNN"):
        RunState.start("RUN-20260301-0930", "r", T0, ticket_ids=["nope"])
    with pytest.raises(ValueError, match="PREFIX-CAT-NNN"):
        fresh().with_ticket("nope", TicketRunState(), T1)
    assert RunState.start("RUN-20260301-0930-2", "r", T0).run_id.endswith("-2")


def test_timestamps_need_a_time_zone() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        RunState.start("RUN-20260301-0930", "r", datetime(2026, 3, 1, 9, 30))


def test_unknown_fields_are_rejected() -> None:
    data = fresh().model_dump(mode="json")
    data["tickets"]["MMP-SEC-001"]["colour"] = "red"
    with pytest.raises(ValidationError, match="colour"):
        RunState.model_validate(data)


def test_stage_record_of_ticket() -> None:
    ticket = Ticket(
        id="MMP-SEC-001",
        title="t",
        state=State.REVIEWING,
        attempt=1,
        iterations=2,
        flags=frozenset({Flag.ESCALATED, Flag.BLOCKED}),
    )
    record = StageRecord.of(ticket, base_commit="abc", branch_head="def", checkpoint=Checkpoint(name="reviewed", at=T1))
    assert record.stage is State.REVIEWING
    assert record.flags == (Flag.BLOCKED, Flag.ESCALATED)  # sorted, stable on disk
    assert (record.attempt, record.iterations) == (1, 2)
    assert (record.base_commit, record.branch_head) == ("abc", "def")
    assert record.last_checkpoint == Checkpoint(name="reviewed", at=T1)


def test_updates_are_pure_and_touch_updated_at() -> None:
    start = fresh()
    stage = StageRecord(stage=State.IMPLEMENTING, attempt=1)
    moved = start.with_status("MMP-SEC-001", RunStateStatus.IN_PROGRESS, stage, T1)
    assert start.ticket("MMP-SEC-001").status is RunStateStatus.PENDING
    assert moved.ticket("MMP-SEC-001").status is RunStateStatus.IN_PROGRESS
    assert moved.ticket("MMP-SEC-001").stage.stage is State.IMPLEMENTING
    assert moved.updated_at == T1
    assert moved.started_at == T0


def test_update_ticket_validates_and_creates() -> None:
    state = fresh().update_ticket(
        "MMP-CQ-002", T1, artefacts=Artefacts(branch="conveyor/mmp-cq-002", pr="#4", logs=("a.log",))
    )
    assert list(state.tickets) == ["MMP-SEC-001", "MMP-CQ-002"]  # insertion (backlog) order kept
    assert state.ticket("MMP-CQ-002").artefacts.pr == "#4"
    with pytest.raises(ValidationError):
        fresh().update_ticket("MMP-SEC-001", T1, status="sleeping")


def test_blockers_escalations_lessons_reward() -> None:
    blocker = Blocker(at=T1, reason="merge wrapper failed", stage=State.INTEGRATING, command="git push origin x")
    state = fresh().add_ticket_blocker("MMP-SEC-001", blocker)
    state = state.add_run_blocker(Blocker(at=T1, reason="budget frozen"))
    state = state.add_escalation("MMP-SEC-001", Escalation(at=T1, reason="3 iterations"))
    state = state.add_lesson("MMP-SEC-001", Lesson(text="mock the clock", at=T1))
    state = state.update_ticket("MMP-SEC-001", T1, reward=Reward.of({"tests": 1.0, "review": 0.5}))
    record = state.ticket("MMP-SEC-001")
    assert record.blockers == (blocker,)
    assert record.escalations[0].open
    assert record.lessons[0].text == "mock the clock"
    assert record.reward.total == 1.5
    assert [(tid, b.reason) for tid, b in state.open_blockers()] == [
        (None, "budget frozen"),
        ("MMP-SEC-001", "merge wrapper failed"),
    ]

    answered = state.answer_escalation("MMP-SEC-001", "defer it", T1 + timedelta(hours=1))
    escalation = answered.ticket("MMP-SEC-001").escalations[0]
    assert escalation.answer == "defer it"
    assert not escalation.open
    with pytest.raises(ValueError, match="no open escalation"):
        answered.answer_escalation("MMP-SEC-001", "again", T1)


def test_resolved_blockers_are_not_open() -> None:
    state = fresh().add_run_blocker(Blocker(at=T0, reason="x", resolved_at=T1))
    assert state.open_blockers() == []


def test_budget_snapshot() -> None:
    position = BudgetLedger().position({"MMP-SEC-001": 1.0})
    state = fresh().with_budget(position, T1)
    snapshot = state.model_dump(mode="json")["budget"]
    assert snapshot["cap_source"] == "derived"
    assert snapshot["mode"] == "normal"
    assert {"cap_usd", "used_usd", "projected_usd", "percent", "over_cap"} <= set(snapshot)


# -- run-queue -------------------------------------------------------------------------------------------


def full_ticket() -> Ticket:
    """A ticket with every field away from its default: nothing may be lost on the way to the file."""
    return Ticket(
        id="MMP-SEC-001-QA",
        title="Sanitise uploads",
        description="SEC-API-1: sanitize the upload name",
        acceptance_criteria=("no path traversal", "tests"),
        kind=TicketKind.CHANGE,
        phase=1,
        severity=Severity.CRITICAL,
        finding_id="SEC-API-1",
        source=SourceRef(file="api/upload.py", lines="45-67"),
        depends_on=("MMP-SEC-000",),
        issue="#12",
        repo="api",
        branch="conveyor/mmp-sec-001-qa",
        touch_set=("api/upload.py",),
        complexity=8,
        tier_override=None,
        task_type=TaskType.SECURITY_FIX,
        estimate_tokens=25_000,
        used_tokens=12_000,
        cost_usd=0.42,
        agent="worker-1",
        started_at=T0,
        completed_at=T1,
        notes="review: approve",
        approval_required=True,
        reward={"tests": 1.0},
        state=State.REVIEWING,
        flags=frozenset({Flag.ESCALATED, Flag.BLOCKED, Flag.AWAITING_APPROVAL}),
        iterations=2,
        attempt=1,
    )


def test_run_queue_keeps_every_ticket_field() -> None:
    ticket = full_ticket()
    queue = RunQueue.of([Ticket(id="MMP-SEC-000", title="first"), ticket], "MMP", milestone="0.0.1")
    data = queue.model_dump(mode="json")
    assert data["schema_version"] == RUN_QUEUE_SCHEMA_VERSION == 1
    assert set(data["tickets"][1]) == set(Ticket.model_fields)
    assert data["tickets"][1]["flags"] == ["awaiting-approval", "blocked", "escalated"]  # sorted
    assert RunQueue.model_validate(data) == queue
    assert [t.id for t in queue.backlog()] == ["MMP-SEC-000", "MMP-SEC-001-QA"]


def test_run_queue_rejects_duplicates_and_bad_prefix() -> None:
    ticket = Ticket(id="MMP-SEC-001", title="a")
    with pytest.raises(ValidationError, match="duplicate ticket id"):
        RunQueue.of([ticket, ticket], "MMP")
    with pytest.raises(ValidationError, match="task_prefix"):
        RunQueue.of([], "mmp")


def test_record_projects_the_status_from_the_stage() -> None:
    at = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    ticket = transition(Ticket(id="NA-SEC-001", title="t"), State.IMPLEMENTING)
    state = RunState.start("RUN-20261121-1000", "repo", at, ticket_ids=[ticket.id])
    state = state.record(ticket, at, base_commit="abc", checkpoint=Checkpoint(name="started", at=at))
    record = state.ticket(ticket.id)
    assert record.status is RunStateStatus.IN_PROGRESS
    assert record.stage.stage is State.IMPLEMENTING and record.stage.attempt == 1
    assert record.stage.base_commit == "abc"
    blocked = set_flag(transition(ticket, State.REVIEWING), Flag.BLOCKED)
    state = state.record(blocked, at)
    assert state.ticket(ticket.id).status is RunStateStatus.BLOCKED
    assert state.ticket(ticket.id).stage.stage is State.REVIEWING
    assert state.ticket(ticket.id).stage.flags == (Flag.BLOCKED,)
