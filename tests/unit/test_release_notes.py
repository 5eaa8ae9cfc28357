"""Deterministic release notes and the estimate-variance retrospective (seed 001 "Run final retrospective")."""

from __future__ import annotations

from datetime import date

from conveyor.domain.release_notes import (
    RETROSPECTIVE_HEADING,
    TypeRetro,
    fallback_release_notes,
    render_retrospective,
    variance_by_type,
)
from conveyor.domain.ticket import State, TaskType, Ticket


def ticket(
    ticket_id: str,
    state: State = State.DONE,
    task_type: TaskType | None = None,
    estimate: int | None = None,
    used: int | None = None,
    title: str | None = None,
) -> Ticket:
    return Ticket(
        id=ticket_id,
        title=title or f"Title of {ticket_id}",
        state=state,
        task_type=task_type,
        estimate_tokens=estimate,
        used_tokens=used,
    )


MILESTONE = [
    ticket("CV-CQ-001", task_type=TaskType.REFACTOR, estimate=10_000, used=16_000),
    ticket("CV-CQ-002", task_type=TaskType.REFACTOR, estimate=10_000, used=19_000),  # REFACTOR: +75 %
    ticket("CV-CQ-003", task_type=TaskType.TEST_ADD, estimate=20_000, used=22_000),  # +10 %
    ticket("CV-SEC-004", task_type=TaskType.SECURITY_FIX, estimate=25_000, used=60_000),  # +140 %: critical
    ticket("CV-CQ-005", task_type=None, estimate=5_000, used=1_000),  # unclassified: -80 %
    ticket("CV-CQ-006", task_type=TaskType.STYLE_FIX, estimate=None, used=3_000),  # no estimate: skipped
    ticket("CV-CQ-007", task_type=TaskType.STYLE_FIX, estimate=0, used=3_000),  # zero estimate: skipped
    ticket("CV-CQ-008", State.DEFERRED, TaskType.REFACTOR, estimate=10_000, used=90_000),  # not done: skipped
    ticket("CV-CQ-009", State.SKIPPED),
    ticket("CV-CQ-010", State.OBSOLETE, title="Old\n  idea"),
]


def test_variance_by_type_groups_done_measured_tickets() -> None:
    assert variance_by_type(MILESTONE) == [
        TypeRetro(TaskType.SECURITY_FIX, 1, 25_000, 60_000),
        TypeRetro(TaskType.REFACTOR, 2, 20_000, 35_000),
        TypeRetro(TaskType.TEST_ADD, 1, 20_000, 22_000),
        TypeRetro(None, 1, 5_000, 1_000),  # unclassified last, whatever its variance
    ]
    rows = variance_by_type(MILESTONE)
    assert [r.variance_pct for r in rows] == [140.0, 75.0, 10.0, -80.0]
    assert rows[1].calibration == 1.75


def test_the_retrospective_table_and_proposals() -> None:
    assert render_retrospective(MILESTONE) == (
        f"{RETROSPECTIVE_HEADING}\n\n"
        "| task type | tickets | estimated (K tokens) | used (K tokens) | variance |\n"
        "|---|---:|---:|---:|---:|\n"
        "| SECURITY_FIX | 1 | 25.0 | 60.0 | +140.0% |\n"
        "| REFACTOR | 2 | 20.0 | 35.0 | +75.0% |\n"
        "| TEST_ADD | 1 | 20.0 | 22.0 | +10.0% |\n"
        "| unclassified | 1 | 5.0 | 1.0 | -80.0% |\n"
        "\n"
        "2 done ticket(s) without an estimate or a recorded usage are not counted.\n"
        "\n"
        "- SECURITY_FIX: +140.0% over 1 ticket(s), beyond ±50% — critical: review the task classification; "
        "proposal: scale SECURITY_FIX estimates by 2.4.\n"
        "- REFACTOR: +75.0% over 2 ticket(s), beyond ±50% — proposal: scale REFACTOR estimates by 1.75.\n"
        "- unclassified: -80.0% over 1 ticket(s), beyond ±50% — proposal: scale unclassified estimates by 0.2.\n"
    )


def test_the_threshold_is_exclusive_at_fifty_percent() -> None:
    text = render_retrospective([ticket("CV-CQ-001", task_type=TaskType.REFACTOR, estimate=10_000, used=15_000)])
    assert "| REFACTOR | 1 | 10.0 | 15.0 | +50.0% |" in text
    assert text.endswith("Every task type is within ±50% of its estimates: no heuristic change proposed.\n")


def test_a_retrospective_without_measurements() -> None:
    assert render_retrospective([ticket("CV-CQ-001"), ticket("CV-CQ-002", State.DEFERRED)]) == (
        f"{RETROSPECTIVE_HEADING}\n\n"
        "No done ticket has both a token estimate and a recorded usage (1 done): no variance.\n"
    )


def test_fallback_release_notes() -> None:
    notes = fallback_release_notes(
        "v0.0.2",
        "M1  Text\ttools",
        list(reversed(MILESTONE)),
        commits=[("0123456789abcdef", "feat: slugify (CV-CQ-001)"), ("fedcba9876543210", "fix:\n escape")],
        merge_commits={"CV-CQ-001": "0123456789abcdef", "CV-SEC-004": "abc"},
        deferral_reasons={"CV-CQ-008": "QA failed 3 times\non test_dates"},
        released_on=date(2026, 3, 1),
    )
    head, retrospective = notes.split(RETROSPECTIVE_HEADING)
    assert head == (
        "# v0.0.2 — M1 Text tools\n\n"
        "Released 2026-03-01.\n\n"
        "Written by Conveyor from the milestone's tickets and commits.\n\n"
        "## Milestone completion\n\n"
        "Milestone M1 Text tools: 7 of 10 ticket(s) done; 1 deferred, 1 skipped, 1 obsolete.\n\n"
        "| state | tickets |\n|---|---:|\n| done | 7 |\n| deferred | 1 |\n| skipped | 1 |\n| obsolete | 1 |\n\n"
        "## Delivered\n\n"
        "- CV-CQ-001 — Title of CV-CQ-001 (`0123456`)\n"
        "- CV-CQ-002 — Title of CV-CQ-002\n"
        "- CV-CQ-003 — Title of CV-CQ-003\n"
        "- CV-CQ-005 — Title of CV-CQ-005\n"
        "- CV-CQ-006 — Title of CV-CQ-006\n"
        "- CV-CQ-007 — Title of CV-CQ-007\n"
        "- CV-SEC-004 — Title of CV-SEC-004 (`abc`)\n\n"
        "## Not delivered\n\n"
        "- CV-CQ-008 — Title of CV-CQ-008: deferred — QA failed 3 times on test_dates\n"
        "- CV-CQ-009 — Title of CV-CQ-009: skipped\n"
        "- CV-CQ-010 — Old idea: obsolete\n\n"
        "## Commits\n\n"
        "- `0123456` feat: slugify (CV-CQ-001)\n"
        "- `fedcba9` fix: escape\n\n"
    )
    assert RETROSPECTIVE_HEADING + retrospective == render_retrospective(MILESTONE)


def test_fallback_notes_of_an_empty_release() -> None:
    notes = fallback_release_notes("0.0.1", "M0", [ticket("CV-CQ-001", State.DEFERRED)])
    assert "Milestone M0: 0 of 1 ticket(s) done; 1 deferred.\n" in notes
    assert "## Delivered\n\nNo ticket was delivered.\n" in notes
    assert "- CV-CQ-001 — Title of CV-CQ-001: deferred — no reason recorded\n" in notes
    assert "## Commits\n\nNo commits listed.\n" in notes
    assert "Released" not in notes
