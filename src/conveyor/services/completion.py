"""What a ticket's end leaves behind (issue 5 §4): its reward, its learning record, or its deferral entry.

- done: the reward components of :mod:`conveyor.domain.rewards` are persisted on the ticket (run-state and
  run-queue); a variance beyond seed 001's thresholds appends a record to docs/tasks/orchestrator-learnings.json.
- deferred or failed: an entry in docs/reports/deferred/deferred-errors.md with category, reason and a
  suggested approach (seed 001 "Two-Phase Completion"), and the ticket's QA record moves to ``qa-failed/``.
"""

from __future__ import annotations

import json

from conveyor.adapters.atomic import write_text
from conveyor.adapters.forges.github import GitHubForge
from conveyor.adapters.learnings_file import LEARNINGS_PATH, read_learnings
from conveyor.domain.budget import ticket_estimate_usd
from conveyor.domain.learning import capture_for_ticket
from conveyor.domain.rewards import RewardInputs, declining_streak, reward_components, reward_total
from conveyor.domain.ticket import Ticket
from conveyor.services.phase_issues import close_phase_issue
from conveyor.services.qa_records import move_to_failed
from conveyor.services.workspace import Workspace

DEFERRED_PATH = "docs/reports/deferred/deferred-errors.md"
_DEFERRED_HEAD = (
    "# Deferred tickets\n\nTickets the execution loop could not finish, with why and what to try next "
    "(seed 001 Two-Phase Completion). Written by Conveyor; add your own notes below an entry.\n"
)


def on_done(ws: Workspace, ticket: Ticket) -> float:
    """Reward and learning of a merged ticket; returns the reward total."""
    journal = ws.tracker.journal_of(ticket.id)
    prices = ws.models.prices()
    estimate = ticket_estimate_usd(ticket, prices) if ticket.estimate_tokens else None
    inputs = RewardInputs(
        first_review_approved=journal.first_review_approved is not False,
        qa_attempts=max(1, journal.qa_attempts),
        cost_usd=ticket.cost_usd,
        estimate_usd=estimate,
        iterations=ticket.iterations,
        max_iterations=ws.settings.max_iterations,
    )
    components = reward_components(inputs)
    total = reward_total(components)
    ws.tracker.reward(ticket.id, components, total)
    if isinstance(ws.forge, GitHubForge):
        close_phase_issue(ws.forge, ticket)  # a verification ticket done: its phase's issue is done
    record = capture_for_ticket(ticket, ws.clock(), analysis=f"run {ws.run_id}")
    if record is not None:
        with ws.tracker.lock:
            records = [*read_learnings(ws.repo), record]
            text = json.dumps([r.model_dump(mode="json") for r in records], indent=2, ensure_ascii=False) + "\n"
            write_text(ws.repo / LEARNINGS_PATH, text)
    return total


def reward_declining(totals: list[float]) -> bool:
    return declining_streak(totals)


def on_given_up(ws: Workspace, ticket: Ticket, category: str, reason: str, approach: str) -> None:
    """A ticket deferred or failed: its deferral entry, and its gate reports kept apart from passed ones."""
    move_to_failed(ws, ticket.id)
    path = ws.repo / DEFERRED_PATH
    entry = (
        f"\n## {ticket.id}: {ticket.title}\n\n"
        f"- **State:** {ticket.state.value}\n"
        f"- **Category:** {category}\n"
        f"- **Reason:** {reason}\n"
        f"- **Suggested approach:** {approach}\n"
        f"- **Run:** {ws.run_id}; iterations {ticket.iterations}; cost ${ticket.cost_usd:.4f}\n"
    )
    with ws.tracker.lock:  # a tracking path: never written while a squash commit is being built
        text = path.read_text(encoding="utf-8") if path.exists() else _DEFERRED_HEAD
        write_text(path, text + entry)


def categorise(reason: str) -> tuple[str, str]:
    """(category, suggested approach) for a give-up reason, by the words the loop itself writes."""
    lowered = reason.lower()
    if "iteration limit" in lowered:
        return "iteration-limit", "Split the ticket or sharpen its acceptance criteria, then retry with guidance."
    if "qa failed" in lowered or "verification failed" in lowered:
        return "quality-gates", "Reproduce the failing gate locally from the QA logs and fix the root cause first."
    if "deterministic mode" in lowered:
        return "no-model", "Run with an LLM backend (ANTHROPIC_API_KEY) or implement the ticket by hand."
    if "budget" in lowered:
        return "budget", "Raise the ticket or run cap, or reduce the ticket's scope."
    if "conflict" in lowered or "rebase" in lowered:
        return "merge-conflict", "Rebase the ticket's branch onto main by hand, or re-plan it after its neighbours."
    if "implementer" in lowered:
        return "agent-failure", "Read the implementer's transcript; retry with guidance that names the obstacle."
    return "other", "Read the ticket's run record and decide: retry with guidance, split, or drop."
