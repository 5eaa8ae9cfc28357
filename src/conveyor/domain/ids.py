"""Ticket ids (``{PREFIX}-{CAT}-{NNN}`` with optional suffixes) and run ids (``RUN-YYYYMMDD-HHMM``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

# Seed 001's categories; any other upper-case word is a custom category.
KNOWN_CATEGORIES = ("SEC", "HIGH", "CQ", "TEST", "PERF", "DOC")

_TICKET_ID = re.compile(
    r"^(?P<prefix>[A-Z][A-Z0-9]*)-(?P<category>[A-Z][A-Z0-9]*)-(?P<number>\d{3,})(?P<suffixes>(?:-[A-Z0-9]+)*)$"
)
_RUN_ID = re.compile(r"^RUN-(?P<stamp>\d{8}-\d{4})(?:-(?P<n>\d+))?$")


@dataclass(frozen=True)
class TicketId:
    prefix: str
    category: str
    number: int
    suffixes: tuple[str, ...]

    @property
    def is_custom_category(self) -> bool:
        return self.category not in KNOWN_CATEGORIES


def parse_ticket_id(value: str) -> TicketId:
    """Parse ``MS-SEC-001``, ``MS-SEC-001-QA``, ``UC-CLEAN-003-V01``; raise ValueError otherwise."""
    match = _TICKET_ID.match(value)
    if match is None:
        raise ValueError(
            f"ticket id {value!r} is not of the form PREFIX-CAT-NNN[-SUFFIX] (for example MS-SEC-001 or MS-SEC-001-QA)"
        )
    suffixes = tuple(s for s in match["suffixes"].split("-") if s)
    return TicketId(match["prefix"], match["category"], int(match["number"]), suffixes)


def is_ticket_id(value: str) -> bool:
    return _TICKET_ID.match(value) is not None


def format_ticket_id(prefix: str, category: str, number: int, *suffixes: str) -> str:
    return "-".join([prefix, category, f"{number:03d}", *suffixes])


def next_run_id(now: datetime, existing: Iterable[str]) -> str:
    """The run id for ``now``: ``RUN-YYYYMMDD-HHMM``, then ``-2``, ``-3``... if that minute is taken."""
    base = f"RUN-{now:%Y%m%d-%H%M}"
    taken = set(existing)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def is_run_id(value: str) -> bool:
    return _RUN_ID.match(value) is not None
