"""Everything one execution-loop run works with, assembled once: settings, agents, sandbox, worktrees, records.

Delivery of a ticket takes serialisable inputs (repository path, run id, ticket id) and finds the run's
workspace here; in this build the workspace lives in the loop's process (the Prefect subflows run there).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.adapters.atomic import write_text
from conveyor.adapters.run_store import RunStore
from conveyor.adapters.worktrees import WorktreeManager
from conveyor.domain.models import ModelTable
from conveyor.ports import AgentBackend, Clock, Forge, Limiter, NoLimiter, Sandbox
from conveyor.services.tracker import Tracker
from conveyor.settings import Settings


@dataclass
class Workspace:
    repo: Path
    run_id: str
    settings: Settings
    backend: AgentBackend | None
    backend_label: str
    sandbox: Sandbox
    worktrees: WorktreeManager
    store: RunStore
    tracker: Tracker
    forge: Forge
    models: ModelTable
    clock: Clock
    limiter: Limiter = field(default_factory=NoLimiter)
    integration_lock: threading.Lock = field(default_factory=threading.Lock)

    def feedback_path(self, ticket_id: str) -> Path:
        return self.store.record_dir(self.run_id) / "feedback" / f"{ticket_id}.md"

    def write_feedback(self, ticket_id: str, iteration: int, text: str) -> None:
        """The feedback of the last round trip, kept with the run's records (the next implementer call reads it)."""
        path = self.feedback_path(ticket_id)
        with self.tracker.lock:  # a tracking path: never written while a squash commit is being built
            previous = path.read_text(encoding="utf-8") if path.exists() else ""
            write_text(path, f"{previous}## Round trip {iteration}\n\n{text.strip()}\n\n")

    def latest_feedback(self, ticket_id: str) -> str:
        path = self.feedback_path(ticket_id)
        if not path.exists():
            return ""
        text = path.read_text(encoding="utf-8")
        return text.rsplit("## Round trip ", 1)[-1].split("\n", 1)[-1].strip() if "## Round trip " in text else text

    def gate_log_dir(self, ticket_id: str) -> Path:
        return self.store.logs_dir(self.run_id) / "tickets" / ticket_id


_workspaces: dict[tuple[str, str], Workspace] = {}
_lock = threading.Lock()


def register(workspace: Workspace) -> None:
    with _lock:
        _workspaces[(str(workspace.repo.resolve()), workspace.run_id)] = workspace


def unregister(workspace: Workspace) -> None:
    with _lock:
        _workspaces.pop((str(workspace.repo.resolve()), workspace.run_id), None)


def lookup(repo: str, run_id: str) -> Workspace:
    with _lock:
        found = _workspaces.get((str(Path(repo).resolve()), run_id))
    if found is None:
        raise LookupError(f"no execution loop of run {run_id} is running for {repo} in this process")
    return found
