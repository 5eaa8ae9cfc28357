"""Phase issues on GitHub (issue 6; seed 001 Phase 1 Step 5): with ``forge: github``, bootstrap opens one issue
per phase (the tickets of a plan without phases share one) in the milestone named after the build-spec milestone,
and links every ticket's TASKS.md issue column to its phase's issue.

The issue holds the phase's findings (ticket, severity, title, location) and an acceptance checklist (every
ticket's criteria). Re-running bootstrap updates the issue found by its title, never opens a second one. The
execution loop closes a phase's issue when the phase's verification ticket is done; the release closes the
issues its tickets link to and then the milestone.
"""

from __future__ import annotations

import re

from conveyor.adapters.forges.github import GitHubForge
from conveyor.domain.ticket import State, Ticket, TicketKind
from conveyor.settings import Settings

_ISSUE_NUMBER = re.compile(r"/issues/(\d+)$")


def issue_title(milestone: str, phase: int | None) -> str:
    return f"Milestone {milestone}" if phase is None else f"Milestone {milestone}: phase {phase}"


def issue_body(milestone: str, phase: int | None, tickets: list[Ticket]) -> str:
    scope = "the milestone" if phase is None else f"phase {phase}"
    lines = [f"Conveyor's tracking issue for {scope} of milestone {milestone} (docs/TASKS.md).", "", "## Findings", ""]
    for ticket in tickets:
        where = f" ({ticket.source.file})" if ticket.source is not None else ""
        severity = f"[{ticket.severity.value}] " if ticket.severity is not None else ""
        lines.append(f"- {ticket.id}: {severity}{ticket.title}{where}")
    lines += ["", "## Acceptance checklist", ""]
    for ticket in tickets:
        for criterion in ticket.acceptance_criteria or (ticket.title,):
            lines.append(f"- [ ] {ticket.id}: {criterion}")
    verification = [t.id for t in tickets if t.kind is TicketKind.VERIFICATION]
    if verification:
        lines += ["", f"Closed when {', '.join(verification)} (the phase's verification on main) is done."]
    else:
        lines += ["", "Closed by the milestone's release."]
    return "\n".join(lines) + "\n"


def issue_number(link: str | None) -> int | None:
    found = _ISSUE_NUMBER.search(link or "")
    return int(found[1]) if found else None


def open_phase_issues(forge: GitHubForge, settings: Settings, tickets: list[Ticket]) -> list[Ticket]:
    """The tickets with their issue column linking to their phase's issue (opened or updated on GitHub)."""
    name = settings.milestone.name
    milestone = forge.issues.ensure_milestone(name, f"Conveyor milestone {name} (version {settings.milestone.version})")
    phases = sorted({t.phase for t in tickets}, key=lambda p: (p is not None, p or 0))
    links: dict[int | None, str] = {}
    for phase in phases:
        group = [t for t in tickets if t.phase == phase]
        _, url = forge.issues.open_phase_issue(
            issue_title(name, phase), issue_body(name, phase, group), milestone, [settings.github.label]
        )
        links[phase] = url
    return [t if t.issue == links[t.phase] else t.model_copy(update={"issue": links[t.phase]}) for t in tickets]


def close_phase_issue(forge: GitHubForge, ticket: Ticket) -> bool:
    """Close the issue of a done verification ticket's phase; False when there is nothing to close."""
    number = issue_number(ticket.issue)
    if ticket.kind is not TicketKind.VERIFICATION or ticket.state is not State.DONE or number is None:
        return False
    forge.issues.close_issue(number)
    return True
