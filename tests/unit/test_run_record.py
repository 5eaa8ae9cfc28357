"""Run records: pure state changes of runs, gates, attempts, invocations and ticket records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.errors import NotFoundError
from conveyor.domain.gate import ArtifactRecord, GateVerdict, ValidationResult
from conveyor.domain.run import (
    GateAttempt,
    GateRecord,
    GateStatus,
    InvocationStatus,
    RunMode,
    RunRecord,
    RunStateError,
    RunStatus,
    TicketRecord,
    WorkflowRef,
    add_ticket_attempt,
    append_event,
    complete_run,
    fail_gate,
    finish_gate,
    index_ticket,
    new_run,
    record_invocation,
    start_gate,
    ticket_file,
)

T0 = datetime(2026, 1, 19, 14, 30, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def a_run(mode: RunMode = RunMode.MANUAL) -> RunRecord:
    ref = WorkflowRef(name="design-doc", version="1.0", slug="robot", artifact_path="docs/robot")
    gates = [GateRecord(gate="G1", name="Intake", contract="G1"), GateRecord(gate="G2", name="Research")]
    return new_run("RUN-20260119-1430", ref, gates, T0, mode=mode)


def passing(gate: str = "G1") -> GateVerdict:
    return GateVerdict(
        gate=gate,
        status="PASS",
        required_outputs=["docs/robot/BRIEF.md"],
        artifacts=[
            ArtifactRecord(path="docs/robot/BRIEF.md", sha256="ab" * 32, exists=True),
            ArtifactRecord(path="docs/robot/NOTES.md", sha256=None, exists=False),
        ],
        results=[ValidationResult(type="file_exists", path="docs/robot/BRIEF.md", passed=True, detail="exists")],
        warnings=[],
    )


def failing(gate: str = "G1") -> GateVerdict:
    return passing(gate).model_copy(
        update={
            "status": "FAIL",
            "results": [ValidationResult(type="min_sources", path="S.md", passed=False, detail="1 source")],
            "failure_reason": "min_sources: 1 source",
        }
    )


def test_new_run_starts_running_with_pending_gates() -> None:
    run = a_run()
    assert run.status is RunStatus.RUNNING
    assert [(g.gate, g.status) for g in run.gates] == [("G1", GateStatus.PENDING), ("G2", GateStatus.PENDING)]
    assert run.events[0].kind == "run.started"
    assert run.finished_at is None


def test_start_gate_opens_attempt_one_and_returns_a_new_record() -> None:
    run = a_run()
    started, attempt = start_gate(run, "G1", "planner", at(1))
    assert run.gate("G1").status is GateStatus.PENDING  # the input is untouched
    assert started.gate("G1").status is GateStatus.RUNNING
    assert attempt == GateAttempt(gate="G1", attempt=1, status=GateStatus.RUNNING, started_at=at(1), agent="planner")
    assert started.gate("G1").attempts[0].record == "gates/G1/attempt-1.json"
    assert started.events[-1].detail == "G1 attempt 1 by planner"


def test_start_gate_twice_is_refused_while_running() -> None:
    run, _ = start_gate(a_run(), "G1", "planner", at(1))
    with pytest.raises(RunStateError, match="already running"):
        start_gate(run, "G1", "planner", at(2))


def test_unknown_gate_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no gate G9"):
        start_gate(a_run(), "G9", None, at(1))


def test_finish_gate_records_verdict_artifacts_and_validations() -> None:
    run, _ = start_gate(a_run(), "G1", "planner", at(1))
    run, invocation = record_invocation(run, "G1", "planner", InvocationStatus.SUCCESS, at(2))
    run, attempt = finish_gate(run, "G1", passing(), at(3))
    assert attempt.status is GateStatus.PASS
    assert attempt.finished_at == at(3)
    assert attempt.invocation_ids == [invocation.id]
    assert attempt.required_outputs == ["docs/robot/BRIEF.md"]
    gate = run.gate("G1")
    assert gate.status is GateStatus.PASS
    assert gate.attempts[0].status is GateStatus.PASS
    assert [(a.path, a.gate, a.attempt) for a in run.artifacts_index] == [("docs/robot/BRIEF.md", "G1", 1)]
    assert run.validations[0].gate == "G1"
    assert run.validations[0].model_dump(mode="json")["pass"] is True
    assert run.status is RunStatus.RUNNING  # a gate result never completes the run by itself


def test_failed_verdict_then_retry_opens_attempt_two() -> None:
    run, _ = start_gate(a_run(), "G1", "planner", at(1))
    run, first = finish_gate(run, "G1", failing(), at(2))
    assert first.status is GateStatus.FAIL
    assert first.failure_reason == "min_sources: 1 source"
    assert run.gate("G1").attempts[0].failure_reason == "min_sources: 1 source"
    run, second = start_gate(run, "G1", "planner", at(3))
    assert second.attempt == 2
    run, second = finish_gate(run, "G1", passing(), at(4))
    assert [a.status for a in run.gate("G1").attempts] == [GateStatus.FAIL, GateStatus.PASS]


def test_finish_without_running_attempt_is_refused() -> None:
    with pytest.raises(RunStateError, match="no running attempt"):
        finish_gate(a_run(), "G1", passing(), at(1))


def test_fail_gate_manually_with_reason() -> None:
    run, _ = start_gate(a_run(), "G2", "research", at(1))
    run, attempt = fail_gate(run, "G2", "  Missing required quotes ", at(2))
    assert attempt.status is GateStatus.FAIL
    assert attempt.failure_reason == "Missing required quotes"
    assert attempt.validations == []
    with pytest.raises(RunStateError, match="needs a reason"):
        fail_gate(start_gate(run, "G2", None, at(3))[0], "G2", " ", at(4))


def test_invocation_ids_are_sequential_and_tied_to_the_latest_attempt() -> None:
    run, first = record_invocation(a_run(), "G1", "planner", InvocationStatus.FAIL, at(1))
    assert first.attempt is None
    run, _ = start_gate(run, "G1", "planner", at(2))
    run, second = record_invocation(run, "G1", "planner", InvocationStatus.SUCCESS, at(3))
    assert (first.id, second.id) == ("inv-0001", "inv-0002")
    assert second.attempt == 1
    _, attempt = finish_gate(run, "G1", passing(), at(4))
    assert attempt.invocation_ids == ["inv-0002"]


def test_complete_run_once_only() -> None:
    run = complete_run(a_run(), RunStatus.PASSED, at(5))
    assert run.status is RunStatus.PASSED
    assert run.finished_at == at(5)
    with pytest.raises(RunStateError, match="already finished as PASSED"):
        complete_run(run, RunStatus.CANCELED, at(6))
    with pytest.raises(RunStateError, match="not RUNNING"):
        complete_run(a_run(), RunStatus.RUNNING, at(6))


def test_finished_run_refuses_gate_changes() -> None:
    run = complete_run(a_run(), RunStatus.CANCELED, at(1))
    with pytest.raises(RunStateError, match="already CANCELED"):
        start_gate(run, "G1", None, at(2))
    with pytest.raises(RunStateError, match="already CANCELED"):
        record_invocation(run, "G1", "x", InvocationStatus.SUCCESS, at(2))


def test_append_event() -> None:
    run = append_event(a_run(), "note", "hello", at(1))
    assert (run.events[-1].kind, run.events[-1].detail, run.events[-1].at) == ("note", "hello", at(1))


def test_record_round_trips_through_json() -> None:
    run, _ = start_gate(a_run(RunMode.WORKFLOW), "G1", "planner", at(1))
    run, _ = finish_gate(run, "G1", passing(), at(2))
    again = RunRecord.model_validate_json(run.model_dump_json(by_alias=True))
    assert again == run


def test_ticket_records_are_indexed_not_embedded() -> None:
    run = index_ticket(a_run(), "MS-SEC-001")
    assert run.tickets == {"MS-SEC-001": "tickets/MS-SEC-001.json"}
    assert index_ticket(run, "MS-SEC-001") is run
    with pytest.raises(ValueError, match="cannot name a record file"):
        ticket_file("../escape")


def test_ticket_record_attempts_replace_same_gate_and_attempt() -> None:
    record = TicketRecord(ticket_id="MS-SEC-001", run_id="RUN-20260119-1430")
    running = GateAttempt(gate="QA", attempt=1, status=GateStatus.RUNNING, started_at=at(1))
    done = running.model_copy(
        update={
            "status": GateStatus.PASS,
            "artifacts": [ArtifactRecord(path="report.xml", sha256="cd" * 32, exists=True)],
        }
    )
    record = add_ticket_attempt(add_ticket_attempt(record, running), done)
    assert [a.status for a in record.attempts] == [GateStatus.PASS]
    assert [(a.path, a.gate) for a in record.artifacts] == [("report.xml", "QA")]
