"""The review decision table (ARCHITECTURE.md §8, seed 001 Phase 2b): every row, the iteration limit, the
follow-up ticket, the feedback and the TASKS.md notes line."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from conveyor.domain.errors import IllegalTransitionError
from conveyor.domain.ids import parse_ticket_id
from conveyor.domain.review import (
    FOLLOW_UP_MIN_SUGGESTIONS,
    AnyFinding,
    ReviewAction,
    ReviewDecisionOutcome,
    build_follow_up,
    decide_review,
    describe_finding,
    follow_up_id,
    worth_follow_up,
)
from conveyor.domain.roles import (
    FindingSeverity,
    ReviewDecision,
    ReviewFinding,
    ReviewScope,
    ReviewVerdict,
    SecurityFinding,
    SecuritySeverity,
)
from conveyor.domain.ticket import Flag, Severity, State, TaskType, Ticket, TicketKind

SOURCE = ("src/app/login.py", "tests/test_login.py")
DOCS = ("README.md", "docs/TASKS.md")
CONFIG = ("config/app.yml",)
TESTS = ("tests/test_login.py",)
BOTH = frozenset({ReviewScope.CODE, ReviewScope.SECURITY})
CODE = frozenset({ReviewScope.CODE})
SECURITY = frozenset({ReviewScope.SECURITY})
NONE: frozenset[ReviewScope] = frozenset()

A, AWS, RC = ReviewDecision.APPROVE, ReviewDecision.APPROVE_WITH_SUGGESTIONS, ReviewDecision.REQUEST_CHANGES


def make_ticket(*, iterations: int = 0, state: State = State.REVIEWING, notes: str = "") -> Ticket:
    return Ticket(
        id="MS-SEC-001",
        title="Harden login",
        phase=1,
        repo="api",
        state=state,
        iterations=iterations,
        attempt=1,
        notes=notes,
    )


def blocker(title: str = "Token never expires", line: int | None = 42) -> ReviewFinding:
    return ReviewFinding(
        severity=FindingSeverity.BLOCKER, title=title, file="src/app/login.py", line=line, description="Set a TTL."
    )


def should_fix(title: str = "Duplicate query", line: int | None = 12) -> ReviewFinding:
    return ReviewFinding(severity=FindingSeverity.SHOULD_FIX, title=title, file="src/app/login.py", line=line)


def suggestion(title: str = "Rename helper", file: str | None = "src/app/util.py") -> ReviewFinding:
    return ReviewFinding(severity=FindingSeverity.SUGGESTION, title=title, file=file, line=3)


def sec(severity: SecuritySeverity, title: str = "Secret in log", file: str = "src/app/login.py") -> SecurityFinding:
    return SecurityFinding(severity=severity, title=title, file=file, description="Mask it.")


def verdict(
    decision: ReviewDecision,
    *findings: ReviewFinding,
    security: tuple[SecurityFinding, ...] = (),
    comments: str = "",
) -> ReviewVerdict:
    return ReviewVerdict(
        decision=decision, findings=list(findings), security_findings=list(security), comments=comments
    )


# ── the table ────────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Row:
    name: str
    verdict: ReviewVerdict | None
    paths: tuple[str, ...]
    action: ReviewAction
    scope: frozenset[ReviewScope]
    follow_up: bool = False
    must_fix: tuple[str, ...] = ()  # titles, in order
    suggestions: tuple[str, ...] = field(default=())


ROWS = [
    Row("approve", verdict(A), SOURCE, ReviewAction.MERGE, BOTH),
    Row(
        "approve-with-suggestions, one suggestion: not worth a ticket",
        verdict(AWS, suggestion()),
        SOURCE,
        ReviewAction.MERGE,
        BOTH,
        suggestions=("Rename helper",),
    ),
    Row(
        "approve-with-suggestions, a should-fix: follow-up",
        verdict(AWS, should_fix(), suggestion()),
        SOURCE,
        ReviewAction.MERGE,
        BOTH,
        follow_up=True,
        suggestions=("Duplicate query", "Rename helper"),
    ),
    Row(
        f"approve-with-suggestions, {FOLLOW_UP_MIN_SUGGESTIONS} suggestions: follow-up",
        verdict(AWS, *(suggestion(f"S{i}") for i in range(FOLLOW_UP_MIN_SUGGESTIONS))),
        SOURCE,
        ReviewAction.MERGE,
        BOTH,
        follow_up=True,
        suggestions=tuple(f"S{i}" for i in range(FOLLOW_UP_MIN_SUGGESTIONS)),
    ),
    Row(
        "request-changes: should-fix findings are must-fix",
        verdict(RC, suggestion(), should_fix()),
        SOURCE,
        ReviewAction.SEND_BACK,
        BOTH,
        must_fix=("Duplicate query",),
        suggestions=("Rename helper",),
    ),
    Row("request-changes without findings", verdict(RC), SOURCE, ReviewAction.SEND_BACK, BOTH),
    Row(
        "a blocker under approve",
        verdict(A, should_fix(), blocker()),
        SOURCE,
        ReviewAction.SEND_BACK,
        BOTH,
        must_fix=("Token never expires",),
        suggestions=("Duplicate query",),
    ),
    Row(
        "a critical security finding under approve",
        verdict(A, security=(sec(SecuritySeverity.CRITICAL, "SQL injection"),)),
        SOURCE,
        ReviewAction.SEND_BACK,
        BOTH,
        must_fix=("SQL injection",),
    ),
    Row(
        "a high security finding under approve-with-suggestions",
        verdict(AWS, suggestion(), security=(sec(SecuritySeverity.HIGH),)),
        SOURCE,
        ReviewAction.SEND_BACK,
        BOTH,
        must_fix=("Secret in log",),
        suggestions=("Rename helper",),
    ),
    Row(
        "a medium security finding: merge with a follow-up",
        verdict(A, security=(sec(SecuritySeverity.MEDIUM),)),
        SOURCE,
        ReviewAction.MERGE,
        BOTH,
        follow_up=True,
        suggestions=("Secret in log",),
    ),
    Row(
        "a low security finding: merge, not worth a ticket",
        verdict(A, security=(sec(SecuritySeverity.LOW),)),
        SOURCE,
        ReviewAction.MERGE,
        BOTH,
        suggestions=("Secret in log",),
    ),
    Row("docs-only: no review, no verdict", None, DOCS, ReviewAction.MERGE, NONE),
    Row(
        "docs-only: a verdict given anyway is ignored",
        verdict(RC, blocker(), security=(sec(SecuritySeverity.CRITICAL),)),
        DOCS,
        ReviewAction.MERGE,
        NONE,
    ),
    Row("no changes at all: nothing to review", None, (), ReviewAction.MERGE, NONE),
    Row(
        "config-only: a code blocker is ignored",
        verdict(A, blocker()),
        CONFIG,
        ReviewAction.MERGE,
        SECURITY,
    ),
    Row(
        "config-only: request-changes with only code findings is ignored",
        verdict(RC, blocker(), should_fix()),
        CONFIG,
        ReviewAction.MERGE,
        SECURITY,
    ),
    Row(
        "config-only: a high security finding is honoured",
        verdict(A, blocker(), security=(sec(SecuritySeverity.HIGH, "Debug on", "config/app.yml"),)),
        CONFIG,
        ReviewAction.SEND_BACK,
        SECURITY,
        must_fix=("Debug on",),
    ),
    Row(
        "test-only: a critical security finding is ignored",
        verdict(A, security=(sec(SecuritySeverity.CRITICAL),)),
        TESTS,
        ReviewAction.MERGE,
        CODE,
    ),
    Row(
        "test-only: a blocker is honoured",
        verdict(A, blocker(), security=(sec(SecuritySeverity.HIGH),)),
        TESTS,
        ReviewAction.SEND_BACK,
        CODE,
        must_fix=("Token never expires",),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_decision_table(row: Row) -> None:
    outcome = decide_review(make_ticket(), row.verdict, row.paths, max_iterations=3)
    assert outcome.action is row.action
    assert outcome.scope == row.scope
    assert outcome.reviewed is bool(row.scope)
    assert (outcome.follow_up is not None) is row.follow_up
    assert tuple(f.title for f in outcome.must_fix) == row.must_fix
    assert tuple(f.title for f in outcome.suggestions) == row.suggestions
    assert bool(outcome.feedback) is (row.action is not ReviewAction.MERGE)
    if not row.scope:
        assert outcome.verdict is None
        assert outcome.notes.startswith("Review: skipped")
    else:
        assert outcome.verdict is not None
        # nothing merges with an open critical/high finding or a blocker in scope
        if outcome.merges:
            assert outcome.verdict.open_critical_or_high == 0
            assert outcome.verdict.blockers == 0
    # the outcome survives the trip through JSON (the loop persists it)
    assert ReviewDecisionOutcome.model_validate_json(outcome.model_dump_json()) == outcome


def test_scoped_verdict_drops_out_of_scope_findings() -> None:
    raw = verdict(A, blocker(), security=(sec(SecuritySeverity.HIGH),))
    config = decide_review(make_ticket(), raw, CONFIG, max_iterations=3)
    tests = decide_review(make_ticket(), raw, TESTS, max_iterations=3)
    assert config.verdict is not None and config.verdict.findings == []
    assert len(config.verdict.security_findings) == 1
    assert tests.verdict is not None and tests.verdict.security_findings == []
    assert len(tests.verdict.findings) == 1
    assert config.reviewer_decision is tests.reviewer_decision is A


def test_a_change_needing_review_needs_a_verdict() -> None:
    with pytest.raises(ValueError, match=r"MS-SEC-001: the change needs a code and security review"):
        decide_review(make_ticket(), None, SOURCE, max_iterations=3)
    with pytest.raises(ValueError, match="security review"):
        decide_review(make_ticket(), None, CONFIG, max_iterations=3)


def test_changed_paths_must_not_be_one_string() -> None:
    with pytest.raises(TypeError):
        decide_review(make_ticket(), verdict(A), "src/app/login.py", max_iterations=3)


def test_negative_iteration_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_iterations"):
        decide_review(make_ticket(), verdict(A), SOURCE, max_iterations=-1)


# ── the rule: nothing merges with an open critical or high finding ───────────────────────────────────────


@pytest.mark.parametrize("severity", [SecuritySeverity.CRITICAL, SecuritySeverity.HIGH])
@pytest.mark.parametrize("decision", list(ReviewDecision))
def test_critical_or_high_never_merges_whatever_the_word(decision: ReviewDecision, severity: SecuritySeverity) -> None:
    for paths in (SOURCE, CONFIG):
        outcome = decide_review(make_ticket(), verdict(decision, security=(sec(severity),)), paths, max_iterations=3)
        assert not outcome.merges
        assert outcome.follow_up is None


def test_an_outcome_cannot_be_built_as_a_merge_with_a_critical_finding() -> None:
    bad = verdict(A, security=(sec(SecuritySeverity.CRITICAL),))
    with pytest.raises(ValidationError, match="nothing merges"):
        ReviewDecisionOutcome(
            ticket_id="MS-SEC-001",
            action=ReviewAction.MERGE,
            scope=BOTH,
            verdict=bad,
            notes="Review: approve",
            iterations=0,
            max_iterations=3,
        )


# ── the iteration limit ──────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("iterations", "max_iterations", "action"),
    [
        (0, 3, ReviewAction.SEND_BACK),
        (2, 3, ReviewAction.SEND_BACK),
        (3, 3, ReviewAction.BLOCKED),
        (4, 3, ReviewAction.BLOCKED),
        (0, 0, ReviewAction.BLOCKED),
        (1, 5, ReviewAction.SEND_BACK),
    ],
)
def test_iteration_limit(iterations: int, max_iterations: int, action: ReviewAction) -> None:
    outcome = decide_review(
        make_ticket(iterations=iterations), verdict(RC, blocker()), SOURCE, max_iterations=max_iterations
    )
    assert outcome.action is action
    assert outcome.iterations == iterations
    assert outcome.max_iterations == max_iterations


def test_send_back_applies_one_round_trip() -> None:
    ticket = make_ticket(iterations=2, notes="Estimate 8K")
    outcome = decide_review(ticket, verdict(RC, blocker()), SOURCE, max_iterations=3)
    after = outcome.apply(ticket)
    assert after.state is State.IMPLEMENTING
    assert after.iterations == 3
    assert not after.flags
    assert after.notes == f"Estimate 8K; {outcome.notes}"


def test_blocked_applies_blocked_and_escalated_in_place() -> None:
    ticket = make_ticket(iterations=3)
    outcome = decide_review(ticket, verdict(A, blocker()), SOURCE, max_iterations=3)
    assert outcome.action is ReviewAction.BLOCKED
    after = outcome.apply(ticket)
    assert after.state is State.REVIEWING
    assert after.iterations == 3
    assert after.flags == {Flag.BLOCKED, Flag.ESCALATED}
    assert after.notes == outcome.notes


def test_merge_at_the_limit_still_merges_and_apply_keeps_the_state() -> None:
    ticket = make_ticket(iterations=3)
    outcome = decide_review(ticket, verdict(A), SOURCE, max_iterations=3)
    assert outcome.action is ReviewAction.MERGE
    after = outcome.apply(ticket)
    assert after.state is State.REVIEWING
    assert after.flags == frozenset()
    assert after.notes == outcome.notes


def test_apply_refuses_another_or_a_moved_ticket() -> None:
    ticket = make_ticket(iterations=1)
    outcome = decide_review(ticket, verdict(RC), SOURCE, max_iterations=3)
    with pytest.raises(ValueError, match="applied to"):
        outcome.apply(ticket.model_copy(update={"id": "MS-SEC-002"}))
    with pytest.raises(ValueError, match="decided at 1 iteration"):
        outcome.apply(ticket.model_copy(update={"iterations": 2}))
    with pytest.raises(IllegalTransitionError):
        outcome.apply(ticket.model_copy(update={"state": State.DONE}))


def test_an_outcome_cannot_disagree_with_the_limit() -> None:
    with pytest.raises(ValidationError, match="send-back with 3 of 3"):
        ReviewDecisionOutcome(
            ticket_id="MS-SEC-001",
            action=ReviewAction.SEND_BACK,
            scope=BOTH,
            verdict=verdict(RC),
            notes="x",
            iterations=3,
            max_iterations=3,
        )


# ── feedback ─────────────────────────────────────────────────────────────────────────────────────────────


def test_feedback_lists_must_fix_with_file_and_line_most_severe_first() -> None:
    v = verdict(
        RC,
        suggestion("Rename helper"),
        should_fix("Duplicate query", line=12),
        blocker("Token never expires", line=42),
        security=(sec(SecuritySeverity.MEDIUM, "Weak hash"), sec(SecuritySeverity.CRITICAL, "SQL injection")),
        comments="Close, but the token handling is wrong.",
    )
    outcome = decide_review(make_ticket(iterations=1), v, SOURCE, max_iterations=3)
    text = outcome.feedback
    assert "round trip 2 of 3" in text
    assert "Close, but the token handling is wrong." in text
    must, _, optional = text.partition("Also noted")
    assert must.index("1. [security critical] SQL injection — src/app/login.py: Mask it.") < must.index(
        "2. [blocker] Token never expires — src/app/login.py:42: Set a TTL."
    )
    assert "3. [should-fix] Duplicate query — src/app/login.py:12" in must
    assert "[suggestion] Rename helper — src/app/util.py:3" in optional
    assert "[security medium] Weak hash — src/app/login.py" in optional
    assert "Rename helper" not in must


def test_feedback_without_findings_points_at_the_remarks() -> None:
    outcome = decide_review(make_ticket(), verdict(RC, comments="Wrong approach."), SOURCE, max_iterations=3)
    assert "Wrong approach." in outcome.feedback
    assert "without itemised findings" in outcome.feedback


def test_blocked_feedback_says_so_and_names_the_scope() -> None:
    v = verdict(A, security=(sec(SecuritySeverity.HIGH, "Debug on", "config/app.yml"),))
    outcome = decide_review(make_ticket(iterations=3), v, CONFIG, max_iterations=3)
    assert "blocked and escalated" in outcome.feedback
    assert "Scope: security review only" in outcome.feedback
    assert "[security high] Debug on — config/app.yml" in outcome.feedback


def test_describe_finding_without_file() -> None:
    assert describe_finding(suggestion("Naming", file=None)) == "[suggestion] Naming — no file given"


# ── the follow-up ticket ─────────────────────────────────────────────────────────────────────────────────


def test_follow_up_ticket_id_description_and_fields() -> None:
    v = verdict(
        AWS,
        should_fix("Duplicate query", line=12),
        suggestion("Rename helper"),
        security=(sec(SecuritySeverity.MEDIUM, "Weak hash", "src/app/crypto.py"),),
    )
    ticket = make_ticket()
    outcome = decide_review(ticket, v, SOURCE, max_iterations=3)
    follow = outcome.follow_up
    assert follow is not None
    assert follow.id == "MS-SEC-001-QA"
    assert parse_ticket_id(follow.id).suffixes == ("QA",)
    assert follow.depends_on == ()
    assert follow.state is State.QUEUED
    assert follow.kind is TicketKind.CHANGE
    assert (follow.phase, follow.repo) == (ticket.phase, ticket.repo)
    assert follow.title == "Follow up the review of MS-SEC-001: Harden login"
    assert follow.description.splitlines() == [
        "Follow-up of MS-SEC-001 (Harden login): the review let the change merge and left these findings.",
        "",
        "- [security medium] Weak hash — src/app/crypto.py: Mask it.",
        "- [should-fix] Duplicate query — src/app/login.py:12",
        "- [suggestion] Rename helper — src/app/util.py:3",
    ]
    assert follow.acceptance_criteria == (
        "Fixed, or declined with the reason in the notes: Weak hash (src/app/crypto.py)",
        "Fixed, or declined with the reason in the notes: Duplicate query (src/app/login.py:12)",
        "Fixed, or declined with the reason in the notes: Rename helper (src/app/util.py:3)",
    )
    assert follow.touch_set == ("src/app/crypto.py", "src/app/login.py", "src/app/util.py")
    assert follow.severity is Severity.MEDIUM
    assert follow.task_type is TaskType.SECURITY_FIX
    assert follow.estimate_tokens and follow.estimate_tokens > 0
    assert follow.complexity is not None
    assert follow.notes == "Review follow-up of MS-SEC-001: 3 findings"


def test_follow_up_of_suggestions_only_is_low_and_points_at_one_file() -> None:
    findings: list[AnyFinding] = [suggestion(f"S{i}", file="src/app/util.py") for i in range(3)]
    follow = build_follow_up(make_ticket(), findings)
    assert follow.severity is Severity.LOW
    assert follow.source is not None and str(follow.source) == "src/app/util.py:3"


def test_follow_up_of_a_follow_up_and_bad_input() -> None:
    assert follow_up_id("MS-SEC-001") == "MS-SEC-001-QA"
    assert follow_up_id("MS-SEC-001-QA") == "MS-SEC-001-QA-QA"
    with pytest.raises(ValueError, match="not of the form"):
        follow_up_id("nope")
    with pytest.raises(ValueError, match="at least one finding"):
        build_follow_up(make_ticket(), [])


def test_no_follow_up_on_a_send_back() -> None:
    outcome = decide_review(make_ticket(), verdict(RC, *(suggestion() for _ in range(5))), SOURCE, max_iterations=3)
    assert outcome.action is ReviewAction.SEND_BACK
    assert outcome.follow_up is None


@pytest.mark.parametrize(
    ("findings", "worth"),
    [
        ([], False),
        ([suggestion()], False),
        ([suggestion(), sec(SecuritySeverity.LOW)], False),
        ([suggestion() for _ in range(FOLLOW_UP_MIN_SUGGESTIONS)], True),
        ([suggestion(), suggestion(), sec(SecuritySeverity.LOW)], True),
        ([should_fix()], True),
        ([sec(SecuritySeverity.MEDIUM)], True),
    ],
)
def test_worth_follow_up(findings: list[AnyFinding], worth: bool) -> None:
    assert worth_follow_up(findings) is worth


# ── the notes line ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("ticket", "review", "paths", "backend", "line"),
    [
        (
            make_ticket(),
            verdict(A),
            SOURCE,
            "anthropic claude-sonnet-4",
            "Review: approve (0 blockers, 0 critical, 0 high) | anthropic claude-sonnet-4",
        ),
        (
            make_ticket(),
            verdict(AWS, suggestion()),
            SOURCE,
            None,
            "Review: approve-with-suggestions (0 blockers, 0 critical, 0 high)",
        ),
        (
            make_ticket(),
            verdict(AWS, should_fix()),
            SOURCE,
            "scripted",
            "Review: approve-with-suggestions (0 blockers, 0 critical, 0 high) → QA task MS-SEC-001-QA created"
            " | scripted",
        ),
        (
            make_ticket(),
            verdict(RC, blocker(), security=(sec(SecuritySeverity.HIGH), sec(SecuritySeverity.HIGH))),
            SOURCE,
            None,
            "Review: request-changes (1 blocker, 0 critical, 2 high) → sent back (round trip 1 of 3)",
        ),
        (
            make_ticket(),
            verdict(A, security=(sec(SecuritySeverity.CRITICAL),)),
            SOURCE,
            None,
            "Review: request-changes (0 blockers, 1 critical, 0 high, reviewer said approve)"
            " → sent back (round trip 1 of 3)",
        ),
        (
            make_ticket(iterations=3),
            verdict(RC, blocker(), blocker("Second")),
            SOURCE,
            None,
            "Review: request-changes (2 blockers, 0 critical, 0 high)"
            " → iteration limit reached (3 of 3): blocked and escalated",
        ),
        (
            make_ticket(),
            verdict(RC, blocker()),
            CONFIG,
            None,
            "Review: approve (0 blockers, 0 critical, 0 high, security review only, reviewer said request-changes)",
        ),
        (
            make_ticket(),
            verdict(A),
            TESTS,
            None,
            "Review: approve (0 blockers, 0 critical, 0 high, code review only)",
        ),
        (make_ticket(), None, DOCS, "scripted", "Review: skipped (documentation and tracking changes only)"),
        (make_ticket(), None, (), None, "Review: skipped (no changes)"),
    ],
)
def test_notes_line(
    ticket: Ticket, review: ReviewVerdict | None, paths: tuple[str, ...], backend: str | None, line: str
) -> None:
    assert decide_review(ticket, review, paths, max_iterations=3, backend=backend).notes == line


def test_overruled() -> None:
    overruled = decide_review(make_ticket(), verdict(A, blocker()), SOURCE, max_iterations=3)
    agreed = decide_review(make_ticket(), verdict(RC, blocker()), SOURCE, max_iterations=3)
    skipped = decide_review(make_ticket(), verdict(RC), DOCS, max_iterations=3)
    assert overruled.overruled
    assert not agreed.overruled
    assert not skipped.overruled and skipped.reviewer_decision is None
