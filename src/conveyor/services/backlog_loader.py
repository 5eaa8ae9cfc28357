"""Read the backlog the way every command sees it: TASKS.md as system of record, enriched by the machine files.

- docs/TASKS.md decides which tickets exist and their status: a status or a row a person wrote is honoured.
- automations/run-queue.json adds the fields TASKS.md has no column for (acceptance criteria, complexity,
  touch set, cost...).
- automations/run-state.json refines an in-progress status to the exact stage, but only while its stage still
  projects to what TASKS.md says; when they disagree, a person edited TASKS.md and TASKS.md wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.adapters.state_files import (
    load_run_queue_if_exists,
    load_run_state_if_exists,
    run_queue_path,
    run_state_path,
)
from conveyor.adapters.tasks_md import TasksDocument, read_tasks_file
from conveyor.domain.backlog import Backlog
from conveyor.domain.errors import InputError, Problem
from conveyor.domain.projections import tasks_status
from conveyor.domain.run_state import RunQueue, RunState
from conveyor.domain.ticket import Ticket, TicketKind

TASKS_PATH = "docs/TASKS.md"
RUN_QUEUE_PATH = "automations/run-queue.json"
RUN_STATE_PATH = "automations/run-state.json"

# Columns TASKS.md holds: these come from the row; everything else from run-queue.json.
_ROW_FIELDS = (
    "title",
    "finding_id",
    "issue",
    "repo",
    "branch",
    "depends_on",
    "agent",
    "started_at",
    "completed_at",
    "estimate_tokens",
    "used_tokens",
    "notes",
    "state",
    "flags",
)


@dataclass
class LoadedBacklog:
    document: TasksDocument
    backlog: Backlog
    queue: RunQueue | None
    run_state: RunState | None
    warnings: list[Problem] = field(default_factory=list)


_PHASE_REF = re.compile(r"^TASKS:P(\d+)$")
_PHASE_TICKET = re.compile(r"^Phase \d+ (verification|documentation)\b")


def _inferred(row: Ticket) -> Ticket:
    """What a TASKS.md row says without run-queue.json (an archive, a hand-written file): the phase from an
    internal issue ref ``TASKS:P<n>``, and bootstrap's own phase tickets from their titles. Without this a
    re-run could not tell its verification and documentation tickets from a person's."""
    update: dict[str, object] = {}
    phase = _PHASE_REF.match(row.issue or "")
    if phase is not None and row.phase is None:
        update["phase"] = int(phase[1])
    kind = _PHASE_TICKET.match(row.title)
    if kind is not None and row.kind is TicketKind.CHANGE:
        update["kind"] = TicketKind.VERIFICATION if kind[1] == "verification" else TicketKind.DOCS
    return row.model_copy(update=update) if update else row


def _merge(row: Ticket, queued: Ticket | None, run_state: RunState | None) -> Ticket:
    ticket = row if queued is not None else _inferred(row)
    if queued is not None:
        ticket = queued.model_copy(update={name: getattr(row, name) for name in _ROW_FIELDS})
    record = run_state.tickets.get(ticket.id) if run_state is not None else None
    if record is not None:
        stage = record.stage
        if tasks_status(stage.stage, frozenset(stage.flags)) == tasks_status(ticket.state, ticket.flags):
            ticket = ticket.model_copy(
                update={
                    "state": stage.stage,
                    "flags": frozenset(stage.flags),
                    "attempt": stage.attempt,
                    "iterations": stage.iterations,
                }
            )
    return ticket


def load_backlog(repo: Path) -> LoadedBacklog:
    """Load and reconcile the three files; InputError (file and line) when any of them is malformed."""
    path = repo / TASKS_PATH
    if not path.exists():
        raise InputError.single(TASKS_PATH, None, "no backlog yet: run `conveyor init` (or bootstrap) first")
    document = read_tasks_file(path, TASKS_PATH)
    queue = load_run_queue_if_exists(run_queue_path(repo), RUN_QUEUE_PATH)
    run_state = load_run_state_if_exists(run_state_path(repo), RUN_STATE_PATH)
    queued = {t.id: t for t in queue.tickets} if queue is not None else {}
    tickets = [_merge(row, queued.get(row.id), run_state) for row in document.tickets()]
    warnings = list(document.problems)
    rows = {t.id for t in tickets}
    warnings += [
        Problem(RUN_QUEUE_PATH, None, f"{tid} is in run-queue.json but has no row in TASKS.md", "warning")
        for tid in queued
        if tid not in rows
    ]
    return LoadedBacklog(document, Backlog(tickets), queue, run_state, warnings)
