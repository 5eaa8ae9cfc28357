"""Seed 001 Step 3 estimates: task type, base, adjustments, security x2.5 (once) and learnings calibration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.domain.estimates import (
    CALIBRATION_MAX,
    FindingArea,
    calibration_for,
    complexity_for,
    estimate_finding,
    estimate_for_type,
    finding_area,
)
from conveyor.domain.findings import Finding
from conveyor.domain.learning import LearningRecord
from conveyor.domain.ticket import Severity, TaskType

AT = datetime(2026, 2, 5, tzinfo=UTC)


def finding(fid: str, title: str, *, severity: Severity = Severity.MEDIUM, **kw: object) -> Finding:
    return Finding.model_validate(
        {"id": fid, "severity": severity, "title": title, "source": "docs/reports/r/01.md", "line": 3, **kw}
    )


def record(task_type: TaskType | None, estimate_k: float, actual_k: float, n: int = 1) -> LearningRecord:
    return LearningRecord(
        task_id=f"MS-CQ-{n:03d}",
        task_type=task_type,
        estimate_k=estimate_k,
        actual_k=actual_k,
        variance_pct=round((actual_k - estimate_k) * 100 / estimate_k, 1),
        captured_at=AT,
    )


@pytest.mark.parametrize(
    ("text", "task_type", "tokens"),
    [
        ("Fix SQL injection in user search", TaskType.SECURITY_FIX, 25_000),  # 8-12K middle x2.5
        ("Add auth decorator to admin routes", TaskType.GUARD_ADD, 6_500),
        ("Add authentication to the export API", TaskType.AUTH_ADD, 20_000),
        ("Refactor the cart reducer", TaskType.REFACTOR, 12_500),
        ("Refactor: architectural split of the API layer", TaskType.COMPLEX_REFACTOR, 32_500),
        ("Run prettier formatting", TaskType.STYLE_FIX, 4_000),
        ("Add tests for the cart service", TaskType.TEST_ADD, 20_000),
        ("Remove unused imports across ~200 files", TaskType.BULK_CLEANUP, 110_000),  # 200 x 0.55K, no +5K/file
        ("Missing null check in the parser", TaskType.SINGLE_LINE_FIX, 4_000),  # Step 3 rows
        ("Unhandled exception in the upload handler", TaskType.ERROR_HANDLING, 10_000),
        ("Implement the CSV export endpoint", TaskType.FEATURE_ADD, 20_000),
        ("Something vague about the thing", None, 10_000),  # no keyword: Step 3's middle row
    ],
)
def test_task_type_and_base(text: str, task_type: TaskType | None, tokens: int) -> None:
    estimate = estimate_finding(text)
    assert (estimate.task_type, estimate.tokens) == (task_type, tokens)
    assert estimate.calibration == 1.0


def test_adjustments_files_tests_docs() -> None:
    base = estimate_finding("Refactor the cart reducer").tokens
    assert estimate_finding("Refactor the cart reducer", file_count=3).tokens == base + 10_000  # +5K per extra
    assert estimate_finding("Refactor the cart reducer", needs_tests=True).tokens == base + 7_500  # middle of 5-10K
    assert estimate_finding("Refactor the cart reducer", needs_docs=True).tokens == base + 2_500  # middle of 2-3K
    both = estimate_finding("Refactor the cart reducer", file_count=2, needs_tests=True, needs_docs=True)
    assert both.tokens == 12_500 + 5_000 + 7_500 + 2_500
    assert "+5K for 1 extra file(s)" in both.explanation and "+7.5K tests" in both.explanation


def test_tests_and_docs_surcharges_skip_test_and_docs_work() -> None:
    assert estimate_finding("Add tests for the cart service", needs_tests=True).tokens == 20_000
    docs = finding("DOC-1", "README lacks setup steps", severity=Severity.LOW)
    assert estimate_finding(docs, needs_docs=True, needs_tests=True).tokens == 4_000
    assert estimate_for_type(TaskType.VERIFICATION, needs_tests=True, needs_docs=True).tokens == 4_000


def test_security_multiplier_applies_once_to_the_base_only() -> None:
    sec = finding("SEC-API-1", "SQL injection in search", severity=Severity.CRITICAL, file="api/search.py")
    estimate = estimate_finding(sec, file_count=2, needs_tests=True)
    # (8-12K middle = 10K) x 2.5 = 25K, then +5K file, +7.5K tests: the x2.5 is not applied again.
    assert estimate.tokens == 25_000 + 5_000 + 7_500
    assert estimate.explanation.count("x2.5") == 1
    assert estimate.task_type is TaskType.SECURITY_FIX


def test_security_finding_without_keyword_is_a_security_fix_whatever_its_severity() -> None:
    low = finding("SEC-WEB-2", "Session cookie lacks Secure flag", severity=Severity.LOW)
    estimate = estimate_finding(low)
    assert (estimate.task_type, estimate.tokens) == (TaskType.SECURITY_FIX, 25_000)
    marked = finding("CQ-WEB-9", "Session cookie lacks Secure flag", security=True)
    assert finding_area(marked) is FindingArea.SECURITY
    assert estimate_finding(marked).tokens == 25_000
    # A security finding whose words name another row takes that row's base (no x2.5): seed 001 Step 3.
    guard = finding("SEC-API-3", "Add input validation to login", severity=Severity.HIGH)
    assert (estimate_finding(guard).task_type, estimate_finding(guard).tokens) == (TaskType.GUARD_ADD, 6_500)
    assert estimate_finding(guard).complexity >= 4  # security never on the easy tier


def test_area_decides_for_tests_and_docs_and_falls_back_for_performance() -> None:
    test = finding("TEST-001", "Missing validation tests for the signup form", severity=Severity.LOW)
    assert estimate_finding(test).task_type is TaskType.TEST_ADD
    perf = finding("PERF-1", "N+1 query in the orders list")
    assert estimate_finding(perf).task_type is TaskType.REFACTOR
    assert finding_area(finding("DOCS-2", "Stale README")) is FindingArea.DOCS
    assert finding_area(finding("CQ-WEB-3", "Long function")) is FindingArea.CODE


def test_file_count_from_the_text() -> None:
    assert estimate_finding("Fix lint warnings in 12 files").tokens == 12 * 550
    assert estimate_finding("Refactor the handlers across 3 files").tokens == 12_500 + 10_000


def test_learnings_correct_the_estimate_of_their_type() -> None:
    learnings = [record(TaskType.SECURITY_FIX, 10, 15, 1), record(TaskType.SECURITY_FIX, 10, 25, 2)]
    calibration = calibration_for(TaskType.SECURITY_FIX, learnings)
    assert calibration is not None and calibration.factor == 2.0 and calibration.records == 2
    estimate = estimate_finding("Fix XSS in comments", needs_tests=True, learnings=learnings)
    assert estimate.tokens == (25_000 + 7_500) * 2
    assert estimate.calibration == 2.0
    assert "x2 learnings calibration of 2 record(s)" in estimate.explanation
    # Records of another type change nothing.
    assert estimate_finding("Refactor the cart reducer", learnings=learnings).tokens == 12_500


def test_learnings_calibration_is_clamped() -> None:
    high = [record(TaskType.REFACTOR, 10, 100)]
    low = [record(TaskType.REFACTOR, 10, 1)]
    assert estimate_finding("Refactor the cart", learnings=high).tokens == 12_500 * CALIBRATION_MAX
    assert estimate_finding("Refactor the cart", learnings=low).tokens == 6_300  # 6,250 x0.5, halves up
    assert "(clamped)" in estimate_finding("Refactor the cart", learnings=high).explanation
    assert calibration_for(TaskType.REFACTOR, [record(TaskType.REFACTOR, 0.0001, 5)]) is not None


def test_unclassified_learnings_calibrate_unclassified_estimates() -> None:
    estimate = estimate_finding("Something vague", learnings=[record(None, 10, 20)])
    assert estimate.tokens == 20_000


def test_complexity() -> None:
    assert complexity_for(TaskType.STYLE_FIX) == 2
    assert complexity_for(TaskType.STYLE_FIX, security=True) == 4
    assert complexity_for(TaskType.REFACTOR, file_count=3) == 6
    assert complexity_for(TaskType.COMPLEX_REFACTOR, file_count=5) == 9
    assert complexity_for(None) == 5
