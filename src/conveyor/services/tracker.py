"""The execution loop's single writer of docs/TASKS.md, automations/run-state.json and run-queue.json.

Every ticket transition goes through :meth:`Tracker.apply`: the in-memory backlog and run state change, the
three files follow in the working tree of the main checkout (atomic writes), and an event is emitted. Nothing
here commits: the tracking files reach main inside the next squash commit or at a checkpoint commit
(ARCHITECTURE.md §3), so N merged tickets cost N commits plus a constant.

Delivery threads call in concurrently; one re-entrant lock serialises every change and write. Before each
dispatch the loop calls :meth:`refresh` so that what a person typed into TASKS.md (a status such as
``skipped`` or ``blocked``, a new row) is honoured instead of overwritten.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from conveyor.adapters.crash import crash_point
from conveyor.adapters.state_files import (
    run_queue_path,
    run_state_path,
    save_run_queue,
    save_run_state,
)
from conveyor.adapters.tasks_md import TasksDocument, read_tasks_file, write_tasks_file
from conveyor.domain.backlog import Backlog
from conveyor.domain.budget import BudgetCaps, BudgetLedger, BudgetPosition, CapSource, UsageEntry, open_estimates_usd
from conveyor.domain.models import ModelTable
from conveyor.domain.projections import tasks_status
from conveyor.domain.run_state import Blocker, Checkpoint, Escalation, Reward, RunQueue, RunState
from conveyor.domain.ticket import State, Ticket
from conveyor.ports import Clock, EventSink, NoEvents
from conveyor.services.backlog_loader import RUN_QUEUE_PATH, RUN_STATE_PATH, TASKS_PATH, load_backlog
from conveyor.settings import Settings

TRACKED_STATE_FILES = (TASKS_PATH, RUN_QUEUE_PATH, RUN_STATE_PATH)


@dataclass
class TicketJournal:
    """What a run learned about one ticket, for its artifact and the final report."""

    review_notes: list[str] = field(default_factory=list)
    qa_summaries: list[str] = field(default_factory=list)
    qa_attempts: int = 0
    first_review_approved: bool | None = None
    docs: list[str] = field(default_factory=list)
    merge_commit: str | None = None
    ops: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


class Tracker:
    def __init__(
        self,
        repo: Path,
        run_id: str,
        settings: Settings,
        models: ModelTable,
        *,
        clock: Clock,
        events: EventSink | None = None,
        cap_usd: float | None = None,
        cap_source: CapSource = CapSource.EXPLICIT,
    ) -> None:
        self.repo = repo
        self.run_id = run_id
        self.settings = settings
        self.models = models
        self.clock = clock
        self.events: EventSink = events or NoEvents()
        self.lock = threading.RLock()
        self.journal: dict[str, TicketJournal] = {}
        loaded = load_backlog(repo)
        self.document: TasksDocument = loaded.document
        self.backlog: Backlog = loaded.backlog
        now = clock()
        previous = loaded.run_state
        if previous is not None and previous.run_id == run_id:
            self.state = previous
        else:
            self.state = RunState.start(run_id, repo.resolve().name, now, milestone=settings.milestone.name)
            if previous is not None:  # keep what earlier runs learned about each ticket
                self.state = self.state.model_copy(update={"tickets": dict(previous.tickets)})
        self.task_prefix = loaded.queue.task_prefix if loaded.queue is not None else settings.task_prefix
        caps = BudgetCaps(
            run_usd=cap_usd,
            run_cap_source=cap_source,
            ticket_usd=settings.budget.ticket_cap_usd,
            role_usd=dict(settings.budget.role_caps_usd),
        )
        # Spend of earlier runs lives on the tickets (cost_usd): the ledger starts from it, so a resumed run
        # does not forget what was already spent.
        entries = tuple(
            UsageEntry(ticket_id=t.id, role="earlier", usd=t.cost_usd) for t in self.backlog if t.cost_usd > 0
        )
        self.ledger = BudgetLedger(caps=caps, entries=entries)
        self._written_text = self.document.render()

    # --- reading -------------------------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> Ticket:
        with self.lock:
            return self.backlog[ticket_id]

    def journal_of(self, ticket_id: str) -> TicketJournal:
        with self.lock:
            return self.journal.setdefault(ticket_id, TicketJournal())

    def position(self) -> BudgetPosition:
        with self.lock:
            open_ = open_estimates_usd(self.backlog.remaining(), self.models.prices())
            return self.ledger.position(open_, self.settings.budget.soft_cap_factor)

    # --- writing -------------------------------------------------------------------------------------

    def apply(
        self,
        ticket: Ticket,
        *,
        event: str | None = None,
        detail: str = "",
        base_commit: str | None = None,
        branch_head: str | None = None,
        checkpoint: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Ticket:
        """Record ``ticket`` as it is now, write the three files, and emit ``conveyor.ticket.<event>``."""
        with self.lock:
            now = self.clock()
            if ticket.id in self.backlog:  # spend and reward are the tracker's own: a caller's copy may be stale
                current = self.backlog[ticket.id]
                ticket = ticket.model_copy(
                    update={"cost_usd": current.cost_usd, "used_tokens": current.used_tokens, "reward": current.reward}
                )
            self.backlog = self.backlog.replace(ticket)
            record = self.state.ticket(ticket.id).stage
            mark = Checkpoint(name=checkpoint, at=now) if checkpoint else record.last_checkpoint
            self.state = self.state.record(
                ticket,
                now,
                base_commit=base_commit or record.base_commit,
                branch_head=branch_head or record.branch_head,
                checkpoint=mark,
            )
            if ticket.branch:
                artefacts = self.state.ticket(ticket.id).artefacts.model_copy(update={"branch": ticket.branch})
                self.state = self.state.update_ticket(ticket.id, now, artefacts=artefacts)
            if event:
                self.journal_of(ticket.id).events.append(f"{now:%H:%M:%S} {event}: {detail}".rstrip(": "))
            self._write(now, tasks=[ticket])
        if event:
            self.events.emit(
                f"conveyor.ticket.{event}",
                resource={"id": ticket.id, "run": self.run_id, "repo": self.repo.resolve().name},
                payload={"state": ticket.state.value, "detail": detail, **(payload or {})},
            )
        return ticket

    def add_tickets(self, tickets: Iterable[Ticket]) -> None:
        """New tickets (a follow-up, a remediation): rows in TASKS.md and records in run-state."""
        added = list(tickets)
        with self.lock:
            now = self.clock()
            self.backlog = Backlog([*self.backlog, *added])
            self.backlog.validate()
            for ticket in added:
                self.state = self.state.record(ticket, now)
            self._write(now, tasks=added)

    def rework(self, after: list[Ticket], reason: str) -> list[str]:
        """Replace the backlog by ``after`` (a re-plan: compute it from the backlog while holding the lock);
        returns the ids whose row changed or is new. Tickets under way must be as they are: their owner writes
        them."""
        with self.lock:
            before = {t.id: t for t in self.backlog}
            touched = [t for t in after if before.get(t.id) != t]
            moved = [t.id for t in touched if t.id in before and before[t.id].state.is_active]
            if moved:
                raise ValueError(f"a re-plan may not change tickets under way: {', '.join(moved)}")
            backlog = Backlog(after)
            backlog.validate()
            if not touched:
                return []
            now = self.clock()
            self.backlog = backlog
            for ticket in touched:
                self.state = self.state.record(ticket, now)
            self._write(now, tasks=touched)
        self.events.emit(
            "conveyor.run.replanned",
            resource={"id": self.run_id, "repo": self.repo.resolve().name},
            payload={"tickets": [t.id for t in touched], "reason": reason},
        )
        return [t.id for t in touched]

    def spend(self, ticket_id: str | None, role: str, usd: float, tokens: int = 0) -> None:
        if usd <= 0 and tokens <= 0:
            return
        with self.lock:
            self.ledger = self.ledger.record(UsageEntry(ticket_id=ticket_id, role=role, usd=usd, tokens=tokens))
            if ticket_id is not None and ticket_id in self.backlog:
                ticket = self.backlog[ticket_id]
                used = (ticket.used_tokens or 0) + tokens
                self.backlog = self.backlog.replace(
                    ticket.model_copy(update={"cost_usd": round(ticket.cost_usd + usd, 6), "used_tokens": used})
                )
            self._write(self.clock())

    def block(self, ticket_id: str, reason: str, *, command: str | None = None) -> None:
        with self.lock:
            now = self.clock()
            stage = self.backlog[ticket_id].state
            self.state = self.state.add_ticket_blocker(
                ticket_id, Blocker(at=now, reason=reason, stage=stage, command=command)
            )
            self.state = self.state.add_escalation(ticket_id, Escalation(at=now, reason=reason))
            self._write(now, queue=False)

    def ask(self, ticket_id: str, question: str) -> None:
        """Make sure the ticket has an open escalation for ``question`` (the answer is recorded on it)."""
        with self.lock:
            if any(e.open for e in self.state.ticket(ticket_id).escalations):
                return
            now = self.clock()
            self.state = self.state.add_escalation(ticket_id, Escalation(at=now, reason=question))
            self._write(now, queue=False)

    def answer(self, ticket_id: str, answer: str) -> None:
        with self.lock:
            now = self.clock()
            try:
                self.state = self.state.answer_escalation(ticket_id, answer, now)
            except ValueError:
                return
            self._write(now, queue=False)

    def run_blocker(self, reason: str) -> None:
        with self.lock:
            now = self.clock()
            self.state = self.state.add_run_blocker(Blocker(at=now, reason=reason))
            self._write(now, queue=False)

    def reward(self, ticket_id: str, components: dict[str, float], total: float) -> None:
        with self.lock:
            now = self.clock()
            self.state = self.state.update_ticket(
                ticket_id, now, reward=Reward(components=dict(components), total=total)
            )
            ticket = self.backlog[ticket_id]
            self.backlog = self.backlog.replace(ticket.model_copy(update={"reward": {**components, "total": total}}))
            self._write(now)

    def refresh(self) -> list[str]:
        """Honour a person's edits of TASKS.md since the last write; returns what was taken over."""
        with self.lock:
            path = self.repo / TASKS_PATH
            text = path.read_text(encoding="utf-8")
            if text == self._written_text:
                return []
            edited = read_tasks_file(path, TASKS_PATH)
            taken: list[str] = []
            for row in edited.tickets():
                if row.id not in self.backlog:
                    self.backlog = Backlog([*self.backlog, row])
                    taken.append(f"{row.id}: new row")
                    continue
                ours = self.backlog[row.id]
                if edited.status_text(row.id) == self.document.status_text(row.id):
                    continue
                if ours.state.is_active:
                    taken.append(f"{row.id}: status edit ignored while the ticket is under way")
                    continue
                if tasks_status(row.state, row.flags) != tasks_status(ours.state, ours.flags):
                    self.backlog = self.backlog.replace(
                        ours.model_copy(update={"state": row.state, "flags": row.flags})
                    )
                    taken.append(f"{row.id}: {edited.status_text(row.id)} (set by a person)")
            self.backlog.validate()
            self.document = edited
            self._write(self.clock(), tasks=None)
            return taken

    def _write(self, now: datetime, *, tasks: Iterable[Ticket] | None = (), queue: bool = True) -> None:
        """Write the files a change touched: TASKS.md rows of ``tasks`` (None: every row; empty: TASKS.md is not
        rewritten), run-queue.json when ``queue``, and run-state.json always. A file whose text would not change is
        not rewritten: each write costs fsyncs, and a run makes a dozen per ticket."""
        changed = list(self.backlog) if tasks is None else list(tasks)
        if changed:
            document = self.document.sync(changed)
            text = document.render()
            self.document = document
            if text != self._written_text:
                write_tasks_file(self.repo / TASKS_PATH, document)
                self._written_text = text
        if queue:
            save_run_queue(
                run_queue_path(self.repo),
                RunQueue.of(list(self.backlog), self.task_prefix, self.settings.milestone.name),
                display=RUN_QUEUE_PATH,
            )
        crash_point("between-tracking-files")
        open_ = open_estimates_usd(self.backlog.remaining(), self.models.prices())
        self.state = self.state.with_budget(self.ledger.position(open_, self.settings.budget.soft_cap_factor), now)
        save_run_state(run_state_path(self.repo), self.state, display=RUN_STATE_PATH)

    def is_done(self, ticket_id: str) -> bool:
        with self.lock:
            return self.backlog[ticket_id].state is State.DONE
