"""The review decision table (ARCHITECTURE.md §8, seed 001 "Phase 2b: Post-Coding Review").

The execution loop calls :func:`decide_review` after the reviewer returns. It answers what happens to the
ticket, and everything the loop needs to act on that answer: the feedback for the implementer's next round,
the follow-up ticket to file, and the notes line for TASKS.md.

The table, in the order the rules apply:

1. **Scope** comes from the changed paths, by seed 001's review timing table (:func:`review_scope`): source →
   code and security review; configuration → security review only; test-only → code review only;
   documentation and task tracking → no review. Findings of a review kind outside the scope are dropped
   (:meth:`ReviewVerdict.in_scope`); so is the decision word when code review is out of scope, because the
   word is the code review's verdict (seed 001 Step 2 reads ``verdict`` from the code review and only the
   critical/high counts from the security review). With no review in scope the change goes on unreviewed:
   MERGE, no verdict needed.
2. **Must fix** (sends the ticket back): every critical or high security finding, every blocker, and — when the
   decision word is request-changes — every should-fix finding (they are what the reviewer wants changed).
   Request-changes sends back even without itemised findings.
3. **Nothing merges with an open critical or high security finding**, whatever the decision word says: such a
   finding is always must-fix, and :class:`ReviewDecisionOutcome` refuses to be built as MERGE with one.
4. **Iteration limit:** a send-back of a ticket that already made ``max_iterations`` round trips is BLOCKED
   instead (blocked and escalated, as :func:`conveyor.domain.ticket.send_back` does); what then happens is the
   escalation policy's decision (ARCHITECTURE.md §8 "Iterations").
5. **Otherwise MERGE.** The non-blocking findings left over (should-fix and suggestion findings, medium and low
   security findings) become a follow-up ticket ``{id}-QA`` (seed 001's remediation ticket, no dependencies)
   when they are worth a ticket (:func:`worth_follow_up`): at least one should-fix or medium security finding,
   or at least :data:`FOLLOW_UP_MIN_SUGGESTIONS` items in all. The findings decide, not the word: an
   "approve" that lists a should-fix files the follow-up as an approve-with-suggestions would.

MERGE means the review lets the change go on towards the merge (QA gates, the knowledge steward, the merge
queue); it is not the merge itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.domain.estimates import FindingArea, estimate_for_type, task_type_of
from conveyor.domain.ids import parse_ticket_id
from conveyor.domain.roles import (
    FindingSeverity,
    ReviewDecision,
    ReviewFinding,
    ReviewScope,
    ReviewVerdict,
    SecurityFinding,
    SecuritySeverity,
    review_scope,
)
from conveyor.domain.ticket import Severity, SourceRef, Ticket, TicketKind, send_back

FOLLOW_UP_SUFFIX = "QA"
"""Seed 001: the remediation ticket of ``{task_id}`` is ``{task_id}-QA``."""

FOLLOW_UP_MIN_SUGGESTIONS = 3
"""Suggestion-level items (suggestions, low security findings) alone are worth a ticket from this many on."""

AnyFinding = ReviewFinding | SecurityFinding

_SERIOUS = frozenset({SecuritySeverity.CRITICAL, SecuritySeverity.HIGH})
_WORTHY_SECURITY = frozenset({SecuritySeverity.MEDIUM})
_SECURITY_ORDER = {s: i for i, s in enumerate(SecuritySeverity)}
_CODE_ORDER = {s: i for i, s in enumerate(FindingSeverity)}


class ReviewAction(StrEnum):
    MERGE = "merge"  # the change goes on towards the merge (QA, docs, merge queue)
    SEND_BACK = "send-back"  # back to the implementer with the feedback; counts an iteration
    BLOCKED = "blocked"  # a send-back at the iteration limit: blocked and escalated, the ticket stays put


# ── finding helpers ──────────────────────────────────────────────────────────────────────────────────────


def finding_label(finding: AnyFinding) -> str:
    """``blocker``, ``should-fix``, ``suggestion``, or ``security <severity>``."""
    if isinstance(finding, SecurityFinding):
        return f"security {finding.severity.value}"
    return finding.severity.value


def finding_location(finding: AnyFinding) -> str:
    """``path:line``, ``path``, or ``no file given`` (security findings carry no line)."""
    if not finding.file:
        return "no file given"
    if isinstance(finding, ReviewFinding) and finding.line is not None:
        return f"{finding.file}:{finding.line}"
    return finding.file


def describe_finding(finding: AnyFinding) -> str:
    """One line: ``[blocker] Title — src/app.py:42: description``."""
    text = f"[{finding_label(finding)}] {finding.title} — {finding_location(finding)}"
    detail = " ".join(finding.description.split())
    return f"{text}: {detail}" if detail else text


def is_must_fix(finding: AnyFinding, *, request_changes: bool) -> bool:
    """Critical/high security findings and blockers always; should-fix findings under request-changes."""
    if isinstance(finding, SecurityFinding):
        return finding.severity in _SERIOUS
    if finding.severity is FindingSeverity.BLOCKER:
        return True
    return request_changes and finding.severity is FindingSeverity.SHOULD_FIX


def worth_follow_up(findings: Iterable[AnyFinding]) -> bool:
    """Whether non-blocking findings left by a merging review are worth a follow-up ticket.

    Worth it: at least one should-fix finding or medium security finding (each is a real defect someone
    should fix), or at least :data:`FOLLOW_UP_MIN_SUGGESTIONS` items in all (suggestions and low security
    findings: one stray remark is not worth a ticket, a handful is).
    """
    items = list(findings)
    for finding in items:
        if isinstance(finding, SecurityFinding) and finding.severity in _WORTHY_SECURITY | _SERIOUS:
            return True
        if isinstance(finding, ReviewFinding) and finding.severity in (
            FindingSeverity.SHOULD_FIX,
            FindingSeverity.BLOCKER,
        ):
            return True
    return len(items) >= FOLLOW_UP_MIN_SUGGESTIONS


def _ordered(verdict: ReviewVerdict) -> list[AnyFinding]:
    """Security findings by severity, then code findings by severity; the reviewer's order within a severity."""
    security = sorted(verdict.security_findings, key=lambda f: _SECURITY_ORDER[f.severity])
    code = sorted(verdict.findings, key=lambda f: _CODE_ORDER[f.severity])
    return [*security, *code]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ── the outcome ──────────────────────────────────────────────────────────────────────────────────────────


class ReviewDecisionOutcome(BaseModel):
    """What the review decided for one ticket, and what the loop files and writes because of it.

    ``verdict`` is the reviewer's verdict restricted to ``scope`` (None when no review applied);
    ``must_fix`` the findings that send the ticket back; ``suggestions`` the non-blocking rest. ``feedback``
    is empty on MERGE; ``follow_up`` is set only on MERGE; ``notes`` is the TASKS.md notes line.
    ``iterations`` is the ticket's count when the decision was made; :meth:`apply` refuses a ticket that has
    moved on since.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str
    action: ReviewAction
    scope: frozenset[ReviewScope]
    verdict: ReviewVerdict | None = None
    reviewer_decision: ReviewDecision | None = Field(None, description="The reviewer's own word, before scoping.")
    must_fix: tuple[AnyFinding, ...] = ()
    suggestions: tuple[AnyFinding, ...] = ()
    feedback: str = ""
    follow_up: Ticket | None = None
    notes: str
    iterations: int = Field(ge=0)
    max_iterations: int = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.action is ReviewAction.MERGE:
            if self.verdict is not None and (self.verdict.open_critical_or_high or self.verdict.blockers):
                raise ValueError(f"{self.ticket_id}: nothing merges with an open blocker or critical/high finding")
            if self.must_fix:
                raise ValueError(f"{self.ticket_id}: a merge cannot leave must-fix findings")
        else:
            if self.verdict is None:
                raise ValueError(f"{self.ticket_id}: a send-back needs the verdict it acts on")
            if self.follow_up is not None:
                raise ValueError(f"{self.ticket_id}: only a merge files a follow-up ticket")
            at_limit = self.iterations >= self.max_iterations
            if at_limit != (self.action is ReviewAction.BLOCKED):
                raise ValueError(
                    f"{self.ticket_id}: {self.action.value} with {self.iterations} of {self.max_iterations} iterations"
                )
        return self

    @property
    def reviewed(self) -> bool:
        """A review applied (the scope is not empty)."""
        return bool(self.scope)

    @property
    def merges(self) -> bool:
        return self.action is ReviewAction.MERGE

    @property
    def overruled(self) -> bool:
        """The outcome goes the other way from the reviewer's word (e.g. "approve" with a critical finding)."""
        if self.reviewer_decision is None:
            return False
        said_merge = self.reviewer_decision is not ReviewDecision.REQUEST_CHANGES
        return said_merge != self.merges

    def apply(self, ticket: Ticket, *, at: datetime | None = None) -> Ticket:
        """The ticket after this outcome: the notes line appended; on SEND_BACK / BLOCKED, :func:`send_back`.

        MERGE leaves the state alone (where the ticket goes next — QA — is the loop's move). Raises ValueError
        for another ticket or one whose iteration count changed since the decision, and
        IllegalTransitionError when the ticket is not where a send-back can start (e.g. already done).
        """
        if ticket.id != self.ticket_id:
            raise ValueError(f"outcome of {self.ticket_id} applied to {ticket.id}")
        if ticket.iterations != self.iterations:
            raise ValueError(
                f"{ticket.id}: decided at {self.iterations} iteration(s), the ticket now has {ticket.iterations}"
            )
        moved = ticket if self.merges else send_back(ticket, max_iterations=self.max_iterations, at=at)
        notes = f"{ticket.notes}; {self.notes}" if ticket.notes else self.notes
        return moved.model_copy(update={"notes": notes})


# ── the decision ─────────────────────────────────────────────────────────────────────────────────────────


def follow_up_id(ticket_id: str) -> str:
    """``MS-SEC-001`` → ``MS-SEC-001-QA`` (seed 001's remediation ticket id)."""
    parse_ticket_id(ticket_id)
    return f"{ticket_id}-{FOLLOW_UP_SUFFIX}"


def decide_review(
    ticket: Ticket,
    verdict: ReviewVerdict | None,
    changed_paths: Sequence[str],
    *,
    max_iterations: int,
    backend: str | None = None,
) -> ReviewDecisionOutcome:
    """Apply the review decision table (module docstring) to the reviewer's ``verdict`` on ``ticket``.

    ``changed_paths`` are the paths the change touches (repository-relative); they set the review scope.
    ``verdict`` may be None only when no review is in scope (a docs-only change). ``backend`` (the reviewer's
    backend and version, e.g. ``anthropic claude-sonnet-4``) ends the notes line when given.
    """
    if isinstance(changed_paths, str):
        raise TypeError("changed_paths is a sequence of paths, not one string")
    if max_iterations < 0:
        raise ValueError(f"max_iterations must be 0 or more, got {max_iterations}")
    paths = list(changed_paths)
    scope = review_scope(paths)
    if not scope:
        what = "no changes" if not paths else "documentation and tracking changes only"
        return ReviewDecisionOutcome(
            ticket_id=ticket.id,
            action=ReviewAction.MERGE,
            scope=scope,
            notes=f"Review: skipped ({what})",
            iterations=ticket.iterations,
            max_iterations=max_iterations,
        )
    if verdict is None:
        kinds = " and ".join(sorted(s.value for s in scope))
        raise ValueError(f"{ticket.id}: the change needs a {kinds} review, but no verdict was given")

    scoped = verdict.in_scope(scope)
    request_changes = ReviewScope.CODE in scope and scoped.decision is ReviewDecision.REQUEST_CHANGES
    ordered = _ordered(scoped)
    must_fix = tuple(f for f in ordered if is_must_fix(f, request_changes=request_changes))
    suggestions = tuple(f for f in ordered if not is_must_fix(f, request_changes=request_changes))

    if request_changes or must_fix:
        action = ReviewAction.BLOCKED if ticket.iterations >= max_iterations else ReviewAction.SEND_BACK
    else:
        action = ReviewAction.MERGE
    follow_up = (
        build_follow_up(ticket, suggestions) if action is ReviewAction.MERGE and worth_follow_up(suggestions) else None
    )
    feedback = (
        ""
        if action is ReviewAction.MERGE
        else _feedback(ticket, scoped, scope, must_fix, suggestions, action, max_iterations)
    )
    outcome = ReviewDecisionOutcome(
        ticket_id=ticket.id,
        action=action,
        scope=scope,
        verdict=scoped,
        reviewer_decision=verdict.decision,
        must_fix=must_fix,
        suggestions=suggestions,
        feedback=feedback,
        follow_up=follow_up,
        notes="",
        iterations=ticket.iterations,
        max_iterations=max_iterations,
    )
    return outcome.model_copy(update={"notes": _notes_line(outcome, backend=backend)})


# ── what the outcome writes ──────────────────────────────────────────────────────────────────────────────


def _scope_words(scope: frozenset[ReviewScope]) -> str:
    if scope == {ReviewScope.SECURITY}:
        return "security review only"
    if scope == {ReviewScope.CODE}:
        return "code review only"
    return ""


def _notes_line(outcome: ReviewDecisionOutcome, *, backend: str | None) -> str:
    """Seed 001's TASKS.md notes line, adapted to Conveyor's outcomes.

    - ``Review: approve (0 blockers, 0 critical, 0 high) | <backend>``
    - ``Review: approve-with-suggestions (0 blockers, 0 critical, 0 high) → QA task X-QA created | <backend>``
    - ``Review: request-changes (1 blocker, 0 critical, 2 high) → sent back (round trip 1 of 3) | <backend>``
    - ``Review: request-changes (...) → iteration limit reached (3 of 3): blocked and escalated | <backend>``
    - ``Review: skipped (documentation and tracking changes only)``

    Counts are of in-scope findings. The parentheses also say a partial scope (``security review only``) and
    the reviewer's own word when the outcome overrules it (``reviewer said approve``).
    """
    verdict = outcome.verdict
    if verdict is None:  # no review applied: decide_review wrote the skip line
        return outcome.notes
    critical = sum(1 for f in verdict.security_findings if f.severity is SecuritySeverity.CRITICAL)
    high = sum(1 for f in verdict.security_findings if f.severity is SecuritySeverity.HIGH)
    if outcome.merges:
        word = ReviewDecision.APPROVE_WITH_SUGGESTIONS if outcome.suggestions else ReviewDecision.APPROVE
    else:
        word = ReviewDecision.REQUEST_CHANGES
    details = [_plural(verdict.blockers, "blocker"), f"{critical} critical", f"{high} high"]
    if scope_words := _scope_words(outcome.scope):
        details.append(scope_words)
    if outcome.overruled and outcome.reviewer_decision is not None:
        details.append(f"reviewer said {outcome.reviewer_decision.value}")
    line = f"Review: {word.value} ({', '.join(details)})"
    if outcome.action is ReviewAction.SEND_BACK:
        line += f" → sent back (round trip {outcome.iterations + 1} of {outcome.max_iterations})"
    elif outcome.action is ReviewAction.BLOCKED:
        line += f" → iteration limit reached ({outcome.iterations} of {outcome.max_iterations}): blocked and escalated"
    elif outcome.follow_up is not None:
        line += f" → QA task {outcome.follow_up.id} created"
    return f"{line} | {backend}" if backend else line


def _feedback(
    ticket: Ticket,
    verdict: ReviewVerdict,
    scope: frozenset[ReviewScope],
    must_fix: Sequence[AnyFinding],
    suggestions: Sequence[AnyFinding],
    action: ReviewAction,
    max_iterations: int,
) -> str:
    """The implementer's brief for the next round (also what a person sees when the ticket is blocked)."""
    if action is ReviewAction.SEND_BACK:
        head = (
            f"Review of {ticket.id} sent the change back "
            f"(round trip {ticket.iterations + 1} of {max_iterations}; at the limit the ticket is blocked)."
        )
    else:
        head = (
            f"Review of {ticket.id} asks for changes, but the ticket has used its {max_iterations} round trip(s): "
            "it is blocked and escalated to a person."
        )
    lines = [head]
    if scope_words := _scope_words(scope):
        lines.append(f"Scope: {scope_words} (by the changed paths).")
    if verdict.comments.strip():
        lines += ["", "Reviewer's remarks:", verdict.comments.strip()]
    lines += ["", "Must fix before this change can merge:"]
    if must_fix:
        lines += [f"{n}. {describe_finding(f)}" for n, f in enumerate(must_fix, start=1)]
    else:
        lines.append("- The reviewer requested changes without itemised findings; see the remarks above.")
    if suggestions:
        lines += ["", "Also noted (optional; fix them if it is cheap):"]
        lines += [f"- {describe_finding(f)}" for f in suggestions]
    return "\n".join(lines)


def _follow_up_severity(findings: Sequence[AnyFinding]) -> Severity:
    for finding in findings:
        if isinstance(finding, SecurityFinding) and finding.severity is not SecuritySeverity.LOW:
            return Severity.MEDIUM
        if isinstance(finding, ReviewFinding) and finding.severity is not FindingSeverity.SUGGESTION:
            return Severity.MEDIUM
    return Severity.LOW


def build_follow_up(ticket: Ticket, findings: Sequence[AnyFinding]) -> Ticket:
    """Seed 001's remediation ticket ``{id}-QA`` for the findings a merging review left.

    No dependencies (it is a follow-up, not a blocker); the description and the acceptance criteria list each
    finding with its file location; the touch set is the files named. Phase and repository are the ticket's;
    the task type, estimate and complexity come from :mod:`conveyor.domain.estimates` (security fix when a
    security finding is among them).
    """
    if not findings:
        raise ValueError(f"{ticket.id}: a follow-up ticket needs at least one finding")
    files = sorted({f.file for f in findings if f.file})
    security = any(isinstance(f, SecurityFinding) for f in findings)
    description = "\n".join(
        [
            f"Follow-up of {ticket.id} ({ticket.title}): the review let the change merge and left these findings.",
            "",
            *(f"- {describe_finding(f)}" for f in findings),
        ]
    )
    task_type, why = task_type_of(description, FindingArea.SECURITY if security else None)
    estimate = estimate_for_type(task_type, file_count=max(1, len(files)), security=security, why=why)
    source: SourceRef | None = None
    if len(files) == 1:
        lines = {f.line for f in findings if isinstance(f, ReviewFinding) and f.line is not None}
        source = SourceRef(file=files[0], lines=str(lines.pop()) if len(lines) == 1 else None)
    return Ticket(
        id=follow_up_id(ticket.id),
        title=f"Follow up the review of {ticket.id}: {ticket.title}",
        description=description,
        acceptance_criteria=tuple(
            f"Fixed, or declined with the reason in the notes: {f.title} ({finding_location(f)})" for f in findings
        ),
        kind=TicketKind.CHANGE,
        phase=ticket.phase,
        severity=_follow_up_severity(findings),
        source=source,
        repo=ticket.repo,
        touch_set=tuple(files),
        complexity=estimate.complexity,
        task_type=estimate.task_type,
        estimate_tokens=estimate.tokens,
        notes=f"Review follow-up of {ticket.id}: {_plural(len(findings), 'finding')}",
    )
