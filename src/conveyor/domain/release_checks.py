"""What blocks a milestone release, ticket by ticket (seed 001 Milestone Completion Protocol, Stopping Criteria).

Rules:

- A milestone releases when every one of its tickets is done, deferred, skipped or obsolete. Any other state
  (queued, a delivery stage, failed) blocks the release; the blocker says the state and any flag.
- A deferred ticket must be documented in docs/reports/deferred/deferred-errors.md (seed 001 Two-Phase
  Completion: deferred means triaged and written down). An undocumented deferral blocks the release.
- A milestone without tickets has nothing to release: that blocks too.

docs/reports/deferred/deferred-errors.md, as the execution loop writes it (services/completion.py), holds
one entry per give-up: a level-2 heading ``## <ticket id>: <title>`` followed by ``- **Field:** value``
lines (State, Category, Reason, Suggested approach, Run). The parser reads the ticket id of every such
heading (a ticket deferred in two runs has two entries; the last one's fields win) and ignores any other
heading, prose a person added, and anything inside fenced code blocks. It never fails: the file is prose.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from conveyor.domain.ids import is_ticket_id
from conveyor.domain.ticket import State, Ticket

DEFERRED_PATH = "docs/reports/deferred/deferred-errors.md"
RELEASABLE_STATES = frozenset({State.DONE, State.DEFERRED, State.SKIPPED, State.OBSOLETE})

_ENTRY_HEADING = re.compile(r"^##\s+(?P<id>\S+?)(?::\s*(?P<title>.*?))?\s*$")
_FIELD = re.compile(r"^\s*[-*]\s+\*\*(?P<name>[^*]+?):?\*\*:?\s*(?P<value>.*?)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class BlockerKind(StrEnum):
    UNFINISHED = "unfinished"  # not done, deferred, skipped or obsolete
    UNDOCUMENTED_DEFERRAL = "undocumented-deferral"  # deferred without an entry in deferred-errors.md
    NO_TICKETS = "no-tickets"  # nothing to release


@dataclass(frozen=True)
class Blocker:
    kind: BlockerKind
    ticket_id: str | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class DeferredEntry:
    """One entry of deferred-errors.md; ``fields`` by lower-case name ("reason", "category", ...)."""

    ticket_id: str
    title: str
    line: int  # 1-based line of the heading
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return self.fields.get("reason", "")


def parse_deferred_entries(text: str) -> list[DeferredEntry]:
    """Every ticket entry of a deferred-errors.md text, in file order (see the module docstring)."""
    entries: list[DeferredEntry] = []
    in_fence = False
    current: DeferredEntry | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if line.startswith("#"):
            current = None
            heading = _ENTRY_HEADING.match(line)
            if heading is not None and is_ticket_id(heading["id"]):
                current = DeferredEntry(heading["id"], heading["title"] or "", number)
                entries.append(current)
            continue
        found = _FIELD.match(line)
        if current is not None and found is not None:
            # An entry's own field lines come first; a person's later notes with the same name do not override.
            current.fields.setdefault(found["name"].strip().lower(), found["value"])
    return entries


def deferred_ticket_ids(text: str) -> frozenset[str]:
    """The ticket ids documented in a deferred-errors.md text."""
    return frozenset(entry.ticket_id for entry in parse_deferred_entries(text))


def deferral_reasons(text: str) -> dict[str, str]:
    """Ticket id → the reason of its last entry (empty when the entry gives none)."""
    return {entry.ticket_id: entry.reason for entry in parse_deferred_entries(text)}


def release_blockers(tickets: Iterable[Ticket], documented_deferrals: Collection[str]) -> list[Blocker]:
    """What stops the milestone's release, in ticket order; empty when the tickets allow it."""
    tickets = list(tickets)
    if not tickets:
        return [Blocker(BlockerKind.NO_TICKETS, None, "the milestone has no tickets: nothing to release")]
    blockers: list[Blocker] = []
    for ticket in tickets:
        if ticket.state not in RELEASABLE_STATES:
            flags = f", {', '.join(sorted(f.value for f in ticket.flags))}" if ticket.flags else ""
            blockers.append(
                Blocker(
                    BlockerKind.UNFINISHED,
                    ticket.id,
                    f"{ticket.id} ({ticket.title}) is {ticket.state.value}{flags}: a release needs every ticket "
                    "done, deferred, skipped or obsolete",
                )
            )
        elif ticket.state is State.DEFERRED and ticket.id not in documented_deferrals:
            blockers.append(
                Blocker(
                    BlockerKind.UNDOCUMENTED_DEFERRAL,
                    ticket.id,
                    f"{ticket.id} ({ticket.title}) is deferred but has no entry in {DEFERRED_PATH}: add a "
                    f"'## {ticket.id}: {ticket.title}' entry with the reason",
                )
            )
    return blockers
