"""Seed 000's final run report and the per-ticket summaries (issue 5 §6), as markdown.

The same text becomes a Prefect artifact and ``automations/runs/<run-id>/record/REPORT.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.ticket import State, Ticket
from conveyor.services.tracker import TicketJournal, Tracker


@dataclass
class RunOutcome:
    run_id: str
    backend: str
    stopped: str = ""  # why the run stopped early, if it did
    merges: list[tuple[str, str]] = field(default_factory=list)  # (ticket, commit)
    notes: list[str] = field(default_factory=list)
    reward_deltas: list[tuple[str, float]] = field(default_factory=list)


def ticket_markdown(ticket: Ticket, journal: TicketJournal) -> str:
    lines = [f"# {ticket.id}: {ticket.title}", "", f"**State:** {ticket.state.value}"]
    if ticket.flags:
        lines.append(f"**Flags:** {', '.join(sorted(f.value for f in ticket.flags))}")
    lines += [
        f"**Branch:** {ticket.branch or '-'}",
        f"**Iterations:** {ticket.iterations}",
        f"**Cost:** ${ticket.cost_usd:.4f}",
        f"**Merge commit:** {journal.merge_commit or '-'}",
        "",
        "## Review",
        *(f"- {n}" for n in journal.review_notes or ["(no review yet)"]),
        "",
        "## QA",
        *(f"- {s}" for s in journal.qa_summaries or ["(no QA run yet)"]),
        "",
        "## Docs",
        *(f"- {d}" for d in journal.docs or ["-"]),
    ]
    if journal.ops:
        lines += ["", "## Ops", *(f"- {o}" for o in journal.ops)]
    if ticket.reward:
        lines += ["", "## Reward", *(f"- {k}: {v}" for k, v in sorted(ticket.reward.items()))]
    if journal.events:
        lines += ["", "## Events", *(f"- {e}" for e in journal.events)]
    return "\n".join(lines) + "\n"


def backlog_table(tracker: Tracker) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "title": t.title,
            "state": t.state.value,
            "flags": ", ".join(sorted(f.value for f in t.flags)),
            "depends_on": ", ".join(t.depends_on),
            "iterations": t.iterations,
            "cost_usd": round(t.cost_usd, 4),
        }
        for t in tracker.backlog
    ]


def final_report(tracker: Tracker, outcome: RunOutcome) -> str:
    tickets = list(tracker.backlog)
    done = [t for t in tickets if t.state is State.DONE]
    given_up = [t for t in tickets if t.state in (State.FAILED, State.DEFERRED, State.SKIPPED)]
    open_ = [t for t in tickets if not t.state.is_terminal]
    blockers = tracker.state.open_blockers()
    position = tracker.position()
    qa_runs = sum(tracker.journal_of(t.id).qa_attempts for t in tickets)
    docs = [(t.id, d) for t in tickets for d in tracker.journal_of(t.id).docs if "updated" in d]
    lines = [
        f"# Run report {outcome.run_id}",
        "",
        f"Agents: {outcome.backend}.",
    ]
    if outcome.stopped:
        lines += ["", f"**Stopped early:** {outcome.stopped}"]
    lines += ["", f"## Tickets completed ({len(done)} of {len(tickets)})"]
    lines += [f"- {t.id}: {t.title}" for t in done] or ["- none"]
    lines += ["", "## Phases"]
    lines += phase_lines(tickets) or ["- no phases"]
    lines += ["", "## Merges"]
    lines += [f"- {tid}: {sha[:10]}" for tid, sha in outcome.merges] or ["- none this run"]
    lines += ["", "## Blockers"]
    lines += [f"- {tid or 'run'}: {b.reason}" for tid, b in blockers] or ["- none"]
    if given_up:
        lines += ["", "## Deferred, failed or skipped"]
        lines += [f"- {t.id} ({t.state.value}): {t.title}" for t in given_up]
    lines += ["", "## Tests run", f"- QA gate runs this run: {qa_runs}"]
    lines += ["", "## Docs updates"]
    lines += [f"- {tid}: {d}" for tid, d in docs] or ["- none"]
    lines += [
        "",
        "## Cost",
        f"- used ${position.used_usd:.4f} of a ${position.cap_usd:.2f} cap ({position.cap_source.value}); "
        f"projected ${position.projected_usd:.4f}; mode {position.mode.value}",
    ]
    lines += ["", "## Reward deltas"]
    lines += [f"- {tid}: {delta:+.4f}" for tid, delta in outcome.reward_deltas] or ["- none"]
    if outcome.notes:
        lines += ["", "## Notes", *(f"- {n}" for n in outcome.notes)]
    lines += ["", "## Next steps"]
    if open_:
        lines.append(f"- {len(open_)} ticket(s) still open: " + ", ".join(t.id for t in open_[:12]))
        lines.append("- answer or unblock the blocked tickets, then `conveyor run --resume`")
    else:
        lines.append("- every ticket is finished: release the milestone")
    return "\n".join(lines) + "\n"


def phase_lines(tickets: list[Ticket]) -> list[str]:
    """Seed 001 "Two-Phase Completion": a phase is complete when every ticket is done or deferred."""
    phases = sorted({t.phase for t in tickets if t.phase is not None})
    lines = []
    for phase in phases:
        members = [t for t in tickets if t.phase == phase]
        done = sum(1 for t in members if t.state is State.DONE)
        deferred = sum(1 for t in members if t.state is State.DEFERRED)
        finished = all(t.state in (State.DONE, State.DEFERRED, State.SKIPPED, State.OBSOLETE) for t in members)
        status = "complete" if finished else "open"
        lines.append(f"- phase {phase}: {status} ({done} done, {deferred} deferred, {len(members)} tickets)")
    return lines
