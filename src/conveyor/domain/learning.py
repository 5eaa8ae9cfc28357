"""Estimation learning (seed 001, Learning & Retrospective): variance, task types, learning records.

- Variance of a ticket: ``(actual - estimate) / estimate * 100``, rounded to 0.1 percentage point before the
  thresholds apply: |v| ≤ 30 LOG, 30 < |v| ≤ 50 FLAG, 50 < |v| ≤ 100 CAPTURE, |v| > 100 CRITICAL (captured
  too, and the task's classification deserves a look).
- Task types come from description keywords, matched case-insensitively on word boundaries. When several
  types match, the first in :data:`CLASSIFICATION_PRECEDENCE` wins: explicit intent ("add tests") first, then
  security (highest risk, and its estimate carries the x2.5 multiplier), then the specific mechanism (guard,
  decorator, validation) before the broad feature (auth), then scale (bulk cleanup across ~N files) before
  structure (refactor) before cosmetics (style). So "add auth decorator" is GUARD_ADD, as in seed 001 Step 3.
- Base estimates per type are data (:data:`BASE_ESTIMATES`) for bootstrap to build on: the seven types of the
  Learning table plus the rows of seed 001 Step 3 that map to a :class:`TaskType`.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from conveyor.domain.ticket import TaskType, Ticket

LOG_MAX_PCT = 30.0
FLAG_MAX_PCT = 50.0
CAPTURE_MAX_PCT = 100.0
_VARIANCE_DIGITS = 1


class VarianceAction(StrEnum):
    LOG = "log"  # acceptable
    FLAG = "flag"  # flag for review
    CAPTURE = "capture"  # append a learning record
    CRITICAL = "critical"  # capture, and review the task classification

    @property
    def captures(self) -> bool:
        return self in {VarianceAction.CAPTURE, VarianceAction.CRITICAL}


def variance_pct(estimate: float, actual: float) -> float:
    """``(actual - estimate) / estimate * 100``, rounded to one decimal. The estimate must be positive."""
    if estimate <= 0:
        raise ValueError(f"variance needs a positive estimate, got {estimate}")
    return round((actual - estimate) * 100 / estimate, _VARIANCE_DIGITS)


def variance_action(variance: float) -> VarianceAction:
    magnitude = abs(round(variance, _VARIANCE_DIGITS))
    if magnitude <= LOG_MAX_PCT:
        return VarianceAction.LOG
    if magnitude <= FLAG_MAX_PCT:
        return VarianceAction.FLAG
    if magnitude <= CAPTURE_MAX_PCT:
        return VarianceAction.CAPTURE
    return VarianceAction.CRITICAL


# -- classification -----------------------------------------------------------------------------------

CLASSIFICATION_PRECEDENCE: tuple[TaskType, ...] = (
    TaskType.TEST_ADD,
    TaskType.SECURITY_FIX,
    TaskType.GUARD_ADD,
    TaskType.AUTH_ADD,
    TaskType.BULK_CLEANUP,
    TaskType.REFACTOR,
    TaskType.STYLE_FIX,
)

# Seed 001's keywords, as regular expressions matched with word boundaries around them. A few inflections
# are spelled out ("linting", "sanitise") so that the boundary does not make the seed's keyword useless.
KEYWORDS: dict[TaskType, tuple[str, ...]] = {
    TaskType.STYLE_FIX: ("formatting", "prettier", "lint", "linting", "linter"),
    TaskType.BULK_CLEANUP: ("unused", "warnings", r"~\s*\d+\s+files"),
    TaskType.GUARD_ADD: (r"add(?:s|ing)?\s+(?:an?\s+)?guards?", "decorators?", "validation"),
    TaskType.SECURITY_FIX: (r"saniti[sz](?:e|es|ed|ing|ation)", "injection", "xss"),
    TaskType.AUTH_ADD: ("authentication", "auth"),
    TaskType.REFACTOR: ("refactor", "refactoring", "replace", "migrate", "migration"),
    TaskType.TEST_ADD: (r"add(?:s|ing)?\s+(?:unit\s+|integration\s+)?tests?", "coverage"),
}
_PATTERNS: dict[TaskType, tuple[re.Pattern[str], ...]] = {
    task_type: tuple(re.compile(rf"(?<![\w~]){kw}(?!\w)", re.IGNORECASE) for kw in keywords)
    for task_type, keywords in KEYWORDS.items()
}
_FILE_COUNT = re.compile(r"~?\s*(\d+)\s+files?\b", re.IGNORECASE)


def matched_keywords(description: str) -> list[str]:
    """Every keyword match in ``description`` (lower case, in order of appearance, without repeats)."""
    found: list[tuple[int, str]] = []
    for patterns in _PATTERNS.values():
        for pattern in patterns:
            found += [(m.start(), m.group(0).lower()) for m in pattern.finditer(description)]
    seen: dict[str, None] = {}
    for _, text in sorted(found):
        seen.setdefault(re.sub(r"\s+", " ", text), None)
    return list(seen)


def matching_types(description: str) -> list[TaskType]:
    """Every type whose keywords occur in ``description``, in precedence order."""
    return [t for t in CLASSIFICATION_PRECEDENCE if any(p.search(description) for p in _PATTERNS[t])]


def classify(description: str) -> TaskType | None:
    """The task type of ``description`` by seed 001's keyword table, or None when no keyword matches."""
    types = matching_types(description)
    return types[0] if types else None


def file_count_hint(description: str) -> int | None:
    """The file count a description mentions ("~200 files", "across 12 files"), the largest if several."""
    counts = [int(m.group(1)) for m in _FILE_COUNT.finditer(description)]
    return max(counts) if counts else None


# -- base estimates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseEstimate:
    """A range in thousands of tokens, times ``multiplier``; or ``per_file_k`` * file count."""

    low_k: float = 0.0
    high_k: float = 0.0
    multiplier: float = 1.0
    per_file_k: float | None = None

    def tokens(self, file_count: int | None = None, point: float = 0.5) -> int:
        """The estimate in tokens at ``point`` of the range (0 low, 0.5 middle, 1 high), rounded to 100.

        A per-file estimate assumes at least one file when the count is unknown.
        """
        if not 0 <= point <= 1:
            raise ValueError(f"point must be within 0..1, got {point}")
        if self.per_file_k is not None:
            k = self.per_file_k * max(1, file_count or 1)
        else:
            k = (self.low_k + (self.high_k - self.low_k) * point) * self.multiplier
        return round(k * 10) * 100


BASE_ESTIMATES: dict[TaskType, BaseEstimate] = {
    # seed 001, Learning & Retrospective
    TaskType.STYLE_FIX: BaseEstimate(3, 5),
    TaskType.BULK_CLEANUP: BaseEstimate(per_file_k=0.55),
    TaskType.GUARD_ADD: BaseEstimate(5, 8),
    TaskType.SECURITY_FIX: BaseEstimate(8, 12, multiplier=2.5),
    TaskType.AUTH_ADD: BaseEstimate(15, 25),
    TaskType.REFACTOR: BaseEstimate(10, 15),
    TaskType.TEST_ADD: BaseEstimate(15, 25),
    # seed 001, Step 3 (Estimate Token Usage)
    TaskType.SINGLE_LINE_FIX: BaseEstimate(3, 5),
    TaskType.ERROR_HANDLING: BaseEstimate(8, 12),
    TaskType.FEATURE_ADD: BaseEstimate(15, 25),
    TaskType.COMPLEX_REFACTOR: BaseEstimate(25, 40),
}


def base_estimate_tokens(task_type: TaskType, file_count: int | None = None, point: float = 0.5) -> int | None:
    """The base estimate of ``task_type`` in tokens, or None for types without one (DOCS, VERIFICATION)."""
    base = BASE_ESTIMATES.get(task_type)
    return base.tokens(file_count, point) if base is not None else None


# -- learning records -----------------------------------------------------------------------------------


class Characteristics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    file_count: int | None = Field(default=None, ge=0)
    keywords: tuple[str, ...] = ()


class LearningRecord(BaseModel):
    """One entry of docs/tasks/orchestrator-learnings.json, with seed 001's fields. Extra fields are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")

    task_id: str
    task_type: TaskType | None
    estimate_k: float = Field(ge=0)
    actual_k: float = Field(ge=0)
    variance_pct: float
    characteristics: Characteristics = Field(default_factory=Characteristics)
    analysis: str = ""
    captured_at: AwareDatetime

    @property
    def action(self) -> VarianceAction:
        return variance_action(self.variance_pct)

    def describe(self) -> str:
        """The compaction-summary line: ``MS-SEC-001: -98% variance — analysis``."""
        tail = f" — {self.analysis}" if self.analysis else ""
        return f"{self.task_id}: {self.variance_pct:+g}% variance{tail}"


def learning_record(
    task_id: str,
    description: str,
    estimate_tokens: int,
    actual_tokens: int,
    captured_at: datetime,
    *,
    task_type: TaskType | None = None,
    file_count: int | None = None,
    analysis: str = "",
) -> LearningRecord:
    """A learning record; task type and file count default to what the description says."""
    return LearningRecord(
        task_id=task_id,
        task_type=task_type if task_type is not None else classify(description),
        estimate_k=round(estimate_tokens / 1000, 1),
        actual_k=round(actual_tokens / 1000, 1),
        variance_pct=variance_pct(estimate_tokens, actual_tokens),
        characteristics=Characteristics(
            file_count=file_count if file_count is not None else file_count_hint(description),
            keywords=tuple(matched_keywords(description)),
        ),
        analysis=analysis,
        captured_at=captured_at,
    )


def capture_for_ticket(ticket: Ticket, captured_at: datetime, analysis: str = "") -> LearningRecord | None:
    """The record to append for a finished ticket, or None: no estimate or usage, or |variance| ≤ 50 %."""
    if not ticket.estimate_tokens or ticket.used_tokens is None:
        return None
    if not variance_action(variance_pct(ticket.estimate_tokens, ticket.used_tokens)).captures:
        return None
    text = f"{ticket.title} {ticket.description}".strip()
    return learning_record(
        ticket.id,
        text,
        ticket.estimate_tokens,
        ticket.used_tokens,
        captured_at,
        task_type=ticket.task_type,
        file_count=len(ticket.touch_set) or None,
        analysis=analysis,
    )


# -- retrospective -------------------------------------------------------------------------------------


class TypeVariance(BaseModel):
    """Variance of one task type over learning records. ``calibration`` = total actual / total estimate: the
    factor that would have made the type's estimates right in sum (a heuristic proposal for the next run)."""

    model_config = ConfigDict(frozen=True)

    task_type: TaskType | None
    count: int
    mean_variance_pct: float
    median_variance_pct: float
    mean_abs_variance_pct: float
    min_variance_pct: float
    max_variance_pct: float
    critical_count: int
    total_estimate_k: float
    total_actual_k: float
    calibration: float | None


def summarise_variance(records: Iterable[LearningRecord]) -> list[TypeVariance]:
    """Variance by task type, largest mean absolute variance first (ties by type name; unclassified last)."""
    groups: dict[TaskType | None, list[LearningRecord]] = {}
    for record in records:
        groups.setdefault(record.task_type, []).append(record)
    out = []
    for task_type, group in groups.items():
        variances = [r.variance_pct for r in group]
        estimate = sum(r.estimate_k for r in group)
        actual = sum(r.actual_k for r in group)
        out.append(
            TypeVariance(
                task_type=task_type,
                count=len(group),
                mean_variance_pct=round(statistics.fmean(variances), 1),
                median_variance_pct=round(statistics.median(variances), 1),
                mean_abs_variance_pct=round(statistics.fmean(abs(v) for v in variances), 1),
                min_variance_pct=min(variances),
                max_variance_pct=max(variances),
                critical_count=sum(1 for r in group if r.action is VarianceAction.CRITICAL),
                total_estimate_k=round(estimate, 1),
                total_actual_k=round(actual, 1),
                calibration=round(actual / estimate, 2) if estimate > 0 else None,
            )
        )
    return sorted(out, key=lambda s: (s.task_type is None, -s.mean_abs_variance_pct, str(s.task_type)))
