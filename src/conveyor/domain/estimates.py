"""Token estimates of a ticket (seed 001 Step 3 and the task types of Learning & Retrospective).

The estimate of a finding or a free text is built in this order; :attr:`Estimate.explanation` spells out
every step that applied:

1. **Task type.** :func:`conveyor.domain.learning.classify` (the Learning table's keywords) first; when it
   finds nothing, the remaining rows of Step 3 by their own keywords (:data:`STEP3_KEYWORDS`); a ``refactor``
   that says "architectural" or "multi-file" is a COMPLEX_REFACTOR. A finding's *area* (its id's first word,
   or its ``security`` mark) decides for test and documentation findings (the work is tests or docs whatever
   the words say) and is the fallback for the others: security → SECURITY_FIX, performance → REFACTOR
   (Step 3 files "fix memory leak" under refactor). Nothing at all → no type, and budget's default estimate
   (10K, the middle row of Step 3).
2. **Base** by type at the middle of its range (:data:`POINT`): ``BASE_ESTIMATES`` of the learning module,
   plus DOCS and VERIFICATION (3-5K each, Conveyor's choice: the seed gives them no row). BULK_CLEANUP is
   ``file_count x 0.55K``.
3. **Security x2.5 is applied once**: it is part of SECURITY_FIX's base (seed 001 writes it as
   ``8-12K x 2.5``), so it multiplies the base range and nothing else; the adjustments below are added after
   it, and no second multiplier is applied for a security finding.
4. **Adjustments:** +5K per file beyond the first (not for BULK_CLEANUP, whose base already counts files);
   +7.5K when tests are needed (the middle of +5-10K; not for TEST_ADD, DOCS or VERIFICATION, which are not
   code fixes); +2.5K when docs are needed (the middle of +2-3K; not for DOCS or VERIFICATION).
5. **Learnings:** when the learning records (docs/tasks/orchestrator-learnings.json) hold the same task type,
   the total is multiplied by that type's calibration (total actual / total estimate of its records, from
   :func:`conveyor.domain.learning.summarise_variance`), clamped to :data:`CALIBRATION_MIN`-
   :data:`CALIBRATION_MAX`: the records are the captured outliers (|variance| > 50 %), so a single one must
   not move an estimate without bound.

Every figure is rounded to 100 tokens. A complexity (1-10, hence the model tier) comes with the estimate:
by type (:data:`TYPE_COMPLEXITY`), one more for more than two files, and at least 4 (never the easy tier) for
security work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.budget import DEFAULT_MISSING_ESTIMATE_TOKENS
from conveyor.domain.findings import Finding
from conveyor.domain.learning import (
    BASE_ESTIMATES,
    BaseEstimate,
    LearningRecord,
    classify,
    file_count_hint,
    summarise_variance,
)
from conveyor.domain.ticket import TaskType

POINT = 0.5  # where in a seed range an estimate sits: the middle
EXTRA_FILE_TOKENS = 5_000  # Step 3: +5K per additional file
TESTS_TOKENS = 7_500  # Step 3: +5-10K if tests are needed; the middle
DOCS_TOKENS = 2_500  # Step 3: +2-3K if docs are needed; the middle
UNCLASSIFIED_TOKENS = DEFAULT_MISSING_ESTIMATE_TOKENS  # no type: Step 3's middle row (10K)
UNCLASSIFIED_COMPLEXITY = 5
CALIBRATION_MIN = 0.5
CALIBRATION_MAX = 3.0
SECURITY_MIN_COMPLEXITY = 4  # security work never runs on the easy tier

# Types without a seed row. Conveyor's choice: the size of a single-line fix.
EXTRA_BASE_ESTIMATES: dict[TaskType, BaseEstimate] = {
    TaskType.DOCS: BaseEstimate(3, 5),
    TaskType.VERIFICATION: BaseEstimate(3, 5),
}

# Rows of seed 001 Step 3 that the Learning table's keywords do not cover, by their examples.
STEP3_KEYWORDS: dict[TaskType, tuple[str, ...]] = {
    TaskType.ERROR_HANDLING: (
        r"error[\s-]handling",
        r"try\s*/\s*catch",
        r"try\s*/\s*except",
        "exceptions?",
        r"error\s+propagation",
        "unhandled",
        r"swallow(?:s|ed|ing)?",
    ),
    TaskType.SINGLE_LINE_FIX: (
        "typo",
        r"wrong\s+operator",
        r"null\s+check",
        r"none\s+check",
        r"off[\s-]by[\s-]one",
        r"(?:single|one)[\s-]line",
    ),
    TaskType.FEATURE_ADD: (
        r"new\s+(?:service|method|component|endpoint|feature|command|page)",
        "implement",
        r"add\s+support",
    ),
}
_COMPLEX = re.compile(r"(?<!\w)(?:architectur\w*|multi[\s-]file|cross[\s-]module|redesign\w*)(?!\w)", re.IGNORECASE)
_STEP3_PATTERNS: dict[TaskType, tuple[re.Pattern[str], ...]] = {
    t: tuple(re.compile(rf"(?<!\w){kw}(?!\w)", re.IGNORECASE) for kw in kws) for t, kws in STEP3_KEYWORDS.items()
}

TYPE_COMPLEXITY: dict[TaskType, int] = {
    TaskType.STYLE_FIX: 2,
    TaskType.SINGLE_LINE_FIX: 2,
    TaskType.DOCS: 2,
    TaskType.VERIFICATION: 2,
    TaskType.BULK_CLEANUP: 3,
    TaskType.GUARD_ADD: 4,
    TaskType.ERROR_HANDLING: 4,
    TaskType.REFACTOR: 5,
    TaskType.TEST_ADD: 5,
    TaskType.FEATURE_ADD: 6,
    TaskType.AUTH_ADD: 7,
    TaskType.SECURITY_FIX: 7,
    TaskType.COMPLEX_REFACTOR: 8,
}


class FindingArea(StrEnum):
    """What a finding is about, from its id's first word (``SEC-API-1`` → security) or its security mark."""

    SECURITY = "security"
    PERFORMANCE = "performance"
    TEST = "test"
    DOCS = "docs"
    CODE = "code"


_AREA_WORDS: dict[str, FindingArea] = {
    "SEC": FindingArea.SECURITY,
    "SECURITY": FindingArea.SECURITY,
    "VULN": FindingArea.SECURITY,
    "PERF": FindingArea.PERFORMANCE,
    "PERFORMANCE": FindingArea.PERFORMANCE,
    "TEST": FindingArea.TEST,
    "TESTS": FindingArea.TEST,
    "COV": FindingArea.TEST,
    "COVERAGE": FindingArea.TEST,
    "DOC": FindingArea.DOCS,
    "DOCS": FindingArea.DOCS,
}


def finding_area(finding: Finding) -> FindingArea:
    """Security when the finding is marked so or its id starts with SEC; else by the id's first word."""
    word = re.split(r"[^A-Za-z]", finding.id.strip(), maxsplit=1)[0].upper()
    if finding.security:
        return FindingArea.SECURITY
    return _AREA_WORDS.get(word, FindingArea.CODE)


def is_security(finding: Finding) -> bool:
    return finding_area(finding) is FindingArea.SECURITY


_AREA_TYPES: dict[FindingArea, TaskType] = {
    FindingArea.SECURITY: TaskType.SECURITY_FIX,
    FindingArea.PERFORMANCE: TaskType.REFACTOR,
    FindingArea.TEST: TaskType.TEST_ADD,
    FindingArea.DOCS: TaskType.DOCS,
}


def task_type_of(text: str, area: FindingArea | None = None) -> tuple[TaskType | None, str]:
    """The task type of ``text`` (and of a finding's ``area``) and why, as rule 1 of the module says."""
    if area in (FindingArea.TEST, FindingArea.DOCS):
        return _AREA_TYPES[area], f"{area.value} finding"
    found = classify(text)
    if found is TaskType.REFACTOR and _COMPLEX.search(text):
        return TaskType.COMPLEX_REFACTOR, "refactor keyword, architectural or multi-file"
    if found is not None:
        return found, "keyword"
    for task_type, patterns in _STEP3_PATTERNS.items():
        if any(p.search(text) for p in patterns):
            return task_type, "Step 3 keyword"
    if area in _AREA_TYPES:
        return _AREA_TYPES[area], f"no keyword, {area.value} finding"
    return None, "no keyword"


def base_tokens(task_type: TaskType | None, file_count: int = 1) -> int:
    """The base estimate of a type at :data:`POINT` of its range (:data:`UNCLASSIFIED_TOKENS` without a type)."""
    if task_type is None:
        return UNCLASSIFIED_TOKENS
    base = BASE_ESTIMATES.get(task_type) or EXTRA_BASE_ESTIMATES[task_type]
    return base.tokens(file_count, POINT)


def _base_text(task_type: TaskType | None, file_count: int) -> str:
    if task_type is None:
        return f"default {_k(UNCLASSIFIED_TOKENS)}"
    base = BASE_ESTIMATES.get(task_type) or EXTRA_BASE_ESTIMATES[task_type]
    if base.per_file_k is not None:
        return f"{file_count} file(s) x {base.per_file_k:g}K"
    times = f" x{base.multiplier:g}" if base.multiplier != 1 else ""
    return f"{base.low_k:g}-{base.high_k:g}K at the middle{times}"


@dataclass(frozen=True)
class Calibration:
    """A task type's correction from learning records: ``factor`` is ``raw`` clamped to the bounds."""

    task_type: TaskType | None
    raw: float
    factor: float
    records: int


def calibration_for(task_type: TaskType | None, learnings: Iterable[LearningRecord]) -> Calibration | None:
    """The calibration of ``task_type`` over ``learnings``, or None when they hold no usable record of it."""
    for summary in summarise_variance(r for r in learnings if r.task_type == task_type):
        if summary.calibration is None:
            return None
        factor = min(CALIBRATION_MAX, max(CALIBRATION_MIN, summary.calibration))
        return Calibration(task_type, summary.calibration, factor, summary.count)
    return None


def calibrate(tokens: int, calibration: Calibration | None) -> int:
    if calibration is None:
        return tokens
    return _round100(tokens * calibration.factor)


def complexity_for(task_type: TaskType | None, *, file_count: int = 1, security: bool = False) -> int:
    value = TYPE_COMPLEXITY.get(task_type, UNCLASSIFIED_COMPLEXITY) if task_type else UNCLASSIFIED_COMPLEXITY
    if file_count > 2:
        value += 1
    if security or task_type in (TaskType.SECURITY_FIX, TaskType.AUTH_ADD):
        value = max(value, SECURITY_MIN_COMPLEXITY)
    return min(10, value)


class Estimate(BaseModel):
    """A ticket's estimate in tokens, its task type, a complexity (model tier) and how it was reached."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: int = Field(ge=0)
    task_type: TaskType | None
    explanation: str
    complexity: int = Field(ge=1, le=10)
    calibration: float = Field(1.0, description="the learnings factor applied (1.0: none)")


def estimate_finding(
    finding_or_text: Finding | str,
    *,
    file_count: int | None = None,
    needs_tests: bool = False,
    needs_docs: bool = False,
    learnings: Iterable[LearningRecord] = (),
) -> Estimate:
    """The estimate of a finding or a ticket text, by the rules of this module.

    ``file_count`` defaults to the count the text mentions ("~200 files"), else 1.
    """
    if isinstance(finding_or_text, Finding):
        text = f"{finding_or_text.title} {finding_or_text.description}".strip()
        area: FindingArea | None = finding_area(finding_or_text)
    else:
        text, area = finding_or_text, None
    files = max(1, file_count if file_count is not None else (file_count_hint(text) or 1))
    task_type, why = task_type_of(text, area)
    return estimate_for_type(
        task_type,
        file_count=files,
        needs_tests=needs_tests,
        needs_docs=needs_docs,
        learnings=learnings,
        security=area is FindingArea.SECURITY,
        why=why,
    )


def estimate_for_type(
    task_type: TaskType | None,
    *,
    file_count: int = 1,
    needs_tests: bool = False,
    needs_docs: bool = False,
    learnings: Iterable[LearningRecord] = (),
    security: bool = False,
    why: str = "given",
) -> Estimate:
    """Rules 2-5 of the module for a known task type (rule 1 is :func:`task_type_of`)."""
    files = max(1, file_count)
    parts = [f"{task_type.value if task_type else 'unclassified'} ({why})"]
    total = base_tokens(task_type, files)
    parts.append(f"base {_base_text(task_type, files)} = {_k(total)}")
    if files > 1 and task_type is not TaskType.BULK_CLEANUP:
        extra = (files - 1) * EXTRA_FILE_TOKENS
        total += extra
        parts.append(f"+{_k(extra)} for {files - 1} extra file(s)")
    if needs_tests and task_type not in (TaskType.TEST_ADD, TaskType.DOCS, TaskType.VERIFICATION):
        total += TESTS_TOKENS
        parts.append(f"+{_k(TESTS_TOKENS)} tests")
    if needs_docs and task_type not in (TaskType.DOCS, TaskType.VERIFICATION):
        total += DOCS_TOKENS
        parts.append(f"+{_k(DOCS_TOKENS)} docs")
    calibration = calibration_for(task_type, learnings)
    if calibration is not None:
        total = calibrate(total, calibration)
        clamped = " (clamped)" if calibration.factor != calibration.raw else ""
        parts.append(f"x{calibration.factor:g} learnings calibration of {calibration.records} record(s){clamped}")
    return Estimate(
        tokens=total,
        task_type=task_type,
        explanation="; ".join(parts) + f" → {_k(total)}",
        complexity=complexity_for(task_type, file_count=files, security=security),
        calibration=calibration.factor if calibration is not None else 1.0,
    )


def _round100(value: float) -> int:
    """To the nearest 100 tokens, halves up (6,250 → 6,300)."""
    return math.floor(value / 100 + 0.5) * 100


def _k(tokens: int) -> str:
    return f"{tokens / 1000:g}K"
