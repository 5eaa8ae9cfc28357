"""Delivery of one ticket in its worktree: implement → review → QA gates → docs → ready (issue 5 §2).

:func:`deliver` starts from the stage the ticket's record says (a resumed run goes on from the last
finished stage; finished agent calls replay from the replay store), and moves the ticket through the state
machine with :meth:`Tracker.apply`, so TASKS.md, run-state.json and the events follow every transition.
Round trips back to the implementer carry the reviewer's feedback or the QA logs, persisted under the run's
records. The review decision table and the iteration limit are :mod:`conveyor.domain.review`'s.

The answer is READY (the branch waits for the merge queue, with the tree that passed QA), HELD (blocked or
escalated: a person or the escalation policy decides) or FINISHED (a verification ticket that completed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from conveyor.adapters.crash import crash_point
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.quality_gates import run_quality_gates
from conveyor.domain.qa import QAReport
from conveyor.domain.review import ReviewAction, decide_review
from conveyor.domain.scan import ScanFinding
from conveyor.domain.ticket import Flag, State, Ticket, TicketKind, send_back, set_flag, transition
from conveyor.domain.tracking import code_paths
from conveyor.services import delivery_agents as agents
from conveyor.services import mechanical
from conveyor.services.qa_records import record_qa
from conveyor.services.workspace import Workspace


class DeliveryStatus(StrEnum):
    READY = "ready"
    HELD = "held"
    FINISHED = "finished"


@dataclass(frozen=True)
class DeliveryResult:
    ticket_id: str
    status: DeliveryStatus
    reason: str = ""
    head: str | None = None
    qa_tree: str | None = None


class _FinishedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _HeldError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def deliver(ws: Workspace, ticket_id: str) -> DeliveryResult:
    ticket = ws.tracker.ticket(ticket_id)
    if ticket.is_held:
        return DeliveryResult(ticket_id, DeliveryStatus.HELD, "the ticket is blocked or awaits approval")
    entry = ws.worktrees.ensure(ticket_id, ws.run_id, branch=ticket.branch)
    worktree = ws.worktrees.worktree_path(ticket_id)
    if ticket.branch != entry.branch:
        ticket = ticket.model_copy(update={"branch": entry.branch})
    if ticket.kind is TicketKind.VERIFICATION:
        return _verify(ws, ticket, worktree, entry.base)
    try:
        return _run_stages(ws, ticket, worktree, entry.base)
    except _HeldError as held:
        return DeliveryResult(ticket_id, DeliveryStatus.HELD, held.reason)
    except _FinishedError as finished:
        return DeliveryResult(ticket_id, DeliveryStatus.FINISHED, finished.reason)


def _apply(
    ws: Workspace,
    ticket: Ticket,
    event: str,
    detail: str = "",
    *,
    base_commit: str | None = None,
    branch_head: str | None = None,
) -> Ticket:
    return ws.tracker.apply(ticket, event=event, detail=detail, base_commit=base_commit, branch_head=branch_head)


def hold(ws: Workspace, ticket: Ticket, reason: str, *, command: str | None = None) -> Ticket:
    """Blocked and escalated: the ticket waits for a person or the escalation policy."""
    held = ticket if ticket.is_blocked else set_flag(set_flag(ticket, Flag.BLOCKED), Flag.ESCALATED)
    ws.tracker.block(ticket.id, reason, command=command)
    return _apply(ws, held, "blocked", reason)


def _run_stages(ws: Workspace, ticket: Ticket, worktree: Path, base: str) -> DeliveryResult:
    git = GitRepo(worktree)
    now = ws.clock
    if ticket.state is State.QUEUED:
        started = transition(ticket, State.IMPLEMENTING, at=now()).model_copy(update={"agent": ws.backend_label})
        ticket = _apply(ws, started, "started", base_commit=base, branch_head=base)
    qa_tree: str | None = None
    while True:
        if ticket.state is State.IMPLEMENTING:
            ticket = _implement(ws, ticket, worktree, base)
        elif ticket.state is State.REVIEWING:
            ticket = _review(ws, ticket, worktree, base)
        elif ticket.state is State.QA:
            ticket, qa_tree = _qa(ws, ticket, worktree, base)
        elif ticket.state is State.DOCUMENTING:
            ticket, qa_tree = _document(ws, ticket, worktree, base, qa_tree)
        elif ticket.state is State.INTEGRATING:
            head = git.head_sha()
            return DeliveryResult(ticket.id, DeliveryStatus.READY, head=head, qa_tree=qa_tree or git.tree_of(head))
        else:
            raise RuntimeError(f"{ticket.id}: delivery cannot continue from {ticket.state.value}")


def _implement(ws: Workspace, ticket: Ticket, worktree: Path, base: str) -> Ticket:
    findings = mechanical.fix_plan(ws, ticket)
    if findings:
        return _implement_mechanically(ws, ticket, worktree, base, findings)
    if ws.backend is None:
        reason = "deterministic mode (no LLM): there is no implementer for a change ticket"
        hold(ws, ticket, reason)
        raise _HeldError(reason)
    start = ws.tracker.state.ticket(ticket.id).stage.branch_head or base
    result = agents.implement(ws, ticket, worktree, ws.latest_feedback(ticket.id), start)
    crash_point("implementer-stored")
    if not result.ok:
        what = "escalated" if result.status.value == "escalate" else "failed"
        detail = result.error_detail or result.notes or result.status.value
        kind = f" ({result.error_kind.value})" if result.error_kind else ""
        reason = f"implementer {what}{kind}: {detail}"
        hold(ws, ticket, reason)
        raise _HeldError(reason)
    head = GitRepo(worktree).head_sha()
    changed = code_paths(GitRepo(worktree).diff_names(base, head))
    target = State.REVIEWING if changed else State.QA
    return _apply(ws, transition(ticket, target, at=ws.clock()), "implemented", result.notes, branch_head=head)


def _implement_mechanically(
    ws: Workspace, ticket: Ticket, worktree: Path, base: str, findings: list[ScanFinding]
) -> Ticket:
    """An improvement-loop ticket whose every finding a mechanical fixer fixes: no model call."""
    if ticket.iterations:
        reason = "a mechanical fixer cannot act on review or QA feedback; a person or a model must take over"
        hold(ws, ticket, reason)
        raise _HeldError(reason)
    changed = mechanical.apply_fixes(ws, ticket, worktree, findings)
    head = GitRepo(worktree).head_sha()
    if not code_paths(GitRepo(worktree).diff_names(base, head)):
        left = mechanical.still_reported(ws, worktree, findings)
        if not left:  # another ticket's change fixed them on main: nothing left to do
            reason = "obsolete: its findings are no longer reported on main (fixed by another change)"
            _apply(ws, transition(ticket, State.OBSOLETE, at=ws.clock()), "obsolete", reason)
            raise _FinishedError(reason)
        reason = f"the mechanical fixer changed nothing, and {len(left)} finding(s) are still reported"
        hold(ws, ticket, reason)
        raise _HeldError(reason)
    note = f"mechanical fix: {len(changed)} file(s) changed"
    moved = transition(ticket, State.REVIEWING, at=ws.clock()).model_copy(update={"agent": "mechanical fixer"})
    return _apply(ws, moved, "implemented", note, branch_head=head)


def return_to_implementer(ws: Workspace, ticket: Ticket, feedback: str, event: str, worktree: Path) -> Ticket:
    """A round trip back to the implementer with ``feedback`` (persisted); at the iteration limit the ticket is held
    instead (the returned ticket is then blocked)."""
    ws.write_feedback(ticket.id, ticket.iterations + 1, feedback)
    moved = send_back(ticket, max_iterations=ws.settings.max_iterations, at=ws.clock())
    if moved.is_blocked:
        return hold(ws, ticket, f"iteration limit ({ws.settings.max_iterations}) reached after {event}")
    # The head the next implementer call starts from: part of its replay key, so a resumed run replays it.
    head = GitRepo(worktree).head_sha()
    return _apply(ws, moved, "sent-back", f"{event}; round trip {moved.iterations}", branch_head=head)


def hold_if_open(ws: Workspace, ticket_id: str, reason: str) -> None:
    """Hold the ticket unless it already ended (an error in its delivery or integration)."""
    ticket = ws.tracker.ticket(ticket_id)
    if not ticket.state.is_terminal:
        hold(ws, ticket, reason)


def _send_back(ws: Workspace, ticket: Ticket, feedback: str, event: str, worktree: Path) -> Ticket:
    moved = return_to_implementer(ws, ticket, feedback, event, worktree)
    if moved.is_blocked:
        raise _HeldError(f"iteration limit ({ws.settings.max_iterations}) reached after {event}")
    return moved


def _review(ws: Workspace, ticket: Ticket, worktree: Path, base: str) -> Ticket:
    git = GitRepo(worktree)
    head = git.head_sha()
    changed = git.diff_names(base, head)
    verdict, who = agents.review(ws, ticket, base, head, worktree)
    outcome = decide_review(ticket, verdict, changed, max_iterations=ws.settings.max_iterations, backend=who)
    journal = ws.tracker.journal_of(ticket.id)
    journal.review_notes.append(outcome.notes)
    if journal.first_review_approved is None:
        journal.first_review_approved = outcome.merges
    if outcome.follow_up is not None and outcome.follow_up.id not in ws.tracker.backlog:
        ws.tracker.add_tickets([outcome.follow_up])
    notes = f"{ticket.notes}; {outcome.notes}" if ticket.notes else outcome.notes
    ticket = ticket.model_copy(update={"notes": notes})
    if outcome.action is ReviewAction.MERGE:
        return _apply(ws, transition(ticket, State.QA, at=ws.clock()), "reviewed", outcome.notes)
    if outcome.action is ReviewAction.BLOCKED:
        hold(ws, ticket, f"review: {outcome.notes}")
        raise _HeldError(outcome.notes)
    return _send_back(ws, ticket, outcome.feedback, "review requested changes", worktree)


def _run_gates(ws: Workspace, ticket: Ticket, worktree: Path) -> QAReport:
    journal = ws.tracker.journal_of(ticket.id)
    journal.qa_attempts += 1
    crash_point("qa-running")
    report = run_quality_gates(
        worktree,
        ws.settings.quality_gates,
        sandbox=ws.sandbox,
        log_dir=ws.gate_log_dir(ticket.id),
        attempt=journal.qa_attempts,
    )
    record_qa(ws, ticket.id, report)
    journal.qa_summaries.append(report.summary())
    return report


def _qa(ws: Workspace, ticket: Ticket, worktree: Path, base: str) -> tuple[Ticket, str | None]:
    git = GitRepo(worktree)
    report = _run_gates(ws, ticket, worktree)
    if report.passed:
        moved = _apply(ws, transition(ticket, State.DOCUMENTING, at=ws.clock()), "qa-passed", report.summary())
        return moved, git.tree_of("HEAD")
    feedback = agents.triage(ws, ticket, report, base)
    return _send_back(ws, ticket, feedback, f"QA failed ({report.summary()})", worktree), None


def _document(
    ws: Workspace, ticket: Ticket, worktree: Path, base: str, qa_tree: str | None
) -> tuple[Ticket, str | None]:
    git = GitRepo(worktree)
    docs = agents.document(ws, ticket, base, worktree, ticket.notes)
    ws.tracker.journal_of(ticket.id).docs.append(docs.note)
    if not docs.passed:
        return _send_back(ws, ticket, f"The documentation gate failed: {docs.note}", "docs gate failed", worktree), None
    if docs.written:
        ws.worktrees.save(ticket.id, f"docs({ticket.id}): {ticket.title}")
    head = git.head_sha()
    if qa_tree is None or git.tree_of(head) != qa_tree:
        # The steward changed the tree (or a resumed run has no QA of this one): the merged tree must be the
        # tree that passed QA, so the gates run again on it.
        report = _run_gates(ws, ticket, worktree)
        if not report.passed:
            feedback = agents.triage(ws, ticket, report, base)
            event = f"QA failed after the docs update ({report.summary()})"
            return _send_back(ws, ticket, feedback, event, worktree), None
        qa_tree = git.tree_of(head)
    if docs.note and docs.note not in ticket.notes:  # the release's documentation checklist reads the waiver here
        ticket = ticket.model_copy(update={"notes": f"{ticket.notes}; {docs.note}" if ticket.notes else docs.note})
    moved = transition(ticket, State.INTEGRATING, at=ws.clock())
    return _apply(ws, moved, "ready", docs.note, branch_head=head), qa_tree


def _verify(ws: Workspace, ticket: Ticket, worktree: Path, base: str) -> DeliveryResult:
    """A phase verification ticket: the full gates on main's current tip; done when they pass."""
    git = GitRepo(worktree)
    main = GitRepo(ws.repo).rev_parse(ws.settings.git.main_branch)
    if git.head_sha() != main:
        git.reset_hard(main)
    if ticket.state is State.QUEUED:
        ticket = _apply(ws, transition(ticket, State.QA, at=ws.clock()), "started", "verification on main")
    report = _run_gates(ws, ticket, worktree)
    if report.passed:
        _apply(ws, transition(ticket, State.DONE, at=ws.clock()), "done", f"verified main at {main[:10]}")
        return DeliveryResult(ticket.id, DeliveryStatus.FINISHED, head=main)
    failing = report.first_failure
    reason = f"phase verification failed on main: {report.summary()}"
    hold(ws, ticket, reason, command=failing.command if failing else None)
    return DeliveryResult(ticket.id, DeliveryStatus.HELD, reason)
