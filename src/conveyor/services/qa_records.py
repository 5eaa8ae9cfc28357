"""Durable QA records of a run (seed 003): every gate attempt of a ticket, with the sha256 of its log.

A ticket's attempts live in ``automations/runs/<run-id>/record/qa/<ticket>.json``. When the ticket ends
without merging (failed, deferred), its record moves to ``record/qa-failed/``, so the gate reports of failed
tickets are kept apart from the passed ones (issue 5 §4).
"""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.adapters.atomic import write_json
from conveyor.domain.gate import ArtifactRecord
from conveyor.domain.qa import QAReport
from conveyor.domain.run import GateAttempt, GateStatus, TicketRecord
from conveyor.services.workspace import Workspace

QA_DIR = "qa"
FAILED_DIR = "qa-failed"


def qa_record_path(ws: Workspace, ticket_id: str, *, failed: bool = False) -> Path:
    return ws.store.record_dir(ws.run_id) / (FAILED_DIR if failed else QA_DIR) / f"{ticket_id}.json"


def load_qa_record(ws: Workspace, ticket_id: str) -> TicketRecord:
    path = qa_record_path(ws, ticket_id)
    if path.exists():
        return TicketRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
    return TicketRecord(ticket_id=ticket_id, run_id=ws.run_id)


def record_qa(ws: Workspace, ticket_id: str, report: QAReport) -> TicketRecord:
    now = ws.clock()
    record = load_qa_record(ws, ticket_id)
    number = len(record.attempts) + 1
    attempt = GateAttempt(
        gate="QA",
        attempt=number,
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
    write_json(qa_record_path(ws, ticket_id), record.model_dump(mode="json"))
    return record


def move_to_failed(ws: Workspace, ticket_id: str) -> None:
    source = qa_record_path(ws, ticket_id)
    if source.exists():
        target = qa_record_path(ws, ticket_id, failed=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)


def _relative(ws: Workspace, path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).resolve().relative_to(ws.repo.resolve()).as_posix()
    except ValueError:
        return path
