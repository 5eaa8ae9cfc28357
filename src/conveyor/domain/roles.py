"""Typed outputs of the judgment roles (ARCHITECTURE.md §5): planner, reviewer, QA triage, release notes,
knowledge steward and research.

Each role is a DSPy program (conveyor.adapters.agents.roles) whose answer is validated into one of these
models; a validation error is carried back to the model once (the repair round), then the call fails with
:class:`RoleOutputError` (error kind ``malformed_output``). The models are lenient about extra keys a model
adds (they are ignored) and strict about everything the loop acts on: enums, ranges, required fields.

Also here, because they are pure: the review decision rules of ARCHITECTURE.md §8
(:attr:`ReviewVerdict.sends_back`, :attr:`ReviewVerdict.can_merge`) and seed 001's review timing table
(:func:`review_scope`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field, field_validator, model_validator

from conveyor.domain.agent import AgentResult, AgentRole, ErrorKind, WorkerStatus
from conveyor.domain.errors import ConveyorError
from conveyor.domain.ticket import ModelTier, Severity, TaskType

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Output(BaseModel):
    """Base of every role output: immutable, extra keys from the model ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# ── planner ──────────────────────────────────────────────────────────────────────────────────────────────


class PlannedTicket(_Output):
    """One ticket of a plan. ``depends_on`` names other tickets of the same plan by id hint or title."""

    id_hint: str | None = Field(
        None, description="Short stable handle for the ticket (e.g. 'AUTH-001'); other tickets may depend on it."
    )
    title: NonEmpty = Field(description="Imperative one-line title.")
    description: NonEmpty = Field(description="What to change and why, enough for an engineer to start.")
    acceptance_criteria: list[NonEmpty] = Field(min_length=1, description="Checkable statements; at least one.")
    depends_on: list[str] = Field(
        default_factory=list, description="id_hint or title of tickets in this plan that must be done first."
    )
    complexity: int = Field(ge=1, le=10, description="1-3 easy, 4-7 normal, 8-10 complex.")
    touch_set: list[str] = Field(default_factory=list, description="Files or globs the ticket is expected to change.")
    task_type: TaskType = Field(description="Seed 001 task type classification.")
    estimate_tokens: int = Field(ge=0, description="Estimated agent tokens (seed 001 estimate table), e.g. 8000.")

    @property
    def tier(self) -> ModelTier:
        return ModelTier.for_complexity(self.complexity)

    @property
    def handles(self) -> tuple[str, ...]:
        """The names other tickets may use for this one."""
        return (self.title,) if self.id_hint is None else (self.id_hint, self.title)


class Plan(_Output):
    """The planner's answer: tickets whose dependencies refer to each other and form no cycle."""

    tickets: list[PlannedTicket] = Field(min_length=1)

    @model_validator(mode="after")
    def _dependencies_resolve(self) -> Self:
        index: dict[str, int] = {}
        for position, ticket in enumerate(self.tickets):
            for handle in ticket.handles:
                key = handle.strip().casefold()
                if key in index and index[key] != position:
                    raise ValueError(f"two tickets share the id hint or title {handle!r}")
                index[key] = position
        edges: dict[int, list[int]] = {}
        for position, ticket in enumerate(self.tickets):
            targets: list[int] = []
            for dep in ticket.depends_on:
                target = index.get(dep.strip().casefold())
                if target is None:
                    raise ValueError(f"ticket {ticket.title!r} depends on {dep!r}, which is not a ticket of this plan")
                if target == position:
                    raise ValueError(f"ticket {ticket.title!r} depends on itself")
                targets.append(target)
            edges[position] = targets
        cycle = _find_cycle(edges)
        if cycle:
            names = " -> ".join(self.tickets[i].id_hint or self.tickets[i].title for i in cycle)
            raise ValueError(f"dependency cycle: {names}")
        return self

    def resolve(self, ticket: PlannedTicket) -> list[PlannedTicket]:
        """The tickets ``ticket`` depends on (the validator guarantees every reference resolves)."""
        by_handle = {h.strip().casefold(): t for t in self.tickets for h in t.handles}
        return [by_handle[dep.strip().casefold()] for dep in ticket.depends_on]


def _find_cycle(edges: dict[int, list[int]]) -> list[int]:
    """A cycle of ``edges`` with its first node repeated at the end, or [] when there is none."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    stack: list[int] = []

    def visit(node: int) -> list[int]:
        colour[node] = grey
        stack.append(node)
        for nxt in edges.get(node, []):
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = black
        return []

    for start in edges:
        if colour[start] == white and (found := visit(start)):
            return found
    return []


# ── reviewer ─────────────────────────────────────────────────────────────────────────────────────────────


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    APPROVE_WITH_SUGGESTIONS = "approve-with-suggestions"
    REQUEST_CHANGES = "request-changes"


class FindingSeverity(StrEnum):
    BLOCKER = "blocker"
    SHOULD_FIX = "should-fix"
    SUGGESTION = "suggestion"


class SecuritySeverity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ReviewScope(StrEnum):
    CODE = "code"
    SECURITY = "security"


class ReviewFinding(_Output):
    severity: FindingSeverity
    title: NonEmpty
    file: str | None = Field(None, description="Path of the file the finding is about, if any.")
    line: int | None = Field(None, ge=1, description="1-based line in the new version of the file, if known.")
    description: str = ""


class SecurityFinding(_Output):
    severity: SecuritySeverity
    title: NonEmpty
    file: str | None = None
    description: str = ""


class ReviewVerdict(_Output):
    """The reviewer's answer. What the loop does with it follows ARCHITECTURE.md §8."""

    decision: ReviewDecision
    findings: list[ReviewFinding] = Field(default_factory=list, description="Code review findings.")
    security_findings: list[SecurityFinding] = Field(default_factory=list)
    comments: str = Field("", description="Overall remarks for the implementer.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blockers(self) -> int:
        return sum(1 for f in self.findings if f.severity is FindingSeverity.BLOCKER)

    @property
    def open_critical_or_high(self) -> int:
        """Security findings that forbid a merge."""
        serious = {SecuritySeverity.CRITICAL, SecuritySeverity.HIGH}
        return sum(1 for f in self.security_findings if f.severity in serious)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sends_back(self) -> bool:
        """Request-changes, any blocker, or any critical/high security finding sends the ticket back (§8)."""
        return self.decision is ReviewDecision.REQUEST_CHANGES or self.blockers > 0 or self.open_critical_or_high > 0

    @property
    def can_merge(self) -> bool:
        """Nothing merges with an open critical or high security finding (nor with anything that sends back)."""
        return not self.sends_back

    @property
    def suggestions(self) -> list[ReviewFinding]:
        """Non-blocking findings: the material of a follow-up ``{id}-QA`` ticket when the verdict merges."""
        return [f for f in self.findings if f.severity is not FindingSeverity.BLOCKER]

    def in_scope(self, scope: frozenset[ReviewScope]) -> ReviewVerdict:
        """This verdict with the findings of a review kind outside ``scope`` removed (seed 001 timing table)."""
        update: dict[str, object] = {}
        if ReviewScope.CODE not in scope and self.findings:
            update["findings"] = []
        if ReviewScope.SECURITY not in scope and self.security_findings:
            update["security_findings"] = []
        return self.model_copy(update=update) if update else self

    def summary(self) -> str:
        """Seed 001's notes line, e.g. ``Review: approve (0 blockers, 0 critical)``."""
        critical = sum(1 for f in self.security_findings if f.severity is SecuritySeverity.CRITICAL)
        high = sum(1 for f in self.security_findings if f.severity is SecuritySeverity.HIGH)
        return f"Review: {self.decision.value} ({self.blockers} blockers, {critical} critical, {high} high)"


_DOC_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".adoc"})
_CONFIG_SUFFIXES = frozenset({".yml", ".yaml", ".toml", ".ini", ".cfg", ".conf", ".json", ".env", ".properties"})
_CONFIG_NAMES = frozenset({"dockerfile", "makefile", ".gitignore", ".gitattributes", ".editorconfig", ".npmrc"})
_TRACKING = frozenset({"docs/tasks.md", "automations/run-state.json", "automations/run-queue.json"})


def _is_test_path(path: PurePosixPath) -> bool:
    parts = {p.lower() for p in path.parts[:-1]}
    name = path.name.lower()
    return (
        bool(parts & {"tests", "test", "__tests__", "spec", "specs"})
        or name.startswith("test_")
        or path.stem.lower().endswith(("_test", ".test", ".spec", "_spec"))
    )


def review_scope(changed_paths: Iterable[str]) -> frozenset[ReviewScope]:
    """Which reviews a change needs, by seed 001's review timing table.

    Source code → code and security review; configuration → security review only; test-only → code review
    only; documentation and task-tracking files → no review. A change mixing kinds gets the union.
    """
    scope: set[ReviewScope] = set()
    for raw in changed_paths:
        path = PurePosixPath(raw.replace("\\", "/"))
        name = path.name.lower()
        if str(path).lower() in _TRACKING or name == "tasks.md":
            continue
        if path.suffix.lower() in _DOC_SUFFIXES:
            continue
        if _is_test_path(path):
            scope.add(ReviewScope.CODE)
        elif path.suffix.lower() in _CONFIG_SUFFIXES or name in _CONFIG_NAMES or name.startswith(".env"):
            scope.add(ReviewScope.SECURITY)
        else:
            scope.update((ReviewScope.CODE, ReviewScope.SECURITY))
    return frozenset(scope)


# ── QA triage ────────────────────────────────────────────────────────────────────────────────────────────


class QANextAction(StrEnum):
    RETRY = "retry"  # flaky or environmental: run the gates again unchanged
    FIX = "fix"  # the change is wrong: back to the implementer with the summary
    ESCALATE = "escalate"  # needs a person (broken environment, contradictory requirements)


class QATriage(_Output):
    failure_summary: NonEmpty = Field(description="What failed, in two or three sentences, for the implementer.")
    failing_gates: list[str] = Field(default_factory=list, description="Names of the gates that failed.")
    likely_cause: str = Field("", description="The most probable cause, naming files and lines when the logs do.")
    next_action: QANextAction


# ── release notes ────────────────────────────────────────────────────────────────────────────────────────


class ReleaseNotes(_Output):
    title: NonEmpty
    summary: NonEmpty
    highlights: list[str] = Field(default_factory=list)
    changes: list[str] = Field(default_factory=list, description="One line per delivered ticket or change.")
    breaking_changes: list[str] = Field(default_factory=list)

    def markdown(self) -> str:
        """docs/releases/v<version>.md body."""
        parts = [f"# {self.title}", "", self.summary.strip(), ""]
        for heading, items in (
            ("Highlights", self.highlights),
            ("Changes", self.changes),
            ("Breaking changes", self.breaking_changes),
        ):
            if items:
                parts += [f"## {heading}", "", *(f"- {item}" for item in items), ""]
        return "\n".join(parts).rstrip() + "\n"


# ── knowledge steward ────────────────────────────────────────────────────────────────────────────────────


class DocUpdate(_Output):
    path: NonEmpty = Field(description="Repository-relative path of the documentation file to create or change.")
    reason: NonEmpty
    content: str | None = Field(None, description="The complete new content of the file, when it is rewritten.")
    patch_summary: str | None = Field(None, description="What to change in the file, when it is not rewritten.")

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        path = PurePosixPath(value.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or value.startswith("~"):
            raise ValueError(f"path must be relative to the repository and stay inside it, got {value!r}")
        return str(path)

    @model_validator(mode="after")
    def _has_change(self) -> Self:
        if not (self.content and self.content.strip()) and not (self.patch_summary and self.patch_summary.strip()):
            raise ValueError(f"update of {self.path} needs content or a patch_summary")
        return self


class DocUpdates(_Output):
    updates: list[DocUpdate] = Field(default_factory=list)
    checklist_complete: bool = Field(description="True when the documentation checklist is satisfied after updates.")
    waiver: str | None = Field(None, description="Why no documentation change is needed, when updates is empty.")

    @model_validator(mode="after")
    def _waiver_when_empty(self) -> Self:
        if not self.updates and not (self.waiver and self.waiver.strip()):
            raise ValueError("no updates given: state the waiver (why no documentation change is needed)")
        return self


# ── research ─────────────────────────────────────────────────────────────────────────────────────────────


class ResearchIssue(_Output):
    rule: str = Field("", description="Scanner rule id or short category (e.g. 'B608', 'complexity').")
    title: NonEmpty
    file: str | None = None
    symbol: str | None = Field(None, description="Function, class or other symbol concerned.")
    severity: Severity
    description: str = ""
    suggested_fix: str = ""


class ResearchReport(_Output):
    issues: list[ResearchIssue] = Field(default_factory=list)


# ── errors ───────────────────────────────────────────────────────────────────────────────────────────────


class AgentCallError(ConveyorError):
    """An agent call ended with an error (``result.error_kind``); the result says what ran and what it cost."""

    def __init__(self, result: AgentResult, message: str | None = None) -> None:
        self.result = result
        kind = result.error_kind.value if result.error_kind else result.status.value
        detail = f": {result.error_detail}" if result.error_detail else ""
        super().__init__(
            message or f"agent call for {result.task_id} failed ({kind}, backend {result.backend}){detail}"
        )

    @property
    def error_kind(self) -> ErrorKind | None:
        return self.result.error_kind


class RoleOutputError(AgentCallError):
    """A role's answer failed validation twice (the answer, then the repair round): error kind malformed_output."""

    def __init__(self, role: AgentRole, problem: str, *, last: AgentResult | None, task_id: str, calls: int) -> None:
        self.role, self.problem, self.calls = role, problem, calls
        base = last or AgentResult(task_id=task_id, status=WorkerStatus.FAILED, backend="dspy")
        result = base.model_copy(
            update={
                "status": WorkerStatus.FAILED,
                "error_kind": ErrorKind.MALFORMED_OUTPUT,
                "error_detail": problem,
            }
        )
        super().__init__(
            result,
            f"{role.value}: the answer failed validation after the repair round ({calls} calls): {problem}",
        )
