"""The two run files of the target repository (ARCHITECTURE.md §2, §3): their models, pure.

- ``automations/run-state.json`` (:class:`RunState`): seed 000's ``{run_id, tickets: {ID: {status,
  artefacts: {branch, pr, logs}}}}`` with status ``pending|in_progress|qa|deploy|done|blocked`` plus ``failed``
  and ``deferred`` (§8), and per ticket the stage record (the exact :class:`State`), reward, blockers,
  escalations and surfaced lessons; at the top the repository, milestone, times, a budget snapshot and
  run-level blockers. The status is a lossy projection of the ticket state, computed elsewhere
  (``conveyor.domain.projections``); the stage record keeps what the projection loses.
- ``automations/run-queue.json`` (:class:`RunQueue`): the whole backlog as complete :class:`Ticket` models in
  backlog order, so nothing that TASKS.md cannot hold is lost.

Both carry ``schema_version``; readers refuse a version they do not know (see conveyor.adapters.state_files).
Timestamps must carry a time zone. Unknown fields are errors, never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)

from conveyor.domain.backlog import Backlog
from conveyor.domain.budget import BudgetPosition
from conveyor.domain.ids import is_run_id, parse_ticket_id
from conveyor.domain.projections import run_state_status
from conveyor.domain.ticket import Flag, State, Ticket

RUN_STATE_SCHEMA_VERSION: Final = 1
RUN_QUEUE_SCHEMA_VERSION: Final = 1

_STRICT = ConfigDict(frozen=True, extra="forbid")


def _version_required(schema: dict[str, Any]) -> None:
    """Files must say their version: the loaders refuse one without it, so the published schema says so."""
    schema["required"] = ["schema_version", *schema.get("required", [])]


_VERSIONED = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_version_required)


class RunStateStatus(StrEnum):
    """Seed 000's status vocabulary plus ``failed`` and ``deferred`` (ARCHITECTURE.md §8)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    QA = "qa"
    DEPLOY = "deploy"
    DONE = "done"
    BLOCKED = "blocked"
    FAILED = "failed"
    DEFERRED = "deferred"


class Artefacts(BaseModel):
    """Seed 000's artefact links; empty strings (the seed's own convention) until known."""

    model_config = _STRICT

    branch: str = ""
    pr: str = ""
    logs: tuple[str, ...] = ()


class Checkpoint(BaseModel):
    model_config = _STRICT

    name: str = Field(description="what was checkpointed, e.g. 'reviewed' or 'paused'")
    at: AwareDatetime


class StageRecord(BaseModel):
    """Where delivery of a ticket stands: what the run-state status cannot say (ARCHITECTURE.md §3)."""

    model_config = _STRICT

    stage: State = State.QUEUED
    flags: tuple[Flag, ...] = Field(default=(), description="blocked, escalated, awaiting-approval; sorted")
    attempt: int = Field(default=0, ge=0)
    iterations: int = Field(default=0, ge=0, description="review/QA round trips back to the implementer")
    base_commit: str | None = None
    branch_head: str | None = None
    last_checkpoint: Checkpoint | None = None

    @field_validator("flags")
    @classmethod
    def _sorted_unique(cls, value: tuple[Flag, ...]) -> tuple[Flag, ...]:
        return tuple(sorted(set(value)))

    @classmethod
    def of(
        cls,
        ticket: Ticket,
        *,
        base_commit: str | None = None,
        branch_head: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> StageRecord:
        return cls(
            stage=ticket.state,
            flags=tuple(ticket.flags),
            attempt=ticket.attempt,
            iterations=ticket.iterations,
            base_commit=base_commit,
            branch_head=branch_head,
            last_checkpoint=checkpoint,
        )


class Reward(BaseModel):
    model_config = _STRICT

    components: dict[str, float] = Field(default_factory=dict)
    total: float = 0.0

    @classmethod
    def of(cls, components: dict[str, float]) -> Reward:
        """Components and their (unweighted) sum."""
        return cls(components=dict(components), total=round(sum(components.values()), 6))


class Blocker(BaseModel):
    """Why work stopped; ``command`` is the exact failing command when there is one (seed 001 step 13)."""

    model_config = _STRICT

    at: AwareDatetime
    reason: str
    stage: State | None = None
    command: str | None = None
    ticket_id: str | None = Field(default=None, description="run-level blockers: the ticket concerned, if any")
    resolved_at: AwareDatetime | None = None


class Escalation(BaseModel):
    model_config = _STRICT

    at: AwareDatetime
    reason: str
    answered_at: AwareDatetime | None = None
    answer: str | None = None

    @property
    def open(self) -> bool:
        return self.answered_at is None


class Lesson(BaseModel):
    model_config = _STRICT

    text: str
    at: AwareDatetime


class TicketRunState(BaseModel):
    model_config = _STRICT

    status: RunStateStatus = RunStateStatus.PENDING
    artefacts: Artefacts = Field(default_factory=Artefacts)
    stage: StageRecord = Field(default_factory=StageRecord)
    reward: Reward = Field(default_factory=Reward)
    blockers: tuple[Blocker, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    lessons: tuple[Lesson, ...] = ()


def _ticket_id(value: str) -> str:
    parse_ticket_id(value)
    return value


TicketIdKey = Annotated[str, AfterValidator(_ticket_id)]


class RunState(BaseModel):
    """automations/run-state.json. Immutable; the ``with_*`` methods return an updated copy."""

    model_config = _VERSIONED

    schema_version: Literal[1] = RUN_STATE_SCHEMA_VERSION
    run_id: str
    repo: str = Field(description="the target repository (path or slug)")
    milestone: str | None = None
    started_at: AwareDatetime
    updated_at: AwareDatetime
    budget: BudgetPosition | None = None
    blockers: tuple[Blocker, ...] = ()
    tickets: dict[TicketIdKey, TicketRunState] = Field(default_factory=dict)

    @field_validator("run_id")
    @classmethod
    def _valid_run_id(cls, value: str) -> str:
        if not is_run_id(value):
            raise ValueError(f"run id {value!r} is not of the form RUN-YYYYMMDD-HHMM[-N]")
        return value

    @classmethod
    def start(
        cls, run_id: str, repo: str, at: datetime, *, milestone: str | None = None, ticket_ids: Iterable[str] = ()
    ) -> RunState:
        return cls(
            run_id=run_id,
            repo=repo,
            milestone=milestone,
            started_at=at,
            updated_at=at,
            tickets={tid: TicketRunState() for tid in ticket_ids},
        )

    def ticket(self, ticket_id: str) -> TicketRunState:
        """The ticket's record, or a fresh pending one when the run has not seen it yet."""
        return self.tickets.get(ticket_id) or TicketRunState()

    def with_ticket(self, ticket_id: str, record: TicketRunState, at: datetime) -> RunState:
        parse_ticket_id(ticket_id)
        return self.model_copy(update={"tickets": {**self.tickets, ticket_id: record}, "updated_at": at})

    def update_ticket(self, ticket_id: str, at: datetime, **changes: Any) -> RunState:
        """Replace fields of one ticket's record (validated), creating the record if needed."""
        current = self.ticket(ticket_id)
        record = TicketRunState.model_validate({**dict(current), **changes})
        return self.with_ticket(ticket_id, record, at)

    def with_status(self, ticket_id: str, status: RunStateStatus, stage: StageRecord, at: datetime) -> RunState:
        return self.update_ticket(ticket_id, at, status=status, stage=stage)

    def record(
        self,
        ticket: Ticket,
        at: datetime,
        *,
        base_commit: str | None = None,
        branch_head: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> RunState:
        """Record a ticket's state: the stage record, and the seed status projected from it (never set apart)."""
        stage = StageRecord.of(ticket, base_commit=base_commit, branch_head=branch_head, checkpoint=checkpoint)
        status = RunStateStatus(run_state_status(ticket.state, ticket.flags))
        return self.update_ticket(ticket.id, at, status=status, stage=stage)

    def add_ticket_blocker(self, ticket_id: str, blocker: Blocker) -> RunState:
        current = self.ticket(ticket_id)
        return self.update_ticket(ticket_id, blocker.at, blockers=(*current.blockers, blocker))

    def add_run_blocker(self, blocker: Blocker) -> RunState:
        return self.model_copy(update={"blockers": (*self.blockers, blocker), "updated_at": blocker.at})

    def add_escalation(self, ticket_id: str, escalation: Escalation) -> RunState:
        current = self.ticket(ticket_id)
        return self.update_ticket(ticket_id, escalation.at, escalations=(*current.escalations, escalation))

    def answer_escalation(self, ticket_id: str, answer: str, at: datetime) -> RunState:
        """Answer the ticket's oldest open escalation; ValueError when none is open."""
        current = self.ticket(ticket_id)
        escalations = list(current.escalations)
        index = next((i for i, e in enumerate(escalations) if e.open), None)
        if index is None:
            raise ValueError(f"{ticket_id} has no open escalation")
        escalations[index] = escalations[index].model_copy(update={"answered_at": at, "answer": answer})
        return self.update_ticket(ticket_id, at, escalations=tuple(escalations))

    def add_lesson(self, ticket_id: str, lesson: Lesson) -> RunState:
        current = self.ticket(ticket_id)
        return self.update_ticket(ticket_id, lesson.at, lessons=(*current.lessons, lesson))

    def with_budget(self, position: BudgetPosition, at: datetime) -> RunState:
        return self.model_copy(update={"budget": position, "updated_at": at})

    def open_blockers(self) -> list[tuple[str | None, Blocker]]:
        """Unresolved blockers, run-level ones (ticket None) first, then per ticket in ticket order."""
        out: list[tuple[str | None, Blocker]] = [(b.ticket_id, b) for b in self.blockers if b.resolved_at is None]
        for tid, record in self.tickets.items():
            out += [(tid, b) for b in record.blockers if b.resolved_at is None]
        return out


class RunQueue(BaseModel):
    """automations/run-queue.json: the machine-readable backlog, every Ticket field, in backlog order."""

    model_config = _VERSIONED

    schema_version: Literal[1] = RUN_QUEUE_SCHEMA_VERSION
    milestone: str | None = None
    task_prefix: str = Field(pattern=r"^[A-Z][A-Z0-9]*$")
    tickets: tuple[Ticket, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> RunQueue:
        counts = Counter(t.id for t in self.tickets)
        duplicates = sorted(tid for tid, n in counts.items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate ticket id(s): {', '.join(duplicates)}")
        return self

    @field_serializer("tickets", mode="wrap")
    def _stable_flags(self, tickets: tuple[Ticket, ...], handler: SerializerFunctionWrapHandler) -> Any:
        """Flags are a set: write them sorted, so the file does not change from one process to the next."""
        dumped = handler(tickets)
        for item in dumped:
            if isinstance(item, dict) and isinstance(item.get("flags"), list | set | frozenset):
                item["flags"] = sorted(item["flags"])
        return dumped

    @classmethod
    def of(cls, backlog: Backlog | Iterable[Ticket], task_prefix: str, milestone: str | None = None) -> RunQueue:
        return cls(task_prefix=task_prefix, milestone=milestone, tickets=tuple(backlog))

    def backlog(self) -> Backlog:
        return Backlog(self.tickets)
