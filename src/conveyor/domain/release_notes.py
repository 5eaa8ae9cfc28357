"""docs/releases/v<version>.md without the release-notes agent, and the retrospective every release carries.

The deterministic notes (:func:`fallback_release_notes`) hold, in order: the title ``# v<version> — <milestone>``,
the milestone completion summary (tickets by state), the delivered (done) tickets with the short sha of their
merge commit when known, the tickets not delivered (deferred with the reason from deferred-errors.md, skipped,
obsolete, anything else) with their state, the commits, and the retrospective. Titles and subjects are put
on one line; tickets are listed by id.

The retrospective (seed 001 "Run final retrospective"; :func:`render_retrospective`, which the release also
appends to agent-written notes) is a table per task type over the done tickets that have both a positive
token estimate and a recorded usage (others are skipped and counted): tickets, estimated and used tokens in
thousands, and the variance of the type's totals, ``(used - estimated) / estimated``. A type whose
|variance| is above 50 % (seed 001's capture threshold, :data:`conveyor.domain.learning.FLAG_MAX_PCT`) gets a
line with a heuristic proposal: scale that type's estimates by used / estimated; above 100 % it is
critical and its classification deserves a review. Types are ordered by |variance|, largest first;
unclassified tickets come last.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from conveyor.domain.learning import FLAG_MAX_PCT, VarianceAction, variance_action, variance_pct
from conveyor.domain.ticket import State, TaskType, Ticket

RETROSPECTIVE_HEADING = "## Retrospective: estimate variance by task type"
SHORT_SHA = 7
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class TypeRetro:
    task_type: TaskType | None
    tickets: int
    estimate_tokens: int
    used_tokens: int

    @property
    def name(self) -> str:
        return self.task_type.value if self.task_type is not None else UNCLASSIFIED

    @property
    def variance_pct(self) -> float:
        return variance_pct(self.estimate_tokens, self.used_tokens)

    @property
    def action(self) -> VarianceAction:
        return variance_action(self.variance_pct)

    @property
    def calibration(self) -> float:
        """used / estimated: the factor that would have made this type's estimates right in sum."""
        return round(self.used_tokens / self.estimate_tokens, 2)


def _measured(ticket: Ticket) -> bool:
    return ticket.state is State.DONE and bool(ticket.estimate_tokens) and ticket.used_tokens is not None


def variance_by_type(tickets: Iterable[Ticket]) -> list[TypeRetro]:
    """The retrospective's rows: done tickets with an estimate and a usage, grouped by task type."""
    groups: dict[TaskType | None, list[Ticket]] = {}
    for ticket in tickets:
        if _measured(ticket):
            groups.setdefault(ticket.task_type, []).append(ticket)
    rows = [
        TypeRetro(
            task_type,
            len(group),
            sum(t.estimate_tokens or 0 for t in group),
            sum(t.used_tokens or 0 for t in group),
        )
        for task_type, group in groups.items()
    ]
    return sorted(rows, key=lambda r: (r.task_type is None, -abs(r.variance_pct), r.name))


def _k(tokens: int) -> str:
    return f"{tokens / 1000:.1f}"


def render_retrospective(tickets: Iterable[Ticket]) -> str:
    """The retrospective section (heading, table, lines beyond the threshold), as Markdown."""
    tickets = list(tickets)
    rows = variance_by_type(tickets)
    done = sum(1 for t in tickets if t.state is State.DONE)
    skipped = done - sum(r.tickets for r in rows)
    out = [RETROSPECTIVE_HEADING, ""]
    if not rows:
        out.append(f"No done ticket has both a token estimate and a recorded usage ({done} done): no variance.")
        return "\n".join(out) + "\n"
    out += [
        "| task type | tickets | estimated (K tokens) | used (K tokens) | variance |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r.name} | {r.tickets} | {_k(r.estimate_tokens)} | {_k(r.used_tokens)} | {r.variance_pct:+.1f}% |"
            for r in rows
        ),
        "",
    ]
    if skipped:
        out += [f"{skipped} done ticket(s) without an estimate or a recorded usage are not counted.", ""]
    beyond = [r for r in rows if r.action.captures]
    if not beyond:
        out.append(f"Every task type is within ±{FLAG_MAX_PCT:g}% of its estimates: no heuristic change proposed.")
    for r in beyond:
        severity = "critical: review the task classification; " if r.action is VarianceAction.CRITICAL else ""
        out.append(
            f"- {r.name}: {r.variance_pct:+.1f}% over {r.tickets} ticket(s), beyond ±{FLAG_MAX_PCT:g}% — "
            f"{severity}proposal: scale {r.name} estimates by {r.calibration:g}."
        )
    return "\n".join(out).rstrip() + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short(sha: str) -> str:
    return sha.strip()[:SHORT_SHA]


def fallback_release_notes(
    version: str,
    milestone_name: str,
    tickets: Sequence[Ticket],
    *,
    commits: Sequence[tuple[str, str]] = (),
    merge_commits: Mapping[str, str] | None = None,
    deferral_reasons: Mapping[str, str] | None = None,
    released_on: date | None = None,
) -> str:
    """The deterministic docs/releases/v<version>.md (layout in the module docstring).

    ``commits`` are (sha, subject) pairs in the order to list them; ``merge_commits`` maps a ticket id to the
    sha of its merge commit; ``deferral_reasons`` maps a ticket id to its reason in deferred-errors.md.
    """
    version = version.strip().removeprefix("v")
    merge_commits = merge_commits or {}
    deferral_reasons = deferral_reasons or {}
    ordered = sorted(tickets, key=lambda t: t.id)
    counts = Counter(t.state for t in ordered)
    done = counts[State.DONE]
    out = [f"# v{version} — {_one_line(milestone_name)}", ""]
    if released_on is not None:
        out += [f"Released {released_on.isoformat()}.", ""]
    out += ["Written by Conveyor from the milestone's tickets and commits.", "", "## Milestone completion", ""]
    others = ", ".join(f"{counts[s]} {s.value}" for s in State if s is not State.DONE and counts[s])
    out.append(
        f"Milestone {_one_line(milestone_name)}: {done} of {len(ordered)} ticket(s) done"
        + (f"; {others}." if others else ".")
    )
    out += ["", "| state | tickets |", "|---|---:|", *(f"| {s.value} | {counts[s]} |" for s in State if counts[s]), ""]

    out += ["## Delivered", ""]
    delivered = [t for t in ordered if t.state is State.DONE]
    for ticket in delivered:
        sha = merge_commits.get(ticket.id)
        out.append(f"- {ticket.id} — {_one_line(ticket.title)}" + (f" (`{_short(sha)}`)" if sha else ""))
    if not delivered:
        out.append("No ticket was delivered.")
    out.append("")

    undelivered = [t for t in ordered if t.state is not State.DONE]
    if undelivered:
        out += ["## Not delivered", ""]
        for ticket in undelivered:
            line = f"- {ticket.id} — {_one_line(ticket.title)}: {ticket.state.value}"
            if ticket.state is State.DEFERRED:
                reason = _one_line(deferral_reasons.get(ticket.id, "")) or "no reason recorded"
                line += f" — {reason}"
            out.append(line)
        out.append("")

    out += ["## Commits", ""]
    out += [f"- `{_short(sha)}` {_one_line(subject)}" for sha, subject in commits] or ["No commits listed."]
    out += ["", render_retrospective(ordered)]
    return "\n".join(out).rstrip() + "\n"
