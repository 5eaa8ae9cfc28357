"""The worktree ledger (ARCHITECTURE.md §4): which ticket worked where, in which runs, with which commits. Pure.

Nothing is lost: every ticket that ever had a worktree keeps an entry, with its branch, the worktree path
(relative to the repository, ``.conveyor/worktrees/<ticket-id>``), the runs that used it, every commit seen on its
branch (made by Conveyor's ``save`` or by whoever worked in the worktree, and the rescue commits of work found off
the branch) and whether the worktree is still there (``active``) or was removed (``removed``; the branch stays).
Commits are only ever added: after a rebase the rewritten commits join the list and the old ones stay in it.

The file (``.conveyor/ledger.json``) is written by ``conveyor.adapters.worktrees``; it carries ``schema_version``
and readers refuse a version they do not know. Timestamps carry a time zone; unknown fields are errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.domain.ids import is_run_id, parse_ticket_id

LEDGER_SCHEMA_VERSION: Final = 1
WORKTREES_DIR: Final = PurePosixPath(".conveyor/worktrees")
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")
_STRICT = ConfigDict(frozen=True, extra="forbid")


def default_branch(ticket_id: str) -> str:
    """The ticket's branch unless TASKS.md names another: ``conveyor/<ticket-id-lowercase>``."""
    parse_ticket_id(ticket_id)
    return f"conveyor/{ticket_id.lower()}"


def worktree_relpath(ticket_id: str) -> str:
    """Where the ticket's worktree lives, relative to the repository: ``.conveyor/worktrees/<ticket-id>``."""
    parse_ticket_id(ticket_id)  # upper-case letters, digits and dashes: one safe path component
    return str(WORKTREES_DIR / ticket_id)


def _sha(value: str) -> str:
    if not _SHA.match(value):
        raise ValueError(f"{value!r} is not a full commit sha")
    return value


class WorktreeState(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class CommitSource(StrEnum):
    SAVE = "save"  # Conveyor committed the worktree's uncommitted work (WorktreeManager.save, before removal...)
    BRANCH = "branch"  # found on the ticket branch: an agent's own commit, or one a rebase rewrote
    RESCUE = "rescue"  # uncommitted work found off the ticket branch, kept on a rescue branch


class Operation(StrEnum):
    ENSURE = "ensure"
    SAVE = "save"
    REMOVE = "remove"
    REBASE = "rebase"
    PRUNE = "prune"
    RECONCILE = "reconcile"


class LedgerCommit(BaseModel):
    model_config = _STRICT

    sha: str
    message: str
    at: AwareDatetime  # the committer date
    source: CommitSource
    branch: str  # where the commit was made: the ticket branch, or a rescue branch
    run_id: str | None = None  # the run that recorded it (the entry's latest run at that time)

    _valid_sha = field_validator("sha")(_sha)


class WorktreeEntry(BaseModel):
    """One ticket's worktree: state, branch, runs and commits."""

    model_config = _STRICT

    ticket_id: str
    branch: str
    worktree: str  # relative to the repository
    base: str  # the commit the branch started from, then the one it was last rebased onto
    state: WorktreeState = WorktreeState.ACTIVE
    run_ids: tuple[str, ...] = ()
    commits: tuple[LedgerCommit, ...] = ()
    created_at: AwareDatetime
    updated_at: AwareDatetime
    last_operation: Operation

    _valid_base = field_validator("base")(_sha)

    @field_validator("ticket_id")
    @classmethod
    def _valid_ticket(cls, value: str) -> str:
        parse_ticket_id(value)
        return value

    @field_validator("run_ids")
    @classmethod
    def _valid_runs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for run_id in value:
            if not is_run_id(run_id):
                raise ValueError(f"{run_id!r} is not a run id (RUN-YYYYMMDD-HHMM[-N])")
        if len(set(value)) != len(value):
            raise ValueError("run_ids lists the same run twice")
        return value

    @field_validator("commits")
    @classmethod
    def _unique_commits(cls, value: tuple[LedgerCommit, ...]) -> tuple[LedgerCommit, ...]:
        if len({c.sha for c in value}) != len(value):
            raise ValueError("commits lists the same sha twice")
        return value

    @property
    def active(self) -> bool:
        return self.state is WorktreeState.ACTIVE

    @property
    def run_id(self) -> str | None:
        """The latest run that used the worktree."""
        return self.run_ids[-1] if self.run_ids else None

    @property
    def shas(self) -> tuple[str, ...]:
        return tuple(c.sha for c in self.commits)

    @classmethod
    def new(
        cls, ticket_id: str, *, branch: str, base: str, run_id: str, at: datetime, operation: Operation
    ) -> WorktreeEntry:
        return cls(
            ticket_id=ticket_id,
            branch=branch,
            worktree=worktree_relpath(ticket_id),
            base=base,
            run_ids=(run_id,),
            created_at=at,
            updated_at=at,
            last_operation=operation,
        )

    def touched(
        self,
        operation: Operation,
        at: datetime,
        *,
        state: WorktreeState | None = None,
        run_id: str | None = None,
        base: str | None = None,
        branch: str | None = None,
    ) -> WorktreeEntry:
        """The entry after ``operation``: a new state, run, base or branch where given."""
        update: dict[str, object] = {"last_operation": operation, "updated_at": at}
        if state is not None:
            update["state"] = state
        if run_id is not None and run_id not in self.run_ids:
            update["run_ids"] = (*self.run_ids, run_id)
        if base is not None:
            update["base"] = base
        if branch is not None:
            update["branch"] = branch
        return self.model_validate({**self.model_dump(), **update})

    def with_commits(self, commits: Iterable[LedgerCommit]) -> WorktreeEntry:
        """The entry with the commits it did not list yet appended (in the given order)."""
        known = set(self.shas)
        added: list[LedgerCommit] = []
        for commit in commits:
            if commit.sha not in known:
                known.add(commit.sha)
                added.append(commit)
        return self.model_copy(update={"commits": (*self.commits, *added)}) if added else self


class Ledger(BaseModel):
    """Every ticket's entry, by ticket id."""

    model_config = _STRICT

    schema_version: Literal[1] = LEDGER_SCHEMA_VERSION
    tickets: dict[str, WorktreeEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys_match(self) -> Ledger:
        for key, entry in self.tickets.items():
            if key != entry.ticket_id:
                raise ValueError(f"ledger key {key!r} holds the entry of {entry.ticket_id!r}")
        return self

    def get(self, ticket_id: str) -> WorktreeEntry | None:
        return self.tickets.get(ticket_id)

    def put(self, entry: WorktreeEntry) -> Ledger:
        return self.model_copy(update={"tickets": {**self.tickets, entry.ticket_id: entry}})

    def entries(self, *, include_removed: bool = False) -> list[WorktreeEntry]:
        """The entries sorted by ticket id; only active ones unless ``include_removed``."""
        return [e for _, e in sorted(self.tickets.items()) if include_removed or e.active]
