"""The ticket: every field the seeds use, and its state machine (ARCHITECTURE.md §3).

A ticket is an immutable value. State changes go through :func:`transition` and friends, which return a
new ticket or raise :class:`IllegalTransitionError` naming both states.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.domain.errors import IllegalTransitionError
from conveyor.domain.ids import parse_ticket_id

MAX_ITERATIONS_DEFAULT = 3  # seed 000: more than 3 review/QA round trips blocks and escalates


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 is the most severe; used to order the ready set."""
        return list(Severity).index(self)


class TaskType(StrEnum):
    """Seed 001's classification by description keywords (Learning & Retrospective)."""

    STYLE_FIX = "STYLE_FIX"
    BULK_CLEANUP = "BULK_CLEANUP"
    GUARD_ADD = "GUARD_ADD"
    ERROR_HANDLING = "ERROR_HANDLING"
    SECURITY_FIX = "SECURITY_FIX"
    AUTH_ADD = "AUTH_ADD"
    REFACTOR = "REFACTOR"
    COMPLEX_REFACTOR = "COMPLEX_REFACTOR"
    FEATURE_ADD = "FEATURE_ADD"
    TEST_ADD = "TEST_ADD"
    SINGLE_LINE_FIX = "SINGLE_LINE_FIX"
    DOCS = "DOCS"
    VERIFICATION = "VERIFICATION"


class ModelTier(StrEnum):
    """Seed 002: easy → Haiku, normal → Sonnet, complex → Opus (names and prices live in the agent layer)."""

    EASY = "easy"
    NORMAL = "normal"
    COMPLEX = "complex"

    @classmethod
    def for_complexity(cls, complexity: int) -> ModelTier:
        if not 1 <= complexity <= 10:
            raise ValueError(f"complexity must be 1-10, got {complexity}")
        if complexity <= 3:
            return cls.EASY
        if complexity <= 7:
            return cls.NORMAL
        return cls.COMPLEX


class TicketKind(StrEnum):
    CHANGE = "change"  # code change: the full delivery pipeline
    VERIFICATION = "verification"  # a phase's verification ticket: QA gates on main, no code of its own
    DOCS = "docs"  # documentation-only: no code review (seed 001 review timing table)


class State(StrEnum):
    """Stages of delivery, then terminal states."""

    QUEUED = "queued"
    IMPLEMENTING = "implementing"
    REVIEWING = "reviewing"
    QA = "qa"
    DOCUMENTING = "documenting"
    INTEGRATING = "integrating"
    OPS = "ops"
    DONE = "done"
    FAILED = "failed"
    DEFERRED = "deferred"
    SKIPPED = "skipped"
    OBSOLETE = "obsolete"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        """Work is under way: a stage after queued and before a terminal state."""
        return not self.is_terminal and self is not State.QUEUED

    @property
    def satisfies_dependents(self) -> bool:
        """A dependency in this state no longer holds its dependents back."""
        return self in {State.DONE, State.SKIPPED, State.OBSOLETE}


TERMINAL_STATES = frozenset({State.DONE, State.FAILED, State.DEFERRED, State.SKIPPED, State.OBSOLETE})
GIVE_UP_STATES = frozenset({State.FAILED, State.DEFERRED, State.SKIPPED, State.OBSOLETE})


class Flag(StrEnum):
    BLOCKED = "blocked"
    ESCALATED = "escalated"
    AWAITING_APPROVAL = "awaiting-approval"


# Forward moves of the delivery pipeline. Give-up states are reachable from every non-terminal state.
_FORWARD: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.IMPLEMENTING, State.QA}),  # QA first: verification tickets
    State.IMPLEMENTING: frozenset({State.REVIEWING, State.QA, State.DOCUMENTING}),
    State.REVIEWING: frozenset({State.QA, State.DOCUMENTING}),
    State.QA: frozenset({State.DOCUMENTING, State.DONE}),  # QA → done: verification tickets only
    State.DOCUMENTING: frozenset({State.INTEGRATING}),
    State.INTEGRATING: frozenset({State.OPS, State.DONE, State.QA}),  # → QA: main moved, re-verify
    State.OPS: frozenset({State.DONE}),
}
# Round trips back to the implementer: each one counts an iteration (ARCHITECTURE.md §8).
_ROUND_TRIP_SOURCES = frozenset({State.REVIEWING, State.QA, State.DOCUMENTING, State.INTEGRATING, State.OPS})
# A person may put a given-up ticket back in the queue; done and obsolete stay final.
_REOPENABLE = frozenset({State.FAILED, State.DEFERRED, State.SKIPPED})


class SourceRef(BaseModel):
    """Where a finding points: a file and optional line range such as ``45-67``."""

    model_config = ConfigDict(frozen=True)
    file: str
    lines: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.lines}" if self.lines else self.file


class Ticket(BaseModel):
    """One unit of work. ``blocks`` is derived from the backlog, never stored here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    description: str = ""
    acceptance_criteria: tuple[str, ...] = ()
    kind: TicketKind = TicketKind.CHANGE
    phase: int | None = Field(default=None, ge=0)
    severity: Severity | None = None
    finding_id: str | None = None
    source: SourceRef | None = None
    depends_on: tuple[str, ...] = ()
    issue: str | None = None
    repo: str | None = None
    branch: str | None = None
    touch_set: tuple[str, ...] = ()
    complexity: int | None = Field(default=None, ge=1, le=10)
    tier_override: ModelTier | None = None
    task_type: TaskType | None = None
    estimate_tokens: int | None = Field(default=None, ge=0)
    used_tokens: int | None = Field(default=None, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    agent: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    notes: str = ""
    approval_required: bool = False
    reward: dict[str, float] = Field(default_factory=dict)
    state: State = State.QUEUED
    flags: frozenset[Flag] = frozenset()
    iterations: int = Field(default=0, ge=0)
    attempt: int = Field(default=0, ge=0)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        parse_ticket_id(value)
        return value

    @field_validator("depends_on")
    @classmethod
    def _valid_dependencies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for dep in value:
            parse_ticket_id(dep)
        if len(set(value)) != len(value):
            raise ValueError("depends_on lists the same ticket twice")
        return value

    @property
    def model_tier(self) -> ModelTier:
        if self.tier_override is not None:
            return self.tier_override
        return ModelTier.for_complexity(self.complexity) if self.complexity is not None else ModelTier.NORMAL

    @property
    def category(self) -> str:
        return parse_ticket_id(self.id).category

    @property
    def is_blocked(self) -> bool:
        return Flag.BLOCKED in self.flags

    @property
    def is_held(self) -> bool:
        """Flagged so that the scheduler must not start or continue it without a person."""
        return bool(self.flags & {Flag.BLOCKED, Flag.AWAITING_APPROVAL})


def can_transition(ticket: Ticket, target: State) -> bool:
    source = ticket.state
    if source.is_terminal:
        return source in _REOPENABLE and target is State.QUEUED
    if target in GIVE_UP_STATES:
        return True
    if target is State.IMPLEMENTING and source in _ROUND_TRIP_SOURCES:
        return True
    if source is State.QA and target is State.DONE:
        return ticket.kind is TicketKind.VERIFICATION
    if source is State.QUEUED and target is State.QA:
        return ticket.kind is TicketKind.VERIFICATION
    return target in _FORWARD.get(source, frozenset())


def transition(ticket: Ticket, target: State, *, at: datetime | None = None) -> Ticket:
    """Move ``ticket`` to ``target``; a round trip back to implementing counts an iteration.

    Raises IllegalTransitionError naming both states when the machine does not allow the move, and when
    a flagged (blocked / awaiting-approval) ticket is asked to move forward.
    """
    if not can_transition(ticket, target):
        raise IllegalTransitionError(ticket.id, ticket.state.value, target.value)
    if ticket.is_held and not target.is_terminal and target is not State.QUEUED:
        held = ", ".join(sorted(f.value for f in ticket.flags))
        raise IllegalTransitionError(ticket.id, ticket.state.value, target.value, f"ticket is {held}")
    update: dict[str, object] = {"state": target}
    if ticket.state is State.QUEUED and target is not State.QUEUED and not target.is_terminal:
        update["attempt"] = ticket.attempt + 1
        update["started_at"] = ticket.started_at or at
    if target is State.IMPLEMENTING and ticket.state in _ROUND_TRIP_SOURCES:
        update["iterations"] = ticket.iterations + 1
    if target.is_terminal:
        update["completed_at"] = at
        update["flags"] = ticket.flags - {Flag.AWAITING_APPROVAL}
    if ticket.state.is_terminal:  # reopened by a person
        update["completed_at"] = None
        update["flags"] = frozenset()
    return ticket.model_copy(update=update)


def send_back(ticket: Ticket, *, max_iterations: int = MAX_ITERATIONS_DEFAULT, at: datetime | None = None) -> Ticket:
    """A review or QA round trip back to the implementer.

    After ``max_iterations`` round trips the ticket does not go back: it stays where it is, blocked and
    escalated (seed 000). What happens then is the escalation policy's decision.
    """
    if ticket.iterations >= max_iterations:
        if not can_transition(ticket, State.IMPLEMENTING):
            raise IllegalTransitionError(ticket.id, ticket.state.value, State.IMPLEMENTING.value)
        return ticket.model_copy(update={"flags": ticket.flags | {Flag.BLOCKED, Flag.ESCALATED}})
    return transition(ticket, State.IMPLEMENTING, at=at)


def set_flag(ticket: Ticket, flag: Flag) -> Ticket:
    if ticket.state.is_terminal:
        raise IllegalTransitionError(ticket.id, ticket.state.value, flag.value, "terminal tickets take no flags")
    return ticket.model_copy(update={"flags": ticket.flags | {flag}})


def clear_flag(ticket: Ticket, flag: Flag) -> Ticket:
    return ticket.model_copy(update={"flags": ticket.flags - {flag}})
