"""The columns of docs/TASKS.md (seed 001 Step 6): how each cell reads into a ticket and how a ticket writes it.

Each known column has a reader (cell text → typed value, ValueError when malformed) and a writer (ticket →
cell text). Sync compares typed values, never text: a cell is rewritten only when what it says differs from
what the ticket says once both are read the same way, so ``8k`` written by hand stays ``8k`` while the
ticket still says 8,000 tokens, and ``2024-05-01`` stays while the ticket says midnight of that day.

- ``id``: a ticket id (``PREFIX-CAT-NNN[-SUFFIX]``).
- ``status``: the TASKS.md vocabulary of :mod:`conveyor.domain.projections`; a value outside it is kept and
  reported, and reads as ``queued`` for scheduling.
- ``description``: ``{FindingID}: summary``. A leading finding id (upper-case words joined by hyphens, with a
  digit, followed by a colon: ``SEC-API-1:``) goes to ``finding_id`` and the rest to ``title``; without one
  the whole text is the title. Writing puts ``{finding_id}: `` back in front of the title.
- ``depends_on`` and ``blocks``: ticket ids separated by commas and/or spaces; written as ``A, B``.
  ``blocks`` is derived from the backlog's dependents and is never read into a ticket.
- ``started_at``, ``completed_at``: ISO 8601 (``datetime.fromisoformat``: a date alone is midnight; ``Z`` is
  UTC and is written back as ``Z``).
- ``estimate``, ``used``: token counts (``8K``, ``4.2K``, ``800``).
- ``issue``, ``repo``, ``branch``, ``agent``: text; an empty cell is None. ``notes``: text, empty is "".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from conveyor.domain.ids import is_ticket_id
from conveyor.domain.projections import format_tokens, from_tasks_status, parse_tokens, tasks_status
from conveyor.domain.ticket import Flag, State, Ticket

SEED_COLUMNS: tuple[str, ...] = (
    "id",
    "status",
    "description",
    "issue",
    "repo",
    "branch",
    "depends_on",
    "blocks",
    "agent",
    "started_at",
    "completed_at",
    "estimate",
    "used",
    "notes",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "status", "description")

_FINDING = re.compile(r"^(?P<finding>[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+):(?:[ \t]+(?P<rest>.*))?$", re.DOTALL)
_ID_SEPARATORS = re.compile(r"[,\s]+")


def normalise_column(name: str) -> str:
    """Header names match case-insensitively, trimmed; ``Depends On`` and ``depends-on`` mean ``depends_on``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


# -- readers and writers -----------------------------------------------------------------------------------


def split_ids(text: str) -> tuple[str, ...]:
    """The parts of a list of ids separated by commas and/or whitespace, unchecked."""
    return tuple(part for part in _ID_SEPARATORS.split(text.strip()) if part)


def read_ids(text: str) -> tuple[str, ...]:
    """Ticket ids separated by commas or whitespace; ValueError naming the first malformed one."""
    ids = split_ids(text)
    for part in ids:
        if not is_ticket_id(part):
            raise ValueError(f"{part!r} is not a ticket id of the form PREFIX-CAT-NNN[-SUFFIX]")
    return ids


def write_ids(ids: Sequence[str]) -> str:
    return ", ".join(ids)


def read_description(text: str) -> tuple[str | None, str]:
    """``SEC-API-1: summary`` → (``SEC-API-1``, ``summary``); text without a finding id → (None, text)."""
    match = _FINDING.match(text)
    if match is None or not any(ch.isdigit() for ch in match["finding"]):
        return None, text
    return match["finding"], (match["rest"] or "").strip()


def write_description(finding_id: str | None, title: str) -> str:
    if finding_id is None:
        return title
    return f"{finding_id}: {title}" if title else f"{finding_id}:"


def read_datetime(text: str) -> datetime | None:
    value = text.strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time (for example 2024-05-01T14:30:00Z)") from None


def write_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def read_tokens(text: str) -> int | None:
    return parse_tokens(text) if text.strip() else None


def write_tokens(value: int | None) -> str:
    return "" if value is None else format_tokens(value)


def read_optional(text: str) -> str | None:
    return text or None


StatusValue = tuple[State, frozenset[Flag]] | None


def read_status(text: str) -> StatusValue:
    return from_tasks_status(text)


def status_of(ticket: Ticket) -> tuple[State, frozenset[Flag]]:
    """The part of a ticket's state that TASKS.md can show: its state and whether it is blocked."""
    return ticket.state, ticket.flags & {Flag.BLOCKED}


def status_cell_is_current(cell: str, ticket: Ticket) -> bool:
    """Whether the status cell may stay as it is for ``ticket``.

    A known status stays when it is what Conveyor would write, or when it reads as exactly the ticket's
    state (``needs-qa`` for a ticket in QA). A value outside the vocabulary stays as long as the ticket is
    still where that value put it: queued and not blocked.
    """
    typed = read_status(cell)
    if typed is None:
        return status_of(ticket) == (State.QUEUED, frozenset())
    if cell.strip().lower() == tasks_status(ticket.state, ticket.flags):
        return True
    return typed == status_of(ticket)


# -- the column table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A known column: how its cell reads, and how a ticket (with its derived ``blocks``) writes it.

    ``field`` is the Ticket field a plain column reads into; None for ``id``, ``status``, ``description`` and
    ``blocks``, which the parser handles itself.
    """

    name: str
    read: Callable[[str], object]
    write: Callable[[Ticket, Sequence[str]], str]
    field: str | None = None
    compare_as_set: bool = False

    def differs(self, cell: str, ticket: Ticket, blocks: Sequence[str]) -> bool:
        """Whether the cell's typed value differs from the ticket's (read through the same reader)."""
        wanted = self.read(self.write(ticket, blocks))
        try:
            current = self.read(cell)
        except ValueError:
            return True
        if self.compare_as_set and isinstance(current, tuple) and isinstance(wanted, tuple):
            return set(current) != set(wanted)
        return current != wanted


COLUMNS: dict[str, Column] = {
    c.name: c
    for c in (
        Column("id", str, lambda t, _: t.id),
        Column("status", read_status, lambda t, _: tasks_status(t.state, t.flags)),
        Column("description", read_description, lambda t, _: write_description(t.finding_id, t.title)),
        Column("issue", read_optional, lambda t, _: t.issue or "", "issue"),
        Column("repo", read_optional, lambda t, _: t.repo or "", "repo"),
        Column("branch", read_optional, lambda t, _: t.branch or "", "branch"),
        Column("depends_on", read_ids, lambda t, _: write_ids(t.depends_on), "depends_on", compare_as_set=True),
        Column("blocks", split_ids, lambda _, blocks: write_ids(blocks), compare_as_set=True),
        Column("agent", read_optional, lambda t, _: t.agent or "", "agent"),
        Column("started_at", read_datetime, lambda t, _: write_datetime(t.started_at), "started_at"),
        Column("completed_at", read_datetime, lambda t, _: write_datetime(t.completed_at), "completed_at"),
        Column("estimate", read_tokens, lambda t, _: write_tokens(t.estimate_tokens), "estimate_tokens"),
        Column("used", read_tokens, lambda t, _: write_tokens(t.used_tokens), "used_tokens"),
        Column("notes", str, lambda t, _: t.notes, "notes"),
    )
}
