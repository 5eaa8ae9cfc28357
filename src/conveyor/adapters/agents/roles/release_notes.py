"""Release-notes writer: the milestone's delivered tickets and commits → release notes (title, summary,
highlights, changes, breaking changes) for docs/releases/v<version>.md and CHANGELOG.md.

Default tier: normal. Default stage: ``release``.
"""

from collections.abc import Sequence
from typing import Any

import dspy  # type: ignore[import-untyped]

from conveyor.adapters.agents.roles.base import RoleCall, RoleOutcome, RoleProgram, clip_head, run_role
from conveyor.domain.agent import AgentRole
from conveyor.domain.roles import ReleaseNotes
from conveyor.domain.ticket import ModelTier, Ticket

MAX_LIST_CHARS = 60_000


class ReleaseNotesSignature(dspy.Signature):  # type: ignore[misc]
    """Write the release notes of a milestone."""

    version: str = dspy.InputField(desc="The version being released, e.g. 0.1.0.")
    tickets: str = dspy.InputField(desc="The delivered tickets: id, type, title and description.")
    commits: str = dspy.InputField(desc="Commit subjects on main since the previous release.")
    release_notes: ReleaseNotes = dspy.OutputField(desc="The release notes.")


class ReleaseNotesProgram(RoleProgram):
    ROLE = AgentRole.RELEASE_NOTES
    VERSION = "1"
    SIGNATURE = ReleaseNotesSignature
    OUTPUT_FIELD = "release_notes"
    OUTPUT_TYPE = ReleaseNotes
    DEFAULT_TIER = ModelTier.NORMAL
    DEFAULT_STAGE = "release"


def tickets_text(tickets: Sequence[Ticket]) -> str:
    lines = []
    for ticket in tickets:
        kind = f" [{ticket.task_type.value}]" if ticket.task_type else ""
        summary = ticket.description.strip().splitlines()[0] if ticket.description.strip() else ""
        lines.append(f"- {ticket.id}{kind}: {ticket.title}" + (f" — {summary}" if summary else ""))
    return "\n".join(lines) or "(none)"


def run(
    call: RoleCall,
    *,
    version: str,
    tickets: Sequence[Ticket],
    commits: Sequence[str],
    program: ReleaseNotesProgram | None = None,
) -> RoleOutcome[ReleaseNotes]:
    """Release notes for ``version`` from the delivered ``tickets`` and the ``commits`` (subjects)."""
    inputs: dict[str, Any] = {
        "version": version,
        "tickets": clip_head(tickets_text(tickets), MAX_LIST_CHARS),
        "commits": clip_head("\n".join(f"- {c.strip()}" for c in commits if c.strip()) or "(none)", MAX_LIST_CHARS),
    }
    return run_role(ReleaseNotesProgram, call, inputs, ReleaseNotes, program=program)
