"""Run records on disk, under the target repository (ARCHITECTURE.md §2, seed 003).

automations/runs/<run-id>/record/RUN.json                    the index (committed)
automations/runs/<run-id>/record/gates/<Gx>/attempt-<n>.json  one file per gate attempt (committed)
automations/runs/<run-id>/record/tickets/<ticket-id>.json     one file per ticket (committed)
automations/runs/<run-id>/logs/                               prompts, requests, transcripts (gitignored)

Every write is atomic. A record Conveyor cannot parse raises InputError naming file and line, and is
never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from conveyor.adapters.atomic import write_json, write_text
from conveyor.adapters.structured_text import load_json_model
from conveyor.domain.errors import NotFoundError
from conveyor.domain.ids import is_run_id, next_run_id
from conveyor.domain.run import (
    Depth,
    GateAttempt,
    GateRecord,
    RunMode,
    RunRecord,
    TicketRecord,
    WorkflowRef,
    attempt_file,
    index_ticket,
    new_run,
    ticket_file,
)

RUNS_DIR = Path("automations") / "runs"
GITIGNORE_LINE = "*/logs/"
REQUEST_FINISH = "finish.request"
REQUEST_FAIL = "fail.request"


def dump(model: Any) -> Any:
    """The JSON form Conveyor stores: aliases (``pass``), ISO timestamps."""
    return model.model_dump(mode="json", by_alias=True)


class RunStore:
    """Reads and writes one repository's run records."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.runs_dir = repo / RUNS_DIR

    # --- paths -------------------------------------------------------------------------------------

    def display(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo).as_posix()
        except ValueError:
            return str(path)

    def run_dir(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise NotFoundError(f"{run_id!r} is not a run id (RUN-YYYYMMDD-HHMM, optionally -N)")
        return self.runs_dir / run_id

    def record_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "record"

    def run_file(self, run_id: str) -> Path:
        return self.record_dir(run_id) / "RUN.json"

    def logs_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "logs"

    def gate_logs_dir(self, run_id: str, gate_id: str) -> Path:
        return self.logs_dir(run_id) / "gates" / gate_id

    def attempt_path(self, run_id: str, gate_id: str, attempt: int) -> Path:
        return self.record_dir(run_id) / attempt_file(gate_id, attempt)

    def ticket_path(self, run_id: str, ticket_id: str) -> Path:
        return self.record_dir(run_id) / ticket_file(ticket_id)

    # --- runs --------------------------------------------------------------------------------------

    def ensure_gitignore(self) -> None:
        """automations/runs/.gitignore keeps every run's logs/ out of git; an existing file is extended."""
        path = self.runs_dir / ".gitignore"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if GITIGNORE_LINE in (line.strip() for line in text.splitlines()):
            return
        prefix = text if not text or text.endswith("\n") else text + "\n"
        write_text(path, f"{prefix}{GITIGNORE_LINE}\n")

    def list_runs(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir() and is_run_id(p.name))

    def next_run_id(self, now: datetime) -> str:
        return next_run_id(now, self.list_runs())

    def create_run(
        self,
        workflow: WorkflowRef,
        gates: Sequence[GateRecord],
        now: datetime,
        *,
        depth: Depth = Depth.STANDARD,
        mode: RunMode = RunMode.MANUAL,
        run_id: str | None = None,
    ) -> RunRecord:
        """Create the run's folders and RUN.json; ``run_id`` defaults to the next free id for ``now``."""
        self.ensure_gitignore()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        candidate = run_id or self.next_run_id(now)
        while True:
            try:
                self.run_dir(candidate).mkdir()
                break
            except FileExistsError:
                if run_id is not None:
                    raise
                candidate = self.next_run_id(now)  # another writer took it between listing and mkdir
        self.logs_dir(candidate).mkdir()
        run = new_run(candidate, workflow, gates, now, depth=depth, mode=mode)
        self.save(run)
        return run

    def load(self, run_id: str) -> RunRecord:
        path = self.run_file(run_id)
        if not path.exists():
            known = ", ".join(self.list_runs()[-5:]) or "none"
            raise NotFoundError(f"no run {run_id} in {self.display(self.runs_dir)} (latest: {known})")
        return load_json_model(RunRecord, path, self.display(path))

    def save(self, run: RunRecord) -> None:
        write_json(self.run_file(run.run_id), dump(run))

    def load_runs(self) -> list[RunRecord]:
        return [self.load(run_id) for run_id in self.list_runs() if self.run_file(run_id).exists()]

    # --- attempts and tickets ----------------------------------------------------------------------

    def write_attempt(self, run_id: str, attempt: GateAttempt) -> Path:
        path = self.attempt_path(run_id, attempt.gate, attempt.attempt)
        write_json(path, dump(attempt))
        return path

    def load_attempt(self, run_id: str, gate_id: str, attempt: int) -> GateAttempt:
        path = self.attempt_path(run_id, gate_id, attempt)
        if not path.exists():
            raise NotFoundError(f"run {run_id} has no record of {gate_id} attempt {attempt}")
        return load_json_model(GateAttempt, path, self.display(path))

    def write_ticket_record(self, run: RunRecord, record: TicketRecord) -> RunRecord:
        """Write the ticket's own file; RUN.json gets only an index entry (saved when it is new)."""
        write_json(self.ticket_path(run.run_id, record.ticket_id), dump(record))
        indexed = index_ticket(run, record.ticket_id)
        if indexed is not run:
            self.save(indexed)
        return indexed

    def load_ticket_record(self, run_id: str, ticket_id: str) -> TicketRecord:
        path = self.ticket_path(run_id, ticket_id)
        if not path.exists():
            raise NotFoundError(f"run {run_id} has no record of ticket {ticket_id}")
        return load_json_model(TicketRecord, path, self.display(path))

    # --- requests from another shell to a running `workflow run` -----------------------------------

    def write_request(self, run_id: str, gate_id: str, *, reason: str | None, now: datetime, pid: int) -> Path:
        """finish.request (no reason) or fail.request (with the reason) for the runner to pick up."""
        name = REQUEST_FINISH if reason is None else REQUEST_FAIL
        path = self.gate_logs_dir(run_id, gate_id) / name
        write_json(path, {"requested_at": now.isoformat(), "pid": pid, "reason": reason})
        return path

    def take_request(self, run_id: str, gate_id: str) -> tuple[str, str | None] | None:
        """Consume a pending request: ("fail", reason) wins over ("finish", None); None when there is none."""
        folder = self.gate_logs_dir(run_id, gate_id)
        fail, finish = folder / REQUEST_FAIL, folder / REQUEST_FINISH
        if fail.exists():
            try:
                reason = str(json.loads(fail.read_text(encoding="utf-8")).get("reason") or "").strip()
            except (OSError, ValueError, AttributeError):
                reason = ""
            fail.unlink(missing_ok=True)
            finish.unlink(missing_ok=True)
            return "fail", reason or "failed from another shell (no reason given)"
        if finish.exists():
            finish.unlink(missing_ok=True)
            return "finish", None
        return None

    def clear_requests(self, run_id: str, gate_id: str) -> None:
        folder = self.gate_logs_dir(run_id, gate_id)
        for name in (REQUEST_FINISH, REQUEST_FAIL):
            (folder / name).unlink(missing_ok=True)
