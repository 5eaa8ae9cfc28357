"""Seed 001 Learning & Retrospective: variance thresholds, task types, base estimates, records, summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from conveyor.domain.learning import (
    BASE_ESTIMATES,
    CLASSIFICATION_PRECEDENCE,
    KEYWORDS,
    LearningRecord,
    VarianceAction,
    base_estimate_tokens,
    capture_for_ticket,
    classify,
    file_count_hint,
    learning_record,
    matched_keywords,
    matching_types,
    summarise_variance,
    variance_action,
    variance_pct,
)
from conveyor.domain.ticket import TaskType, Ticket

AT = datetime(2026, 2, 5, 19, 45, tzinfo=UTC)


# -- variance ------------------------------------------------------------------------------------------


def test_variance_formula() -> None:
    assert variance_pct(30_000, 112_800) == 276.0  # seed 001's example
    assert variance_pct(15_000, 300) == -98.0
    assert variance_pct(8000, 12_000) == 50.0
    assert variance_pct(3, 4) == 33.3  # rounded to one decimal
    with pytest.raises(ValueError, match="positive estimate"):
        variance_pct(0, 10)


@pytest.mark.parametrize(
    ("variance", "action"),
    [
        (0, VarianceAction.LOG),
        (30, VarianceAction.LOG),
        (-30, VarianceAction.LOG),
        (30.1, VarianceAction.FLAG),
        (50, VarianceAction.FLAG),
        (-50, VarianceAction.FLAG),
        (50.1, VarianceAction.CAPTURE),
        (100, VarianceAction.CAPTURE),
        (-100, VarianceAction.CAPTURE),
        (100.1, VarianceAction.CRITICAL),
        (276, VarianceAction.CRITICAL),
    ],
)
def test_variance_thresholds(variance: float, action: VarianceAction) -> None:
    assert variance_action(variance) is action


def test_thresholds_on_computed_variances() -> None:
    # 13 / 10 is 30.000000000000004 % with naive float arithmetic; it must still be LOG.
    assert variance_action(variance_pct(10, 13)) is VarianceAction.LOG
    assert variance_action(variance_pct(10, 15)) is VarianceAction.FLAG
    assert variance_action(variance_pct(10, 20)) is VarianceAction.CAPTURE
    assert variance_action(variance_pct(10, 0)) is VarianceAction.CAPTURE
    assert variance_action(variance_pct(10, 21)) is VarianceAction.CRITICAL


def test_capturing_actions() -> None:
    assert [a for a in VarianceAction if a.captures] == [VarianceAction.CAPTURE, VarianceAction.CRITICAL]


@given(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), st.floats(min_value=0, max_value=1e4))
def test_action_is_monotone_in_magnitude(a: float, b: float) -> None:
    order = list(VarianceAction)
    assert order.index(variance_action(a)) == order.index(variance_action(-a))
    low, high = sorted([abs(a), b])
    assert order.index(variance_action(low)) <= order.index(variance_action(high))


# -- classification ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "task_type"),
    [
        ("Fix formatting in README", TaskType.STYLE_FIX),
        ("Run prettier over web/", TaskType.STYLE_FIX),
        ("Fix lint errors", TaskType.STYLE_FIX),
        ("Remove unused imports", TaskType.BULK_CLEANUP),
        ("Fix compiler warnings", TaskType.BULK_CLEANUP),
        ("Type guards across ~200 files", TaskType.BULK_CLEANUP),
        ("Add guard for null user", TaskType.GUARD_ADD),
        ("Adds a guard to the handler", TaskType.GUARD_ADD),
        ("Admin route needs a decorator", TaskType.GUARD_ADD),
        ("Input validation on /upload", TaskType.GUARD_ADD),
        ("Sanitize HTML output", TaskType.SECURITY_FIX),
        ("SQL injection in search", TaskType.SECURITY_FIX),
        ("Stored xss in comments", TaskType.SECURITY_FIX),
        ("Add authentication to the API", TaskType.AUTH_ADD),
        ("Auth for webhooks", TaskType.AUTH_ADD),
        ("Refactor the scheduler", TaskType.REFACTOR),
        ("Replace KEYS with SCAN", TaskType.REFACTOR),
        ("Migrate to pydantic 2", TaskType.REFACTOR),
        ("Add tests for the parser", TaskType.TEST_ADD),
        ("Raise coverage of services", TaskType.TEST_ADD),
        ("Write the release notes", None),
    ],
)
def test_classify_by_seed_keywords(description: str, task_type: TaskType | None) -> None:
    assert classify(description) is task_type


@pytest.mark.parametrize(
    "description",
    ["Authorize payments", "Fix the flint parser", "Blueprint update", "Revalidation cache", "Refactory cleanup"],
)
def test_keywords_match_on_word_boundaries(description: str) -> None:
    assert classify(description) is None


@pytest.mark.parametrize(
    ("description", "task_type"),
    [
        ("Add auth decorator to admin routes", TaskType.GUARD_ADD),  # seed 001 Step 3's example of a guard
        ("Add tests for XSS sanitization", TaskType.TEST_ADD),
        ("Sanitize input and refactor handler", TaskType.SECURITY_FIX),
        ("Migrate auth to JWT", TaskType.AUTH_ADD),
        ("Fix lint warnings in ~200 files", TaskType.BULK_CLEANUP),
        ("Refactor lint setup", TaskType.REFACTOR),
    ],
)
def test_precedence_when_several_types_match(description: str, task_type: TaskType) -> None:
    assert len(matching_types(description)) > 1
    assert classify(description) is task_type


def test_precedence_covers_every_classified_type() -> None:
    assert set(CLASSIFICATION_PRECEDENCE) == set(KEYWORDS)
    assert len(CLASSIFICATION_PRECEDENCE) == len(set(CLASSIFICATION_PRECEDENCE))


def test_matched_keywords_in_order_without_repeats() -> None:
    assert matched_keywords("Fix XSS: sanitize input, then sanitize output in ~12 files") == [
        "xss",
        "sanitize",
        "~12 files",
    ]


def test_file_count_hint() -> None:
    assert file_count_hint("cleanup across ~200 files") == 200
    assert file_count_hint("touches 3 files and then 12 files") == 12
    assert file_count_hint("one file") is None


# -- base estimates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_type", "low", "mid", "high"),
    [
        (TaskType.STYLE_FIX, 3000, 4000, 5000),
        (TaskType.GUARD_ADD, 5000, 6500, 8000),
        (TaskType.SECURITY_FIX, 20_000, 25_000, 30_000),  # 8-12K x 2.5
        (TaskType.AUTH_ADD, 15_000, 20_000, 25_000),
        (TaskType.REFACTOR, 10_000, 12_500, 15_000),
        (TaskType.TEST_ADD, 15_000, 20_000, 25_000),
        (TaskType.COMPLEX_REFACTOR, 25_000, 32_500, 40_000),
    ],
)
def test_base_estimates(task_type: TaskType, low: int, mid: int, high: int) -> None:
    assert base_estimate_tokens(task_type, point=0) == low
    assert base_estimate_tokens(task_type) == mid
    assert base_estimate_tokens(task_type, point=1) == high


def test_bulk_cleanup_is_per_file() -> None:
    assert base_estimate_tokens(TaskType.BULK_CLEANUP, file_count=200) == 110_000
    assert base_estimate_tokens(TaskType.BULK_CLEANUP) == 600  # at least one file: 550 rounded to 100
    assert base_estimate_tokens(TaskType.DOCS) is None
    assert TaskType.VERIFICATION not in BASE_ESTIMATES
    with pytest.raises(ValueError, match="point"):
        BASE_ESTIMATES[TaskType.STYLE_FIX].tokens(point=2)


# -- records ----------------------------------------------------------------------------------------------


def test_learning_record_has_seed_fields() -> None:
    record = learning_record(
        "UC-CLEAN-003",
        "Type guards for object injection across ~200 files",
        30_000,
        112_800,
        AT,
        task_type=TaskType.BULK_CLEANUP,
        analysis="Multi-file type guards severely underestimated",
    )
    assert record.model_dump(mode="json") == {
        "task_id": "UC-CLEAN-003",
        "task_type": "BULK_CLEANUP",
        "estimate_k": 30.0,
        "actual_k": 112.8,
        "variance_pct": 276.0,
        "characteristics": {"file_count": 200, "keywords": ["injection", "~200 files"]},
        "analysis": "Multi-file type guards severely underestimated",
        "captured_at": "2026-02-05T19:45:00Z",
    }
    assert record.action is VarianceAction.CRITICAL
    assert record.describe() == "UC-CLEAN-003: +276% variance — Multi-file type guards severely underestimated"


def test_record_classifies_when_no_type_given() -> None:
    record = learning_record("MS-SEC-002", "XSS sanitization", 8000, 12_000, AT)
    assert record.task_type is TaskType.SECURITY_FIX
    assert record.describe() == "MS-SEC-002: +50% variance"


def test_record_reads_seed_json_and_keeps_extra_fields() -> None:
    data = {
        "task_id": "UC-CLEAN-003",
        "task_type": "BULK_CLEANUP",
        "estimate_k": 30,
        "actual_k": 112.8,
        "variance_pct": 276,
        "characteristics": {"file_count": 200, "keywords": ["object injection", "type guards"]},
        "analysis": "Multi-file type guards severely underestimated",
        "captured_at": "2026-02-05T19:45:00Z",
        "reviewer": "ops",
    }
    record = LearningRecord.model_validate(data)
    assert record.model_dump(mode="json")["reviewer"] == "ops"
    with pytest.raises(ValidationError):
        LearningRecord.model_validate({**data, "captured_at": "2026-02-05T19:45:00"})  # no time zone


def test_capture_for_ticket() -> None:
    base = Ticket(id="MS-SEC-001", title="Add authentication", estimate_tokens=15_000, touch_set=("a.py", "b.py"))
    assert capture_for_ticket(base, AT) is None  # no usage yet
    assert capture_for_ticket(base.model_copy(update={"used_tokens": 18_000}), AT) is None  # +20 %: log only
    assert capture_for_ticket(base.model_copy(update={"used_tokens": 22_000}), AT) is None  # +46.7 %: flag only
    record = capture_for_ticket(base.model_copy(update={"used_tokens": 300}), AT, "already existed")
    assert record is not None
    assert record.variance_pct == -98.0
    assert record.task_type is TaskType.AUTH_ADD
    assert record.characteristics.file_count == 2
    typed = base.model_copy(update={"used_tokens": 40_000, "task_type": TaskType.FEATURE_ADD})
    captured = capture_for_ticket(typed, AT)
    assert captured is not None
    assert captured.task_type is TaskType.FEATURE_ADD
    assert capture_for_ticket(base.model_copy(update={"estimate_tokens": 0, "used_tokens": 5}), AT) is None


# -- retrospective -----------------------------------------------------------------------------------------


def test_summarise_variance_by_type() -> None:
    records = [
        learning_record("MS-SEC-001", "Add authentication", 15_000, 300, AT),
        learning_record("MS-SEC-002", "XSS sanitization", 8000, 12_000, AT),
        learning_record("MS-SEC-003", "SQL injection", 10_000, 30_000, AT),
        learning_record("MS-SEC-004", "Write release notes", 10_000, 10_000, AT),
    ]
    summary = summarise_variance(records)
    assert [s.task_type for s in summary] == [TaskType.SECURITY_FIX, TaskType.AUTH_ADD, None]
    security = summary[0]
    assert security.count == 2
    assert security.mean_variance_pct == 125.0
    assert security.median_variance_pct == 125.0
    assert security.mean_abs_variance_pct == 125.0
    assert (security.min_variance_pct, security.max_variance_pct) == (50.0, 200.0)
    assert security.critical_count == 1
    assert (security.total_estimate_k, security.total_actual_k) == (18.0, 42.0)
    assert security.calibration == 2.33
    auth = summary[1]
    assert auth.mean_variance_pct == -98.0
    assert auth.calibration == 0.02
    assert summarise_variance([]) == []


def test_summary_without_estimates_has_no_calibration() -> None:
    record = LearningRecord(
        task_id="MS-SEC-001", task_type=None, estimate_k=0, actual_k=1, variance_pct=0, captured_at=AT
    )
    assert summarise_variance([record])[0].calibration is None
