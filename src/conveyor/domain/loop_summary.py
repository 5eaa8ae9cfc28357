"""automations/memory/loop_summary.md: what one improvement loop did, and what the next one should know.

Seed 002's memory agent keeps the patterns and gotchas of a loop; the next loop's research agent reads only this
file (not the whole history). The finding counts before and after, per scanner, are the loop's measurement.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from conveyor.domain.issue_queue import IssueQueue, QueueStatus
from conveyor.domain.projections import tasks_status
from conveyor.domain.scan import ScanResult
from conveyor.domain.ticket import Ticket


@dataclass
class LoopOutcome:
    loop: int
    at: datetime
    backend: str
    run_id: str | None
    before: list[ScanResult]
    after: list[ScanResult]
    tickets: list[Ticket]
    findings_fixed: int
    suppressed: list[str]
    notes: list[str]
    queue: IssueQueue
    blocked: dict[str, str] = field(default_factory=dict)
    commit: str | None = None

    @property
    def total_before(self) -> int:
        return sum(r.count for r in self.before if r.available)

    @property
    def total_after(self) -> int:
        return sum(r.count for r in self.after if r.available)

    def headline(self) -> str:
        done = sum(1 for t in self.tickets if t.state.value == "done")
        return (
            f"Findings {self.total_before} -> {self.total_after} (scanners that ran); "
            f"{len(self.tickets)} ticket(s) filed, {done} done; backend: {self.backend}."
        )

    def rows(self) -> list[dict[str, object]]:
        """Per scanner: findings before and after (None where the scanner was unavailable)."""
        after = {r.scanner: r for r in self.after}
        out: list[dict[str, object]] = []
        for r in self.before:
            a = after.get(r.scanner)
            out.append(
                {
                    "scanner": r.scanner,
                    "before": r.count if r.available else None,
                    "after": a.count if a is not None and a.available else None,
                }
            )
        return out


def _cell(value: object) -> str:
    return "unavailable" if value is None else str(value)


def render_summary(o: LoopOutcome) -> str:
    lines = [
        f"# Improvement loop {o.loop}",
        "",
        f"- When: {o.at:%Y-%m-%d %H:%M} UTC; agents: {o.backend}; execution run: {o.run_id or '(none: nothing filed)'}",
        f"- {o.headline()}",
        f"- Findings fixed this loop: {o.findings_fixed}; queue: "
        + ", ".join(f"{k.value} {v}" for k, v in o.queue.counts().items())
        + f"; suppressed {len(o.queue.suppressed)}",
        "",
        "## Findings by scanner",
        "",
        "| Scanner | Before | After |",
        "|---|---|---|",
    ]
    lines += [f"| {r['scanner']} | {_cell(r['before'])} | {_cell(r['after'])} |" for r in o.rows()]
    lines += ["", "## Tickets", ""]
    lines += [f"- {t.id} ({tasks_status(t.state, t.flags)}): {t.title}" for t in o.tickets] or ["- none filed"]
    lines += ["", "## Patterns", "", *_patterns(o)]
    lines += ["", "## Gotchas", ""] + (_gotchas(o) or ["- none"])
    return "\n".join(lines) + "\n"


def _patterns(o: LoopOutcome) -> list[str]:
    live = [e for e in o.queue.entries if e.status in {QueueStatus.OPEN, QueueStatus.FILED}]
    rules = Counter(f"{e.finding.scanner} {e.finding.rule}" for e in live)
    files = Counter(e.finding.file for e in live)
    out = []
    if rules:
        out.append("- Most frequent open rules: " + ", ".join(f"{k} ({n})" for k, n in rules.most_common(5)))
    if files:
        out.append("- Files with most open findings: " + ", ".join(f"{k} ({n})" for k, n in files.most_common(5)))
    fixable = sum(1 for e in live if e.finding.fixable)
    out.append(f"- Open findings a mechanical fixer can fix: {fixable} of {len(live)}")
    return out


def _gotchas(o: LoopOutcome) -> list[str]:
    out = [f"- {ticket} held: {reason}" for ticket, reason in sorted(o.blocked.items())]
    out += [f"- suppressed: {item}" for item in o.suppressed]
    out += [f"- {note}" for note in o.notes]
    return out
