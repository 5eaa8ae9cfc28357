"""Bootstrap planning (issue 4, behaviour 2-4, 6 and 8): findings or a plan → backlog; forecast and scope cut;
re-runs upsert."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.backlog import Backlog
from conveyor.domain.bootstrap import backlog_from_findings, dedupe_findings, internal_issue_ref, ticket_category
from conveyor.domain.bootstrap_budget import CUT_NOTE, cut_scope, defer_cut, forecast, projected_usd
from conveyor.domain.bootstrap_merge import GONE_NOTE, merge_backlog
from conveyor.domain.bootstrap_plan import backlog_from_plan
from conveyor.domain.budget import BudgetMode, CapSource, PriceTable
from conveyor.domain.findings import Finding
from conveyor.domain.ids import parse_ticket_id
from conveyor.domain.learning import LearningRecord
from conveyor.domain.roles import Plan
from conveyor.domain.ticket import Severity, SourceRef, State, TaskType, Ticket, TicketKind, transition

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PRICES = PriceTable()
C, H, M, L, INFO = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO


def finding(fid: str, severity: Severity, title: str, file: str | None = None, **kw: object) -> Finding:
    return Finding.model_validate(
        {"id": fid, "severity": severity, "title": title, "file": file, "source": "docs/reports/r/01.md", "line": 1}
        | kw
    )


# Ten findings in report order, over four phases.
FINDINGS = [
    finding("SEC-API-1", C, "SQL injection in user search", "api/search.py", lines="45-67", component="api"),
    finding("SEC-API-2", C, "Missing auth decorator on admin routes", "api/admin.py", component="api"),
    finding("SEC-API-3", C, "Sanitize search highlight output", "./api/search.py", component="api"),
    finding("CQ-API-4", H, "Unhandled exception in upload handler", "api/upload.py", component="api"),
    finding("SEC-WEB-1", H, "Session cookie lacks Secure flag", "web/session.ts", component="web", security=True),
    finding("CQ-WEB-3", M, "Refactor cart reducer", "web/cart.ts", component="web"),
    finding("CQ-WEB-5", M, "Fix typo in cart total label", "web/cart.ts", component="web"),
    finding("PERF-1", M, "N+1 query in orders list", "api/orders.py", component="api"),
    finding("TEST-001", L, "Add tests for the cart service", "web/cart.test.ts", component="web"),
    finding("DOC-1", INFO, "README lacks setup steps", "README.md"),
]

# id, finding, phase, kind, task type, estimate, depends_on
EXPECTED: list[tuple[str, str | None, int, TicketKind, TaskType | None, int, tuple[str, ...]]] = [
    # Phase 1: the search.py pair first (its head blocks the other), then the simpler-first singletons.
    ("MS-SEC-001", "SEC-API-1", 1, TicketKind.CHANGE, TaskType.SECURITY_FIX, 32_500, ()),
    ("MS-SEC-002", "SEC-API-3", 1, TicketKind.CHANGE, TaskType.SECURITY_FIX, 32_500, ("MS-SEC-001",)),
    ("MS-SEC-003", "SEC-API-2", 1, TicketKind.CHANGE, TaskType.GUARD_ADD, 14_000, ()),
    ("MS-DOC-001", None, 1, TicketKind.DOCS, TaskType.DOCS, 7_500, ("MS-SEC-001", "MS-SEC-002", "MS-SEC-003")),
    (
        "MS-SEC-004",
        None,
        1,
        TicketKind.VERIFICATION,
        TaskType.VERIFICATION,
        4_000,
        ("MS-SEC-001", "MS-SEC-002", "MS-SEC-003", "MS-DOC-001"),
    ),
    # Phase 2: every ticket waits on phase 1's verification; simpler first.
    ("MS-HIGH-001", "CQ-API-4", 2, TicketKind.CHANGE, TaskType.ERROR_HANDLING, 17_500, ("MS-SEC-004",)),
    ("MS-SEC-005", "SEC-WEB-1", 2, TicketKind.CHANGE, TaskType.SECURITY_FIX, 32_500, ("MS-SEC-004",)),
    ("MS-DOC-002", None, 2, TicketKind.DOCS, TaskType.DOCS, 5_000, ("MS-SEC-004", "MS-HIGH-001", "MS-SEC-005")),
    (
        "MS-HIGH-002",
        None,
        2,
        TicketKind.VERIFICATION,
        TaskType.VERIFICATION,
        4_000,
        ("MS-SEC-004", "MS-HIGH-001", "MS-SEC-005", "MS-DOC-002"),
    ),
    # Phase 3: the cart.ts chain (typo first: simpler), then the performance finding.
    ("MS-CQ-001", "CQ-WEB-5", 3, TicketKind.CHANGE, TaskType.SINGLE_LINE_FIX, 11_500, ("MS-HIGH-002",)),
    ("MS-CQ-002", "CQ-WEB-3", 3, TicketKind.CHANGE, TaskType.REFACTOR, 20_000, ("MS-HIGH-002", "MS-CQ-001")),
    ("MS-PERF-001", "PERF-1", 3, TicketKind.CHANGE, TaskType.REFACTOR, 20_000, ("MS-HIGH-002",)),
    (
        "MS-DOC-003",
        None,
        3,
        TicketKind.DOCS,
        TaskType.DOCS,
        7_500,
        ("MS-HIGH-002", "MS-CQ-001", "MS-CQ-002", "MS-PERF-001"),
    ),
    (
        "MS-CQ-003",
        None,
        3,
        TicketKind.VERIFICATION,
        TaskType.VERIFICATION,
        4_000,
        ("MS-HIGH-002", "MS-CQ-001", "MS-CQ-002", "MS-PERF-001", "MS-DOC-003"),
    ),
    # Phase 4: tests and docs only, so no documentation ticket; its verification is TEST-{LAST}.
    ("MS-DOC-004", "DOC-1", 4, TicketKind.DOCS, TaskType.DOCS, 4_000, ("MS-CQ-003",)),
    ("MS-TEST-001", "TEST-001", 4, TicketKind.CHANGE, TaskType.TEST_ADD, 20_000, ("MS-CQ-003",)),
    (
        "MS-TEST-002",
        None,
        4,
        TicketKind.VERIFICATION,
        TaskType.VERIFICATION,
        4_000,
        ("MS-CQ-003", "MS-DOC-004", "MS-TEST-001"),
    ),
]


def build(
    findings: list[Finding] = FINDINGS,
    *,
    learnings: Sequence[LearningRecord] = (),
    forge_issue_ref: Callable[[int], str] = internal_issue_ref,
) -> list[Ticket]:
    return backlog_from_findings(findings, prefix="MS", learnings=learnings, forge_issue_ref=forge_issue_ref)


def by_finding(tickets: list[Ticket]) -> dict[str, Ticket]:
    return {t.finding_id: t for t in tickets if t.finding_id}


# -- findings → backlog ------------------------------------------------------------------------------------


def test_exact_backlog_from_findings() -> None:
    tickets = build()
    got = [(t.id, t.finding_id, t.phase, t.kind, t.task_type, t.estimate_tokens, t.depends_on) for t in tickets]
    assert got == EXPECTED
    Backlog(tickets).validate()


def test_finding_ticket_fields() -> None:
    sec = by_finding(build())["SEC-API-1"]
    assert sec.title == "SQL injection in user search"
    assert sec.severity is Severity.CRITICAL
    assert sec.source == SourceRef(file="api/search.py", lines="45-67")
    assert sec.touch_set == ("api/search.py",)
    assert sec.repo == "api"
    assert sec.branch == "conveyor/ms-sec-001"
    assert sec.issue == "TASKS:P1"
    assert sec.state is State.QUEUED
    assert sec.acceptance_criteria[0] == "SEC-API-1 is remediated at api/search.py:45-67"
    assert sec.complexity is not None and sec.complexity >= 4
    assert by_finding(build())["SEC-API-3"].touch_set == ("api/search.py",)  # "./" normalised: same file


def test_phase_tickets() -> None:
    tickets = {t.id: t for t in build(forge_issue_ref=lambda phase: f"#{100 + phase}")}
    verification = tickets["MS-SEC-004"]
    assert verification.title.startswith("Phase 1 verification: ")
    assert "full QA gates" in verification.description and "security gates" in verification.description
    assert verification.branch is None and verification.issue == "#101"
    assert "Security gates pass on main" in verification.acceptance_criteria
    final = tickets["MS-TEST-002"]
    assert "security gates" not in final.description  # phase 4 holds no security fix
    docs = tickets["MS-DOC-003"]
    assert docs.title.startswith("Phase 3 documentation: ") and docs.branch == "conveyor/ms-doc-003"
    assert "documentation checklist" in docs.description
    assert docs.issue == "#103"


def test_low_severity_security_finding_is_sec_in_phase_4() -> None:
    low = finding("SEC-WEB-9", L, "Verbose error pages", "web/errors.ts", security=True)
    assert ticket_category(low) == "SEC"
    assert ticket_category(finding("CQ-1", H, "Deeply nested handler")) == "HIGH"
    assert ticket_category(finding("CQ-2", C, "Deeply nested handler")) == "HIGH"
    assert ticket_category(finding("CQ-3", L, "Long function")) == "CQ"
    assert ticket_category(finding("PERF-2", H, "Slow query")) == "PERF"
    tickets = build([low, finding("CQ-3", L, "Long function", "web/x.ts")])
    assert [(t.id, t.phase) for t in tickets] == [
        ("MS-CQ-001", 4),  # simpler first: 20K before the 32.5K security fix
        ("MS-SEC-001", 4),
        ("MS-DOC-001", 4),
        ("MS-TEST-001", 4),
    ]
    assert "security gates" in tickets[-1].description


def test_duplicate_finding_ids_make_one_ticket() -> None:
    twice = [
        finding("SEC-API-1", M, "SQL injection", None),
        finding("SEC-API-1", C, "SQL injection", "api/search.py", description="Details"),
    ]
    (merged,) = dedupe_findings(twice)
    assert (merged.severity, merged.file, merged.description) == (C, "api/search.py", "Details")
    tickets = build(twice)
    assert [t.finding_id for t in tickets].count("SEC-API-1") == 1
    assert by_finding(tickets)["SEC-API-1"].phase == 1


def test_learnings_calibrate_finding_estimates() -> None:
    learning = LearningRecord(
        task_id="X-SEC-001",
        task_type=TaskType.SECURITY_FIX,
        estimate_k=10,
        actual_k=20,
        variance_pct=100,
        captured_at=AT,
    )
    tickets = by_finding(build(learnings=[learning]))
    assert tickets["SEC-API-1"].estimate_tokens == 65_000
    assert tickets["CQ-API-4"].estimate_tokens == 17_500


# -- plan → backlog ------------------------------------------------------------------------------------------


def plan() -> Plan:
    return Plan.model_validate(
        {
            "tickets": [
                {
                    "title": "Add login endpoint",
                    "description": "POST /login",
                    "acceptance_criteria": ["returns a token"],
                    "depends_on": ["MODEL"],
                    "complexity": 6,
                    "touch_set": ["api/login.py"],
                    "task_type": "AUTH_ADD",
                    "estimate_tokens": 20_000,
                },
                {
                    "id_hint": "MODEL",
                    "title": "Add user model",
                    "description": "User table",
                    "acceptance_criteria": ["migration applies", "model has email"],
                    "complexity": 3,
                    "touch_set": ["api/models.py"],
                    "task_type": "FEATURE_ADD",
                    "estimate_tokens": 15_000,
                },
                {
                    "title": "Write login tests",
                    "description": "Cover login",
                    "acceptance_criteria": ["tests pass"],
                    "depends_on": ["add login endpoint"],
                    "complexity": 4,
                    "task_type": "TEST_ADD",
                    "estimate_tokens": 18_000,
                },
                {
                    "title": "Validate signup input",
                    "description": "Reject bad emails",
                    "acceptance_criteria": ["bad email is refused"],
                    "depends_on": ["Add user model"],
                    "complexity": 9,
                    "task_type": "GUARD_ADD",
                    "estimate_tokens": 0,
                },
            ]
        }
    )


def test_backlog_from_plan() -> None:
    learning = LearningRecord(
        task_id="X-SEC-001", task_type=TaskType.AUTH_ADD, estimate_k=10, actual_k=20, variance_pct=100, captured_at=AT
    )
    tickets = backlog_from_plan(plan(), prefix="AB", learnings=[learning])
    got = [(t.id, t.title, t.depends_on, t.estimate_tokens, t.complexity) for t in tickets]
    assert got == [
        ("AB-FEAT-001", "Add user model", (), 15_000, 3),
        ("AB-SEC-001", "Add login endpoint", ("AB-FEAT-001",), 40_000, 6),  # AUTH_ADD calibrated x2
        ("AB-TEST-001", "Write login tests", ("AB-SEC-001",), 18_000, 4),
        ("AB-SEC-002", "Validate signup input", ("AB-FEAT-001",), 6_500, 9),  # 0 → GUARD_ADD's seed base
        (
            "AB-DOC-001",
            "Documentation: update the docs for the planned changes",
            ("AB-FEAT-001", "AB-SEC-001", "AB-SEC-002"),
            7_500,
            2,
        ),
    ]
    first = tickets[0]
    assert first.acceptance_criteria == ("migration applies", "model has email")
    assert first.touch_set == ("api/models.py",) and first.task_type is TaskType.FEATURE_ADD
    assert first.branch == "conveyor/ab-feat-001" and first.phase is None
    assert tickets[-1].kind is TicketKind.DOCS
    Backlog(tickets).validate()


def test_plan_with_docs_ticket_gets_no_extra_one() -> None:
    data = plan().model_dump()
    data["tickets"].append(
        {
            "title": "Document login",
            "description": "docs/auth.md",
            "acceptance_criteria": ["documented"],
            "depends_on": ["Add login endpoint"],
            "complexity": 2,
            "task_type": "DOCS",
            "estimate_tokens": 3_000,
        }
    )
    tickets = backlog_from_plan(Plan.model_validate(data), prefix="AB")
    assert [t.id for t in tickets if t.kind is TicketKind.DOCS] == ["AB-DOC-001"]
    assert tickets[-1].title == "Document login"


# -- budget ----------------------------------------------------------------------------------------------


def test_forecast_derived_and_explicit_caps() -> None:
    tickets = build()
    projected = projected_usd(tickets, PRICES)
    derived = forecast(tickets, cap_usd=None, prices=PRICES)
    assert (derived.projected_usd, derived.cap_source, derived.mode) == (
        projected,
        CapSource.DERIVED,
        BudgetMode.NORMAL,
    )
    assert derived.cap_usd == pytest.approx(projected * 1.5)
    assert not derived.over_cap
    tight = forecast(tickets, cap_usd=projected * 0.8, prices=PRICES)
    assert (tight.cap_source, tight.mode, tight.over_cap) == (CapSource.EXPLICIT, BudgetMode.FROZEN, True)
    roomy = forecast(tickets, cap_usd=projected / 0.8, prices=PRICES)
    assert (roomy.mode, roomy.over_cap) == (BudgetMode.CONSERVATIVE, False)


def test_scope_cut_removes_phase_4_first_and_leaves_a_valid_dag() -> None:
    tickets = build()
    without_4 = projected_usd([t for t in tickets if t.phase != 4], PRICES)
    cut = cut_scope(tickets, cap_usd=without_4 + 0.000001, prices=PRICES)
    assert cut.cut_phases == (4,)
    assert {t.id for t in cut.cut} == {"MS-DOC-004", "MS-TEST-001", "MS-TEST-002"}
    assert cut.projected_after == without_4 and not cut.over_cap
    Backlog(cut.kept).validate()
    deferred = defer_cut(tickets, cut, at=AT)
    assert [t.id for t in deferred] == [t.id for t in tickets]  # nothing deleted
    assert {t.id for t in deferred if t.state is State.DEFERRED} == {t.id for t in cut.cut}
    assert all(CUT_NOTE in t.notes for t in deferred if t.state is State.DEFERRED)
    Backlog(deferred).validate()
    assert forecast(deferred, cap_usd=cut.cap_usd, prices=PRICES).projected_usd == without_4


def test_scope_cut_goes_on_to_phase_3_and_never_cuts_the_first_phase() -> None:
    tickets = build()
    only_1_2 = projected_usd([t for t in tickets if t.phase in (1, 2)], PRICES)
    assert cut_scope(tickets, cap_usd=only_1_2, prices=PRICES).cut_phases == (4, 3)
    hopeless = cut_scope(tickets, cap_usd=0.01, prices=PRICES)
    assert hopeless.cut_phases == (4, 3, 2)
    assert {t.phase for t in hopeless.kept} == {1} and hopeless.over_cap
    Backlog(hopeless.kept).validate()
    fits = cut_scope(tickets, cap_usd=1000.0, prices=PRICES)
    assert fits.cut == () and list(fits.kept) == tickets


def test_scope_cut_stops_at_a_phase_with_work_under_way() -> None:
    tickets = [transition(t, State.IMPLEMENTING) if t.id == "MS-CQ-001" else t for t in build()]
    cut = cut_scope(tickets, cap_usd=0.01, prices=PRICES)
    assert cut.cut_phases == (4,)
    Backlog(cut.kept).validate()


def test_scope_cut_on_a_rerun_passes_over_an_already_deferred_phase() -> None:
    tickets = build()
    first = cut_scope(tickets, cap_usd=projected_usd([t for t in tickets if t.phase != 4], PRICES), prices=PRICES)
    deferred = defer_cut(tickets, first, at=AT)
    again = cut_scope(deferred, cap_usd=projected_usd([t for t in tickets if t.phase in (1, 2)], PRICES), prices=PRICES)
    assert again.cut_phases == (4, 3)  # phase 4 was deferred already: it leaves with phase 3
    assert {t.id for t in defer_cut(deferred, again) if t.state is State.DEFERRED} == {
        t.id for t in tickets if t.phase in (3, 4)
    }
    Backlog(again.kept).validate()


# -- re-runs -----------------------------------------------------------------------------------------------


def test_rerun_without_change_is_identical() -> None:
    existing = build()
    result = merge_backlog(existing, build())
    assert result.tickets == existing and not result.changed
    assert result.unchanged == [t.id for t in existing]
    # Also while work is under way.
    started = [
        transition(t, State.IMPLEMENTING, at=AT).model_copy(update={"notes": "wip", "used_tokens": 3000})
        if t.id == "MS-SEC-001"
        else t
        for t in existing
    ]
    again = merge_backlog(started, build())
    assert again.tickets == started and not again.changed


def test_merge_into_nothing_gives_the_fresh_backlog() -> None:
    assert merge_backlog([], build()).tickets == build()


def test_rerun_with_added_removed_and_changed_findings_while_in_progress() -> None:
    existing = {t.id: t for t in build()}
    existing["MS-SEC-001"] = transition(existing["MS-SEC-001"], State.IMPLEMENTING, at=AT).model_copy(
        update={"notes": "halfway", "used_tokens": 9000, "cost_usd": 0.05, "agent": "w1"}
    )
    existing["MS-SEC-003"] = existing["MS-SEC-003"].model_copy(update={"state": State.DONE, "completed_at": AT})
    existing["MS-HIGH-001"] = transition(existing["MS-HIGH-001"], State.IMPLEMENTING, at=AT)
    before = list(existing.values())

    changed = [f for f in FINDINGS if f.id not in ("SEC-API-1", "SEC-API-2", "PERF-1")]
    changed = [
        f.model_copy(update={"title": "Refactor the cart reducer into slices"}) if f.id == "CQ-WEB-3" else f
        for f in changed
    ]
    changed = [
        f.model_copy(update={"title": "Upload handler swallows errors"}) if f.id == "CQ-API-4" else f for f in changed
    ]
    changed.append(finding("SEC-API-9", C, "Hard-coded JWT secret", "api/tokens.py", security=True))
    result = merge_backlog(before, build(changed), at=AT)
    tickets = {t.id: t for t in result.tickets}

    # Nothing deleted; order of existing rows kept; new ones appended.
    assert [t.id for t in result.tickets[: len(before)]] == [t.id for t in before]
    assert result.added == ["MS-SEC-006"]  # never reuses an id: SEC-001..005 exist
    new = tickets["MS-SEC-006"]
    assert new.finding_id == "SEC-API-9" and new.branch == "conveyor/ms-sec-006" and new.depends_on == ()
    # Removed: in progress → obsolete with a note; done stays done; queued → obsolete.
    assert tickets["MS-SEC-001"].state is State.OBSOLETE and GONE_NOTE in tickets["MS-SEC-001"].notes
    assert tickets["MS-SEC-001"].used_tokens == 9000 and "halfway" in tickets["MS-SEC-001"].notes
    assert tickets["MS-SEC-003"].state is State.DONE
    assert tickets["MS-PERF-001"].state is State.OBSOLETE
    assert set(result.obsoleted) == {"MS-SEC-001", "MS-PERF-001"}
    # Changed while queued: takes the new title; changed while in progress: keeps everything.
    assert tickets["MS-CQ-002"].title == "Refactor the cart reducer into slices"
    assert tickets["MS-HIGH-001"].title == "Unhandled exception in upload handler"
    assert tickets["MS-HIGH-001"].state is State.IMPLEMENTING
    # Phase tickets follow the new phase 1: SEC-API-3 now heads its file, the verification waits on the new one.
    assert tickets["MS-SEC-002"].depends_on == ()
    assert "MS-SEC-006" in tickets["MS-SEC-004"].depends_on and "MS-SEC-006" in tickets["MS-DOC-001"].depends_on
    assert {"MS-SEC-002", "MS-SEC-004", "MS-DOC-001", "MS-CQ-002", "MS-DOC-003", "MS-CQ-003"} <= set(result.updated)
    Backlog(result.tickets).validate()

    # Running it again with the same input changes nothing.
    again = merge_backlog(result.tickets, build(changed), at=AT)
    assert again.tickets == result.tickets and not again.changed


def test_finding_moved_to_an_earlier_phase_while_in_progress() -> None:
    existing = [transition(t, State.IMPLEMENTING, at=AT) if t.id == "MS-HIGH-001" else t for t in build()]
    moved = [f.model_copy(update={"severity": C}) if f.id == "CQ-API-4" else f for f in FINDINGS]
    result = merge_backlog(existing, build(moved), at=AT)
    tickets = {t.id: t for t in result.tickets}
    # Phase 1's verification now waits on it; its old dependency on that verification would close a cycle.
    assert "MS-HIGH-001" in tickets["MS-SEC-004"].depends_on
    assert tickets["MS-HIGH-001"].depends_on == () and tickets["MS-HIGH-001"].state is State.IMPLEMENTING
    assert tickets["MS-HIGH-001"].title == "Unhandled exception in upload handler"
    Backlog(result.tickets).validate()
    assert merge_backlog(result.tickets, build(moved), at=AT).tickets == result.tickets


def test_obsolete_finding_that_comes_back_gets_a_new_ticket() -> None:
    first = merge_backlog(build(), build(FINDINGS[1:]), at=AT).tickets
    assert next(t for t in first if t.finding_id == "SEC-API-1").state is State.OBSOLETE
    back = merge_backlog(first, build(), at=AT)
    assert len(back.added) == 1
    revived = next(t for t in back.tickets if t.id == back.added[0])
    assert revived.finding_id == "SEC-API-1" and revived.state is State.QUEUED
    assert parse_ticket_id(revived.id).number == 6


def test_duplicates_in_the_input_are_merged() -> None:
    same_place = [
        finding("SEC-API-1", C, "SQL injection in user search", "api/search.py", security=True),
        finding("CQ-API-7", M, "SQL injection in user search.", "api/search.py"),
    ]
    fresh = build(same_place)
    assert len([t for t in fresh if t.finding_id]) == 2
    result = merge_backlog([], fresh)
    assert [t.finding_id for t in result.tickets if t.finding_id] == ["SEC-API-1"]
    (dup,) = result.merged_duplicates
    assert (dup.kept_id, dup.duplicate, dup.reason) == ("MS-SEC-001", "CQ-API-7", "same file and title")
    Backlog(result.tickets).validate()


def test_duplicates_in_the_existing_backlog_are_obsoleted() -> None:
    existing = build()
    copy = existing[0].model_copy(update={"id": "MS-SEC-050", "branch": "conveyor/ms-sec-050"})
    result = merge_backlog([*existing, copy], build(), at=AT)
    assert result.obsoleted == ["MS-SEC-050"]
    assert result.tickets[-1].notes == "obsolete: duplicate of MS-SEC-001"
    assert [(d.kept_id, d.duplicate) for d in result.merged_duplicates] == [("MS-SEC-001", "MS-SEC-050")]


def test_tickets_the_input_does_not_own_pass_through() -> None:
    existing = build()
    follow_up = Ticket(id="MS-SEC-001-QA", title="Review suggestions", depends_on=("MS-SEC-001",))
    by_hand = Ticket(id="MS-CQ-040", title="Something a person added")
    result = merge_backlog([*existing, follow_up, by_hand], build(FINDINGS[1:]), at=AT)
    kept = {t.id: t for t in result.tickets}
    assert kept["MS-SEC-001-QA"] == follow_up and kept["MS-CQ-040"] == by_hand
    assert result.obsoleted == ["MS-SEC-001"]


def test_plan_rerun_matches_by_title() -> None:
    existing = backlog_from_plan(plan(), prefix="AB")
    existing[0] = transition(existing[0], State.IMPLEMENTING, at=AT)
    assert merge_backlog(existing, backlog_from_plan(plan(), prefix="AB")).tickets == existing
    data = plan().model_dump()
    data["tickets"][2]["description"] = "Cover login and logout"
    data["tickets"] = [t for t in data["tickets"] if t["title"] != "Validate signup input"]
    result = merge_backlog(existing, backlog_from_plan(Plan.model_validate(data), prefix="AB"), at=AT)
    tickets = {t.id: t for t in result.tickets}
    assert tickets["AB-TEST-001"].description == "Cover login and logout"
    assert tickets["AB-SEC-002"].state is State.OBSOLETE
    assert tickets["AB-DOC-001"].depends_on == ("AB-FEAT-001", "AB-SEC-001")
    assert result.added == []


# -- properties ----------------------------------------------------------------------------------------------

_TITLES = [
    "SQL injection in search",
    "Add auth decorator",
    "Refactor the module",
    "Fix typo",
    "Add tests for payments",
    "Unused imports",
    "Something vague",
]


@st.composite
def findings_lists(draw: st.DrawFn) -> list[Finding]:
    count = draw(st.integers(0, 25))
    out = []
    for _ in range(count):
        area = draw(st.sampled_from(["SEC", "CQ", "PERF", "TEST", "DOC", "HIGH"]))
        fid = f"{area}-{draw(st.sampled_from(['API', 'WEB']))}-{draw(st.integers(1, 12))}"
        out.append(
            finding(
                fid,
                draw(st.sampled_from(list(Severity))),
                draw(st.sampled_from(_TITLES)),
                draw(st.sampled_from([None, "a.py", "b.py", "./a.py", "c/d.ts"])),
                security=draw(st.booleans()),
            )
        )
    return out


@given(findings_lists())
def test_every_findings_list_gives_a_valid_backlog(findings: list[Finding]) -> None:
    tickets = backlog_from_findings(findings, prefix="PX")
    Backlog(tickets).validate()
    ids = {f.id for f in findings}
    per_finding = [t.finding_id for t in tickets if t.finding_id is not None]
    assert sorted(per_finding) == sorted(ids)  # exactly one ticket per finding id
    position = {t.id: i for i, t in enumerate(tickets)}
    assert all(position[d] < position[t.id] for t in tickets for d in t.depends_on)  # listed in dependency order
    # What bootstrap writes goes through the merge (also on the first run): duplicates by file and title merged,
    # every finding id still accounted for, and a re-run with the same input changes nothing.
    first = merge_backlog([], tickets)
    Backlog(first.tickets).validate()
    covered = {t.finding_id for t in first.tickets} | {d.duplicate for d in first.merged_duplicates}
    assert ids <= covered
    again = merge_backlog(first.tickets, backlog_from_findings(findings, prefix="PX"))
    assert again.tickets == first.tickets and not again.changed
