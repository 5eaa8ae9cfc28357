"""The agent calls of delivery: implementer, reviewer, QA triage and knowledge steward (issue 5 §2).

Each call goes through the run's AgentBackend (so replay, logs, redaction and the budget apply) and its cost
is booked on the ticket. Without a backend (deterministic mode) there is no implementer; the review is the
mechanical one (the decision table over the changed paths, QA gates later) and says so; the steward waives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.adapters.atomic import write_text
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.agent import IMPLEMENTER_TOOLS, AgentRequest, AgentResult, AgentRole, Limits
from conveyor.domain.errors import ConveyorError
from conveyor.domain.qa import QAReport
from conveyor.domain.roles import AgentCallError, DocUpdates, ReviewVerdict
from conveyor.domain.ticket import Ticket
from conveyor.ports import AgentBackend
from conveyor.services import mechanical
from conveyor.services.agents import role_tier
from conveyor.services.workspace import Workspace

if TYPE_CHECKING:  # the role programs import dspy (1.5 s): only the calls that run a model load them
    from conveyor.adapters.agents.roles.base import RoleCall

IMPLEMENTER_PROMPT_VERSION = "implementer-1"
DOC_SUFFIXES = (".md", ".rst", ".txt")


class _Limited:
    """The run's backend, each call holding one slot of the run's Limiter (concurrent LLM calls are capped)."""

    def __init__(self, ws: Workspace, inner: AgentBackend) -> None:
        self._ws = ws
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    def run(self, request: AgentRequest) -> AgentResult:
        with self._ws.limiter.slot():
            return self._inner.run(request)


def limited_backend(ws: Workspace) -> AgentBackend:
    if ws.backend is None:
        raise ConveyorError("deterministic mode: no agent backend to call")
    return _Limited(ws, ws.backend)


def _call(ws: Workspace, ticket: Ticket, role: str, base: str) -> RoleCall:
    from conveyor.adapters.agents.roles.base import RoleCall

    limits = Limits(max_usd=ws.settings.budget.ticket_cap_usd) if ws.settings.budget.ticket_cap_usd else None
    return RoleCall(
        backend=limited_backend(ws),
        run_id=ws.run_id,
        ticket_id=ticket.id,
        attempt=max(1, ticket.attempt),
        tier=role_tier(ws.settings, role),
        base_commit=base,
        repo_root=ws.repo,
        limits=limits,
    )


def implement(ws: Workspace, ticket: Ticket, worktree: Path, feedback: str, start: str) -> AgentResult:
    """One implementer round in the ticket's worktree, from commit ``start`` (the head when the round began: a
    resumed run replays a finished call); the result's commit is on the ticket branch."""
    backend = limited_backend(ws)
    head = start
    request = AgentRequest(
        role=AgentRole.IMPLEMENTER,
        run_id=ws.run_id,
        ticket_id=ticket.id,
        stage="implementing",
        attempt=max(1, ticket.attempt),
        tier=ticket.model_tier,
        prompt_version=IMPLEMENTER_PROMPT_VERSION,
        base_commit=head,
        inputs={
            "ticket": ticket.model_dump(
                mode="json",
                include={"id", "title", "description", "acceptance_criteria", "finding_id", "source", "touch_set"},
            ),
            "branch": ticket.branch,
            "quality_gates": [gate.argv for gate in ws.settings.quality_gates],
            "feedback": feedback,
            "iteration": ticket.iterations,
        },
        tools=IMPLEMENTER_TOOLS,
        workdir=str(worktree),
        limits=Limits(max_usd=ws.settings.budget.ticket_cap_usd) if ws.settings.budget.ticket_cap_usd else Limits(),
    )
    result = backend.run(request)
    if not result.replayed:  # a replayed call was booked by the run that made it
        ws.tracker.spend(ticket.id, AgentRole.IMPLEMENTER.value, result.cost_usd, result.usage.total)
    return result


def review(ws: Workspace, ticket: Ticket, base: str, head: str, worktree: Path) -> tuple[ReviewVerdict | None, str]:
    """The reviewer's verdict on the change (None: no review in scope), and who reviewed."""
    diff = GitRepo(worktree).diff_text(base, head)
    if ws.backend is None:
        return mechanical.no_llm_review(ws, ticket, base, head, worktree), "no-LLM review (deterministic mode)"
    from conveyor.adapters.agents.roles import reviewer

    outcome = reviewer.run(_call(ws, ticket, AgentRole.REVIEWER.value, base), ticket=ticket, diff=diff)
    ws.tracker.spend(ticket.id, AgentRole.REVIEWER.value, outcome.cost_usd, outcome.usage.total)
    model = outcome.last_result.model if outcome.last_result else ""
    return outcome.output, f"{ws.backend_label} {model}".strip()


def triage(ws: Workspace, ticket: Ticket, report: QAReport, base: str) -> str:
    """The QA failure summary for the implementer: the triage agent's, then the gates' own log tails."""
    raw = report.feedback()
    if ws.backend is None:
        return raw
    try:
        from conveyor.adapters.agents.roles import qa_triage

        outcome = qa_triage.run(
            _call(ws, ticket, AgentRole.QA_TRIAGE.value, base), gate_logs=report.logs_for_triage(), ticket=ticket
        )
    except AgentCallError as exc:
        return f"(QA triage unavailable: {exc})\n\n{raw}"
    ws.tracker.spend(ticket.id, AgentRole.QA_TRIAGE.value, outcome.cost_usd, outcome.usage.total)
    found = outcome.output
    lines = [f"QA triage: {found.failure_summary}"]
    if found.likely_cause:
        lines.append(f"Likely cause: {found.likely_cause}")
    return "\n".join(lines) + "\n\n" + raw


@dataclass(frozen=True)
class DocsResult:
    written: list[str]
    note: str
    passed: bool


def document(ws: Workspace, ticket: Ticket, base: str, worktree: Path, notes: str) -> DocsResult:
    """The knowledge steward in the worktree: the documentation updates it writes, or its waiver (the docs gate)."""
    if ws.backend is None:
        return DocsResult([], "Docs: waived (deterministic mode, no steward)", True)
    git = GitRepo(worktree)
    doc_files = [p.relative_to(worktree).as_posix() for p in worktree.rglob("*") if _is_doc(p, worktree)]
    from conveyor.adapters.agents.roles import steward

    outcome = steward.run(
        _call(ws, ticket, AgentRole.STEWARD.value, base),
        change_summary=f"{ticket.id}: {ticket.title}\n{ticket.description}\n{notes}",
        diff=git.diff_text(base, "HEAD"),
        doc_files=sorted(doc_files),
    )
    ws.tracker.spend(ticket.id, AgentRole.STEWARD.value, outcome.cost_usd, outcome.usage.total)
    return apply_doc_updates(worktree, outcome.output)


def apply_doc_updates(worktree: Path, updates: DocUpdates) -> DocsResult:
    written: list[str] = []
    pending: list[str] = []
    for update in updates.updates:
        if update.content is not None:
            write_text(worktree / update.path, update.content)
            written.append(update.path)
        else:
            pending.append(f"{update.path}: {update.patch_summary or update.reason}")
    if written:
        note = f"Docs: updated {', '.join(written)}"
    elif updates.waiver:
        note = f"Docs: waived ({updates.waiver})"
    else:
        note = "Docs: no update and no waiver"
    if pending:
        note += f"; not applied (no content given): {'; '.join(pending)}"
    passed = bool(written or updates.waiver or updates.checklist_complete) and not pending
    return DocsResult(written, note, passed)


def _is_doc(path: Path, root: Path) -> bool:
    rel = path.relative_to(root).as_posix()
    return path.is_file() and path.suffix in DOC_SUFFIXES and not rel.startswith((".git", ".conveyor"))
