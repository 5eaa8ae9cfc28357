"""Run records (seed 003's RUN.json): gates and their attempts, invocations, artifacts, validations, events.

RUN.json is an index. Each gate attempt's full record lives in ``gates/<Gx>/attempt-<n>.json`` beside it,
and each ticket's record in ``tickets/<ticket-id>.json``, so a run with a thousand tickets never rewrites
one ever-growing file. Records are immutable values; every change is a pure function returning a new one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.errors import ConveyorError, NotFoundError
from conveyor.domain.gate import ArtifactRecord, GateVerdict, ValidationResult

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RunStateError(ConveyorError):
    """A run or gate was asked for a change its current state does not allow."""


class Depth(StrEnum):
    QUICK = "quick"
    STANDARD = "standard"
    DEEP = "deep"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    PASSED = "PASSED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class RunMode(StrEnum):
    WORKFLOW = "workflow"  # `conveyor workflow run`: one process drives every gate and holds the lease
    MANUAL = "manual"  # `conveyor runs start` then gate commands one by one


class GateStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PASS = "PASS"
    FAIL = "FAIL"


class InvocationStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkflowRef(_Record):
    name: str
    version: str = "local-dev"
    slug: str
    artifact_path: str


class GateAttempt(_Record):
    """One attempt at a gate: the content of ``record/gates/<Gx>/attempt-<n>.json``."""

    gate: str
    attempt: int = Field(ge=1)
    status: GateStatus
    started_at: datetime
    finished_at: datetime | None = None
    agent: str | None = None
    invocation_ids: list[str] = Field(default_factory=list)
    required_outputs: list[str] = Field(default_factory=list)
    artifacts: list[ArtifactRecord] = Field(default_factory=list)
    validations: list[ValidationResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    failure_reason: str | None = None


class AttemptSummary(_Record):
    """An attempt as RUN.json indexes it; ``record`` is the attempt file, relative to ``record/``."""

    attempt: int = Field(ge=1)
    status: GateStatus
    started_at: datetime
    finished_at: datetime | None = None
    agent: str | None = None
    failure_reason: str | None = None
    record: str


class GateRecord(_Record):
    gate: str
    name: str
    contract: str | None = None  # the contract's file stem under automations/gates/; None means the gate id
    status: GateStatus = GateStatus.PENDING
    attempts: list[AttemptSummary] = Field(default_factory=list)

    @property
    def current(self) -> AttemptSummary | None:
        return self.attempts[-1] if self.attempts else None


class Invocation(_Record):
    id: str
    gate: str
    attempt: int | None = None
    agent: str
    status: InvocationStatus
    at: datetime


class ArtifactIndexEntry(_Record):
    path: str
    sha256: str | None
    gate: str
    attempt: int


class RunValidation(ValidationResult):
    gate: str
    attempt: int


class RunEvent(_Record):
    at: datetime
    kind: str
    detail: str = ""


class RunRecord(_Record):
    run_id: str
    workflow: WorkflowRef
    depth: Depth = Depth.STANDARD
    mode: RunMode = RunMode.MANUAL
    status: RunStatus = RunStatus.RUNNING
    started_at: datetime
    finished_at: datetime | None = None
    gates: list[GateRecord] = Field(default_factory=list)
    invocations: list[Invocation] = Field(default_factory=list)
    artifacts_index: list[ArtifactIndexEntry] = Field(default_factory=list)
    validations: list[RunValidation] = Field(default_factory=list)
    events: list[RunEvent] = Field(default_factory=list)
    tickets: dict[str, str] = Field(default_factory=dict)  # ticket id -> record file, relative to record/

    def gate(self, gate_id: str) -> GateRecord:
        for gate in self.gates:
            if gate.gate == gate_id:
                return gate
        known = ", ".join(g.gate for g in self.gates) or "none"
        raise NotFoundError(f"run {self.run_id} has no gate {gate_id} (its gates: {known})")

    @property
    def is_finished(self) -> bool:
        return self.status is not RunStatus.RUNNING


class TicketRecord(_Record):
    """One ticket's durable record within a run: its gate and QA attempts, invocations and artifacts."""

    ticket_id: str
    run_id: str
    attempts: list[GateAttempt] = Field(default_factory=list)
    invocations: list[Invocation] = Field(default_factory=list)
    artifacts: list[ArtifactIndexEntry] = Field(default_factory=list)
    events: list[RunEvent] = Field(default_factory=list)


def attempt_file(gate_id: str, attempt: int) -> str:
    return f"gates/{gate_id}/attempt-{attempt}.json"


def ticket_file(ticket_id: str) -> str:
    if not _SAFE_NAME.match(ticket_id):
        raise ValueError(f"ticket id {ticket_id!r} cannot name a record file")
    return f"tickets/{ticket_id}.json"


def new_run(
    run_id: str,
    workflow: WorkflowRef,
    gates: Sequence[GateRecord],
    now: datetime,
    *,
    depth: Depth = Depth.STANDARD,
    mode: RunMode = RunMode.MANUAL,
) -> RunRecord:
    """A RUNNING run whose gates are all PENDING."""
    return RunRecord(
        run_id=run_id,
        workflow=workflow,
        depth=depth,
        mode=mode,
        started_at=now,
        gates=[g.model_copy(update={"status": GateStatus.PENDING, "attempts": []}) for g in gates],
        events=[RunEvent(at=now, kind="run.started", detail=f"{mode.value} run of workflow {workflow.name}")],
    )


def append_event(run: RunRecord, kind: str, detail: str, now: datetime) -> RunRecord:
    return run.model_copy(update={"events": [*run.events, RunEvent(at=now, kind=kind, detail=detail)]})


def _require_running(run: RunRecord, action: str) -> None:
    if run.is_finished:
        raise RunStateError(f"cannot {action}: run {run.run_id} is already {run.status.value}")


def _replace_gate(run: RunRecord, gate: GateRecord) -> list[GateRecord]:
    return [gate if g.gate == gate.gate else g for g in run.gates]


def start_gate(run: RunRecord, gate_id: str, agent: str | None, now: datetime) -> tuple[RunRecord, GateAttempt]:
    """Open a new attempt at ``gate_id``; refused while another attempt at it is still running."""
    _require_running(run, f"start gate {gate_id}")
    gate = run.gate(gate_id)
    if gate.status is GateStatus.RUNNING and gate.current is not None:
        raise RunStateError(
            f"gate {gate_id} of run {run.run_id} is already running (attempt {gate.current.attempt}); "
            "finish or fail it first"
        )
    number = len(gate.attempts) + 1
    attempt = GateAttempt(gate=gate_id, attempt=number, status=GateStatus.RUNNING, started_at=now, agent=agent)
    summary = AttemptSummary(
        attempt=number, status=GateStatus.RUNNING, started_at=now, agent=agent, record=attempt_file(gate_id, number)
    )
    updated = gate.model_copy(update={"status": GateStatus.RUNNING, "attempts": [*gate.attempts, summary]})
    run = run.model_copy(update={"gates": _replace_gate(run, updated)})
    who = f" by {agent}" if agent else ""
    return append_event(run, "gate.started", f"{gate_id} attempt {number}{who}", now), attempt


def running_attempt(run: RunRecord, gate_id: str) -> AttemptSummary:
    gate = run.gate(gate_id)
    if gate.status is not GateStatus.RUNNING or gate.current is None:
        raise RunStateError(
            f"gate {gate_id} of run {run.run_id} has no running attempt (status {gate.status.value}); "
            f"start it first with `conveyor gate start --run {run.run_id} --gate {gate_id} --agent NAME`"
        )
    return gate.current


def _close_attempt(
    run: RunRecord,
    gate_id: str,
    now: datetime,
    *,
    status: GateStatus,
    failure_reason: str | None,
    verdict: GateVerdict | None,
) -> tuple[RunRecord, GateAttempt]:
    _require_running(run, f"finish gate {gate_id}")
    current = running_attempt(run, gate_id)
    gate = run.gate(gate_id)
    attempt = GateAttempt(
        gate=gate_id,
        attempt=current.attempt,
        status=status,
        started_at=current.started_at,
        finished_at=now,
        agent=current.agent,
        invocation_ids=[i.id for i in run.invocations if i.gate == gate_id and i.attempt == current.attempt],
        required_outputs=verdict.required_outputs if verdict else [],
        artifacts=verdict.artifacts if verdict else [],
        validations=verdict.results if verdict else [],
        warnings=verdict.warnings if verdict else [],
        failure_reason=failure_reason,
    )
    summary = current.model_copy(update={"status": status, "finished_at": now, "failure_reason": failure_reason})
    updated = gate.model_copy(update={"status": status, "attempts": [*gate.attempts[:-1], summary]})
    index = [
        ArtifactIndexEntry(path=a.path, sha256=a.sha256, gate=gate_id, attempt=current.attempt)
        for a in attempt.artifacts
        if a.exists
    ]
    checks = [
        RunValidation(**r.model_dump(by_alias=False), gate=gate_id, attempt=current.attempt)
        for r in attempt.validations
    ]
    run = run.model_copy(
        update={
            "gates": _replace_gate(run, updated),
            "artifacts_index": [*run.artifacts_index, *index],
            "validations": [*run.validations, *checks],
        }
    )
    detail = f"{gate_id} attempt {current.attempt}: {status.value}" + (f" ({failure_reason})" if failure_reason else "")
    return append_event(run, "gate.finished", detail, now), attempt


def finish_gate(run: RunRecord, gate_id: str, verdict: GateVerdict, now: datetime) -> tuple[RunRecord, GateAttempt]:
    """Close the running attempt with the contract's verdict."""
    status = GateStatus.PASS if verdict.status == "PASS" else GateStatus.FAIL
    return _close_attempt(run, gate_id, now, status=status, failure_reason=verdict.failure_reason, verdict=verdict)


def fail_gate(run: RunRecord, gate_id: str, reason: str, now: datetime) -> tuple[RunRecord, GateAttempt]:
    """Close the running attempt as FAIL with a person's reason; no validations are run."""
    if not reason.strip():
        raise RunStateError(f"failing gate {gate_id} needs a reason")
    return _close_attempt(run, gate_id, now, status=GateStatus.FAIL, failure_reason=reason.strip(), verdict=None)


def record_invocation(
    run: RunRecord, gate_id: str, agent: str, status: InvocationStatus, now: datetime
) -> tuple[RunRecord, Invocation]:
    """Record an agent invocation, tied to the gate's latest attempt when it has one."""
    _require_running(run, "record an invocation")
    gate = run.gate(gate_id)
    invocation = Invocation(
        id=f"inv-{len(run.invocations) + 1:04d}",
        gate=gate_id,
        attempt=gate.current.attempt if gate.current else None,
        agent=agent,
        status=status,
        at=now,
    )
    run = run.model_copy(update={"invocations": [*run.invocations, invocation]})
    return append_event(run, "invocation", f"{invocation.id} {agent} on {gate_id}: {status.value}", now), invocation


def complete_run(run: RunRecord, status: RunStatus, now: datetime, reason: str = "") -> RunRecord:
    """Finish the run as PASSED, FAILED or CANCELED; a finished run cannot be completed again."""
    if status is RunStatus.RUNNING:
        raise RunStateError("a run is completed as PASSED, FAILED or CANCELED, not RUNNING")
    if run.is_finished:
        when = f" at {run.finished_at.isoformat()}" if run.finished_at else ""
        raise RunStateError(f"run {run.run_id} already finished as {run.status.value}{when}")
    run = run.model_copy(update={"status": status, "finished_at": now})
    return append_event(run, "run.completed", status.value + (f": {reason}" if reason else ""), now)


def index_ticket(run: RunRecord, ticket_id: str) -> RunRecord:
    """Point RUN.json at the ticket's record file (idempotent)."""
    if ticket_id in run.tickets:
        return run
    return run.model_copy(update={"tickets": {**run.tickets, ticket_id: ticket_file(ticket_id)}})


def add_ticket_attempt(record: TicketRecord, attempt: GateAttempt) -> TicketRecord:
    """Add an attempt to a ticket's record, replacing an earlier version of the same (gate, attempt)."""
    kept = [a for a in record.attempts if (a.gate, a.attempt) != (attempt.gate, attempt.attempt)]
    index = [
        ArtifactIndexEntry(path=a.path, sha256=a.sha256, gate=attempt.gate, attempt=attempt.attempt)
        for a in attempt.artifacts
        if a.exists
    ]
    return record.model_copy(update={"attempts": [*kept, attempt], "artifacts": [*record.artifacts, *index]})


def describe_attempt(attempt: GateAttempt) -> list[str]:
    """The attempt's result in a few lines for the terminal."""
    lines = [f"{attempt.gate} attempt {attempt.attempt}: {attempt.status.value}"]
    for check in attempt.validations:
        mark = "ok  " if check.passed else ("warn" if check.severity == "warning" else "FAIL")
        lines.append(f"  [{mark}] {check.type}: {check.detail}")
    for artifact in attempt.artifacts:
        if artifact.exists:
            lines.append(f"  sha256 {artifact.sha256}  {artifact.path}")
    if attempt.failure_reason:
        lines.append(f"  failure reason: {attempt.failure_reason}")
    return lines
