"""The merge queue: one integration at a time, owned by the execution loop (issue 5 §3, ARCHITECTURE.md §4).

A READY ticket is squash-merged through the Forge port. The ticket's terminal record (done, or ops when ops
commands are configured) is written to the tracking files *before* the squash commit is built, so the
commit that merges a ticket also records it; if the forge does not merge, the record is put back.

When main moved in code since the branch's base, the queue rebases the branch in its worktree and runs the
QA gates again before it merges (the squash commit's code must be the tree that passed QA). A rebase
conflict or a failed re-run goes back to the implementer (REDELIVER). After a merge the optional ops step
runs the build-spec's ops commands on main; a failure reverts the merge and files a remediation ticket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from conveyor.adapters.crash import crash_scope
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.quality_gates import run_quality_gates
from conveyor.domain.errors import ConveyorError
from conveyor.domain.merge import MergeRequest, MergeStatus
from conveyor.domain.review import follow_up_id
from conveyor.domain.ticket import Severity, State, Ticket, TicketKind, transition
from conveyor.services import delivery_agents as agents
from conveyor.services.delivery import hold, return_to_implementer
from conveyor.services.qa_records import record_qa
from conveyor.services.workspace import Workspace

MAX_REQUALIFY = 3


class IntegrationStatus(StrEnum):
    MERGED = "merged"
    REDELIVER = "redeliver"  # back to the implementer: dispatch the ticket again
    HELD = "held"
    REVERTED = "reverted"  # merged, then the ops step failed and the merge was reverted


@dataclass(frozen=True)
class IntegrationResult:
    ticket_id: str
    status: IntegrationStatus
    commit: str | None = None
    detail: str = ""


def integrate(ws: Workspace, ticket_id: str, qa_tree: str) -> IntegrationResult:
    with ws.integration_lock:
        for _ in range(MAX_REQUALIFY):
            ticket = ws.tracker.ticket(ticket_id)
            request = MergeRequest(
                ticket_id=ticket.id,
                title=ticket.title,
                branch=ticket.branch or ws.worktrees.get(ticket.id).branch,  # type: ignore[union-attr]
                qa_tree=qa_tree,
                run_id=ws.run_id,
            )
            with ws.tracker.lock, crash_scope("merge"):
                after = _finished(ws, ticket)
                ws.tracker.apply(after)
                outcome = ws.forge.integrate(request)
                if outcome.status not in (MergeStatus.MERGED, MergeStatus.ALREADY_MERGED):
                    ws.tracker.apply(ticket)
            if outcome.status in (MergeStatus.MERGED, MergeStatus.ALREADY_MERGED):
                journal = ws.tracker.journal_of(ticket.id)
                journal.merge_commit = outcome.commit
                ws.tracker.apply(after, event="merged", detail=f"squash commit {outcome.commit}")
                if after.state is State.OPS:
                    return _ops(ws, after, outcome.commit or "")
                ws.tracker.apply(after, event="done", detail=f"merged as {str(outcome.commit)[:10]}")
                return IntegrationResult(ticket.id, IntegrationStatus.MERGED, outcome.commit)
            if outcome.status is MergeStatus.NEEDS_REBASE:
                requalified = _requalify(ws, ticket)
                if isinstance(requalified, IntegrationResult):
                    return requalified
                qa_tree = requalified
                continue
            if outcome.status is MergeStatus.CONFLICT:
                feedback = (
                    "Merging into main conflicts in: "
                    + ", ".join(outcome.conflicts)
                    + ". Main changed since your branch was made; rebase your change onto the current code."
                )
                return _back(ws, ticket, feedback, "merge conflict")
            if outcome.status is MergeStatus.CHECKS_FAILED:
                feedback = f"The forge's CI checks failed on the pull request: {outcome.detail}"
                return _back(ws, ticket, feedback, "checks failed")
            reason = f"merge refused: {outcome.detail}"
            hold(ws, ticket, reason)
            return IntegrationResult(ticket.id, IntegrationStatus.HELD, detail=reason)
        reason = f"main kept moving: {MAX_REQUALIFY} rebases and QA runs did not reach a mergeable branch"
        hold(ws, ws.tracker.ticket(ticket_id), reason)
        return IntegrationResult(ticket_id, IntegrationStatus.HELD, detail=reason)


def _finished(ws: Workspace, ticket: Ticket) -> Ticket:
    target = State.OPS if ws.settings.ops else State.DONE
    return transition(ticket, target, at=ws.clock())


def _back(ws: Workspace, ticket: Ticket, feedback: str, event: str) -> IntegrationResult:
    moved = return_to_implementer(ws, ticket, feedback, event, ws.worktrees.worktree_path(ticket.id))
    if moved.is_blocked:
        reason = f"iteration limit ({ws.settings.max_iterations}) reached after {event}"
        return IntegrationResult(ticket.id, IntegrationStatus.HELD, detail=reason)
    return IntegrationResult(ticket.id, IntegrationStatus.REDELIVER, detail=event)


def _requalify(ws: Workspace, ticket: Ticket) -> str | IntegrationResult:
    """Rebase onto main and run QA again; the new QA tree, or what to do instead."""
    rebased = ws.worktrees.rebase(ticket.id, ws.settings.git.main_branch)
    if not rebased.ok:
        feedback = f"Rebasing onto main conflicts in: {', '.join(rebased.conflicts)}. Rework the change on top of main."
        return _back(ws, ticket, feedback, "rebase conflict")
    ticket = ws.tracker.apply(
        transition(ticket, State.QA, at=ws.clock()), event="rebased", detail=f"onto {rebased.onto[:10]}"
    )
    entry = ws.worktrees.get(ticket.id)
    if entry is None:
        raise ConveyorError(f"{ticket.id}: no worktree recorded for the rebased branch")
    worktree = ws.worktrees.worktree_path(ticket.id)
    journal = ws.tracker.journal_of(ticket.id)
    journal.qa_attempts += 1
    report = run_quality_gates(
        worktree,
        ws.settings.quality_gates,
        sandbox=ws.sandbox,
        log_dir=ws.gate_log_dir(ticket.id),
        attempt=journal.qa_attempts,
    )
    record_qa(ws, ticket.id, report)
    journal.qa_summaries.append(f"after rebase: {report.summary()}")
    if not report.passed:
        feedback = agents.triage(ws, ticket, report, entry.base)
        return _back(ws, ticket, feedback, f"QA failed after rebasing onto main ({report.summary()})")
    ticket = ws.tracker.apply(transition(ticket, State.DOCUMENTING, at=ws.clock()))
    ws.tracker.apply(transition(ticket, State.INTEGRATING, at=ws.clock()), event="qa-passed", detail="after rebase")
    return GitRepo(worktree).tree_of("HEAD")


def _ops(ws: Workspace, ticket: Ticket, commit: str) -> IntegrationResult:
    """The ops step on main after a merge: telemetry of each command; a failure reverts and files a ticket."""
    journal = ws.tracker.journal_of(ticket.id)
    failed = None
    for command in ws.settings.ops:
        started = time.monotonic()
        result = ws.sandbox.run(command.argv, cwd=ws.repo, timeout_s=command.timeout_s)
        took = time.monotonic() - started
        ok = result.error is None and result.exit_code == 0
        journal.ops.append(f"{command.name}: {'ok' if ok else 'FAILED'} in {took:.2f} s (exit {result.exit_code})")
        if not ok:
            failed = (command, result)
            break
    if failed is None:
        ws.tracker.apply(transition(ticket, State.DONE, at=ws.clock()), event="done", detail="; ".join(journal.ops))
        return IntegrationResult(ticket.id, IntegrationStatus.MERGED, commit)
    command, result = failed
    with ws.tracker.lock:
        failed_ticket = transition(ticket, State.FAILED, at=ws.clock()).model_copy(
            update={"notes": f"{ticket.notes}; ops step {command.name} failed: merge reverted".lstrip("; ")}
        )
        remediation = Ticket(
            id=f"{follow_up_id(ticket.id)[: -len('-QA')]}-OPS",
            title=f"Fix the ops failure of {ticket.id} ({command.name})",
            description=(
                f"After {ticket.id} merged, the ops command `{' '.join(command.argv)}` failed and the merge was "
                f"reverted.\n\nOutput (tail):\n{result.output[-2000:]}"
            ),
            acceptance_criteria=(f"`{' '.join(command.argv)}` succeeds on main after the change",),
            kind=TicketKind.CHANGE,
            phase=ticket.phase,
            severity=Severity.HIGH,
            touch_set=ticket.touch_set,
            complexity=ticket.complexity,
        )
        ws.tracker.apply(failed_ticket)
        if remediation.id not in ws.tracker.backlog:
            ws.tracker.add_tickets([remediation])
        revert = ws.forge.revert(commit, f"Revert {ticket.id}: ops step {command.name} failed")
    ws.tracker.apply(failed_ticket, event="failed", detail=f"ops step {command.name} failed; reverted by {revert}")
    return IntegrationResult(ticket.id, IntegrationStatus.REVERTED, revert, f"ops step {command.name} failed")
