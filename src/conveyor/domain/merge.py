"""What the merge queue asks a forge, and what it answers (ARCHITECTURE.md §4, issue 5 §3)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

TICKET_TRAILER = "Conveyor-Ticket"
REVERT_TRAILER = "Conveyor-Reverts"
RUN_TRAILER = "Conveyor-Run"


class MergeStatus(StrEnum):
    MERGED = "merged"
    ALREADY_MERGED = "already-merged"  # a killed run merged it before recording it: never merge twice
    NEEDS_REBASE = "needs-rebase"  # main moved in code since the branch's base: rebase and re-run QA first
    CONFLICT = "conflict"  # back to the implementer
    REFUSED = "refused"  # the invariant would break, or the ticket touched tracking files
    CHECKS_FAILED = "checks-failed"  # a forge's CI checks failed on the PR (github): back to the implementer


class MergeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str
    title: str
    branch: str
    qa_tree: str  # the tree that passed QA: the squash commit's code must be exactly this
    run_id: str


class MergeOutcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: MergeStatus
    commit: str | None = None
    conflicts: tuple[str, ...] = ()
    moved_paths: tuple[str, ...] = ()
    detail: str = ""
    pushed: bool = False


def squash_message(ticket_id: str, title: str, run_id: str) -> str:
    """``<ticket>: <title>`` with trailers naming the ticket and the run (how a resumed run finds the merge)."""
    return f"{ticket_id}: {title}\n\n{TICKET_TRAILER}: {ticket_id}\n{RUN_TRAILER}: {run_id}\n"


def trailer_pattern(ticket_id: str) -> str:
    """An extended regexp matching exactly the ticket's trailer line (not ``<id>-QA``'s)."""
    return f"^{TICKET_TRAILER}: {ticket_id}$"


def revert_pattern(ticket_id: str) -> str:
    return f"^{REVERT_TRAILER}: {ticket_id}$"


def ticket_of(message: str) -> str | None:
    """The ticket a squash commit's message names in its trailer."""
    for line in message.splitlines():
        if line.startswith(f"{TICKET_TRAILER}: "):
            return line.split(": ", 1)[1].strip()
    return None
