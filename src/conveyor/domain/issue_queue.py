"""automations/issue_queue.md as data: the improvement loop's findings and its suppression list (issue 7 §1).

One entry per fingerprint. A finding is ``open`` until a loop files a ticket for it (``filed``), and ``fixed``
once a later scan no longer reports it. A person stops a finding from ever being filed again by setting its
status to ``wont-fix`` or moving it to the suppression list; a finding whose ticket was deferred, skipped or
failed goes to that list by itself, so a loop never files the same finding twice.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.scan import ScanFinding


class QueueStatus(StrEnum):
    OPEN = "open"  # found, no ticket yet (over the loop's caps, or no fixer in deterministic mode)
    FILED = "filed"  # a ticket carries it
    FIXED = "fixed"  # a later scan no longer reports it
    WONT_FIX = "wont-fix"  # a person's decision: moved to the suppression list on the next write


class QueueEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    finding: ScanFinding
    status: QueueStatus = QueueStatus.OPEN
    ticket: str | None = None
    first_loop: int = Field(ge=1)
    last_loop: int = Field(ge=1, description="the last loop whose scan reported it (or fixed it)")

    @property
    def fingerprint(self) -> str:
        return self.finding.fingerprint


class Suppression(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: str
    reason: str


class IssueQueue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    last_loop: int = Field(0, ge=0)
    entries: tuple[QueueEntry, ...] = ()
    suppressed: tuple[Suppression, ...] = ()

    def entry(self, fingerprint: str) -> QueueEntry | None:
        return next((e for e in self.entries if e.fingerprint == fingerprint), None)

    def is_suppressed(self, fingerprint: str) -> bool:
        return any(s.fingerprint == fingerprint for s in self.suppressed)

    def for_ticket(self, ticket_id: str) -> list[ScanFinding]:
        return [e.finding for e in self.entries if e.ticket == ticket_id]

    def filed_tickets(self) -> set[str]:
        return {e.ticket for e in self.entries if e.ticket}

    def counts(self) -> dict[QueueStatus, int]:
        out = dict.fromkeys(QueueStatus, 0)
        for entry in self.entries:
            out[entry.status] += 1
        return out
