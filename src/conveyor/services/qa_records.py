"""Durable QA records of a run (seed 003): every gate attempt of a ticket, with the sha256 of its log.

The run's ``RUN.json`` (workflow ``execution-loop``) indexes one record file per ticket,
``automations/runs/<run-id>/record/tickets/<ticket>.json``, holding every QA attempt. When the ticket ends
without merging (failed, deferred), its record moves to ``record/qa-failed/`` and the index follows, so the gate
reports of failed tickets are kept apart from the passed ones (issue 5 §4).
"""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.domain.gate import ArtifactRecord
from conveyor.domain.qa import QAReport
from conveyor.domain.run import GateAttempt, GateStatus, RunRecord, TicketRecord, WorkflowRef, new_run
from conveyor.services.workspace import Workspace

FAILED_DIR = "qa-failed"
WORKFLOW = "execution-loop"


def run_record(ws: Workspace) -> RunRecord:
    """The run's RUN.json, made on first use (a resumed run keeps its own)."""
    if ws.store.run_file(ws.run_id).exists():
        return ws.store.load(ws.run_id)
    workflow = WorkflowRef(
        name=WORKFLOW, slug=ws.run_id.lower(), artifact_path=f"automations/runs/{ws.run_id}/record/REPORT.md"
    )
    record = new_run(ws.run_id, workflow, [], ws.clock())
    ws.store.save(record)
    return record


def load_qa_record(ws: Workspace, ticket_id: str) -> TicketRecord:
    path = ws.store.ticket_path(ws.run_id, ticket_id)
    if path.exists():
        return TicketRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
    return TicketRecord(ticket_id=ticket_id, run_id=ws.run_id)


def record_qa(ws: Workspace, ticket_id: str, report: QAReport) -> TicketRecord:
    now = ws.clock()
    with ws.tracker.lock:  # a tracking path: never written while a squash commit is being built
        record = load_qa_record(ws, ticket_id)
        attempt = GateAttempt(
            gate="QA",
            attempt=len(record.attempts) + 1,
            status=GateStatus.PASS if report.passed else GateStatus.FAIL,
            started_at=now,
            finished_at=now,
            agent="conveyor",
            artifacts=[
                ArtifactRecord(path=_relative(ws, gate.log_path), sha256=gate.log_sha256, exists=bool(gate.log_path))
                for gate in report.gates
            ],
            warnings=[report.note] if report.note else [],
            failure_reason=None if report.passed else report.summary(),
        )
        record = record.model_copy(update={"attempts": [*record.attempts, attempt]})
        ws.store.write_ticket_record(run_record(ws), record)
        return record


def move_to_failed(ws: Workspace, ticket_id: str) -> None:
    with ws.tracker.lock:
        source = ws.store.ticket_path(ws.run_id, ticket_id)
        if not source.exists():
            return
        target = ws.store.record_dir(ws.run_id) / FAILED_DIR / f"{ticket_id}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        run = run_record(ws)
        tickets = {**run.tickets, ticket_id: f"{FAILED_DIR}/{ticket_id}.json"}
        ws.store.save(run.model_copy(update={"tickets": tickets}))


def _relative(ws: Workspace, path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).resolve().relative_to(ws.repo.resolve()).as_posix()
    except ValueError:
        return path
