"""One place that names a finding id (a sighting), built from the statements found there.

Rules are documented in :mod:`conveyor.adapters.review_report`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from conveyor.adapters.review_report_text import (
    clean,
    is_blank,
    normalise_lines,
    parse_location,
    plain,
    same_path,
    severity_of,
    split_locations,
)
from conveyor.domain.errors import Problem
from conveyor.domain.ticket import Severity

T = TypeVar("T")

_SECURITY_TEXT = re.compile(r"\b(?:CWE-\d+|CVE-\d{4}-\d+)\b")
_SECURITY_CATEGORY = re.compile(r"secur|vulnerab", re.IGNORECASE)


@dataclass(frozen=True)
class Stated(Generic[T]):
    """A value and the place that states it; ``note`` qualifies it (e.g. taken from a section heading)."""

    value: T
    source: str
    line: int
    note: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}{self.note}"


@dataclass(frozen=True)
class Statement:
    """``role`` (severity, component, file, lines, title, category, reference) stated as ``value`` at ``line``."""

    role: str
    value: str
    line: int  # 1-based


@dataclass
class Sighting:
    id: str
    source: str
    line: int
    rank: int
    title: str = ""
    description: str = ""
    severity: Stated[Severity] | None = None
    component: Stated[str] | None = None
    file: Stated[str] | None = None
    lines: Stated[str] | None = None
    security: bool = False
    unknown_severity: bool = False  # a severity was stated but not understood (already a problem)


def agree(
    finding_id: str,
    role: str,
    values: Sequence[Stated[T] | None],
    same: Callable[[T, T], bool],
    problems: list[Problem],
) -> Stated[T] | None:
    """The first value; every different one is a problem naming both places (at the later one)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    first = present[0]
    for other in present[1:]:
        if not same(first.value, other.value):
            a, b = sorted((first, other), key=lambda s: (s.source.rsplit("/", 1)[-1], s.line))
            message = f"{finding_id}: {role} {b.value} here{b.note} conflicts with {a.value} at {a.where}"
            problems.append(Problem(b.source, b.line, message))
    return first


def _equal(a: str, b: str) -> bool:
    return a == b


def _same_text(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def build_sighting(
    finding_id: str,
    source: str,
    line: int,
    *,
    rank: int,
    title: str,
    description: list[str],
    statements: list[Statement],
    context: tuple[Severity, int] | None,
    security_file: bool,
    problems: list[Problem],
) -> Sighting:
    """The sighting at ``source:line``; ``context`` is the severity (and line) of the enclosing section heading."""
    found = Sighting(finding_id, source, line, rank, title=plain(title))
    if not found.title:
        found.title = next((plain(s.value) for s in statements if s.role == "title" and not is_blank(s.value)), "")
    found.severity = _severity(found, statements, context, problems)
    components = [Stated(clean(s.value), source, s.line) for s in statements if s.role == "component"]
    found.component = agree(finding_id, "component", components, _same_text, problems)
    files: list[Stated[str]] = []
    suffixes: list[Stated[str]] = []
    extra: list[str] = []
    for statement in (s for s in statements if s.role == "file"):
        for k, part in enumerate(split_locations(statement.value)):
            location = parse_location(part)
            if location is None:
                continue
            if k > 0:
                extra.append(part)
                continue
            files.append(Stated(location.file, source, statement.line))
            if location.lines:
                suffixes.append(Stated(location.lines, source, statement.line))
    found.file = agree(finding_id, "file", files, same_path, problems)
    stated_lines = [
        Stated(value, source, s.line)
        for s in statements
        if s.role == "lines" and (value := normalise_lines(s.value)) is not None
    ]
    found.lines = agree(finding_id, "lines", stated_lines, _equal, problems)
    suffix = agree(finding_id, "lines", suffixes, _equal, problems)
    if found.lines is None:
        found.lines = suffix
    elif suffix is not None and suffix.value not in (found.lines.value, found.lines.value.split("-")[0]):
        agree(finding_id, "lines", [found.lines, suffix], _equal, problems)
    text = "\n".join(_tidy(description))
    if extra:
        text = (text + "\n\n" if text else "") + "Other locations: " + ", ".join(extra)
    found.description = text
    found.security = (
        security_file
        or any(s.role == "reference" for s in statements)
        or any(s.role == "category" and _SECURITY_CATEGORY.search(s.value) for s in statements)
        or _SECURITY_TEXT.search(f"{found.title}\n{text}") is not None
    )
    return found


def _severity(
    found: Sighting, statements: list[Statement], context: tuple[Severity, int] | None, problems: list[Problem]
) -> Stated[Severity] | None:
    stated: list[Stated[Severity]] = []
    for statement in (s for s in statements if s.role == "severity" and not is_blank(s.value)):
        severity = severity_of(statement.value)
        if severity is None:
            found.unknown_severity = True
            problems.append(
                Problem(
                    found.source,
                    statement.line,
                    f"{found.id}: unknown severity {clean(statement.value)!r} "
                    "(expected Critical, High, Medium, Low, Info or P0-P3)",
                )
            )
            continue
        stated.append(Stated(severity, found.source, statement.line))
    chosen = agree(found.id, "severity", stated, lambda a, b: a == b, problems)
    if chosen is None and context is not None:
        return Stated(context[0], found.source, found.line, f" (from the section heading at line {context[1]})")
    return chosen


def _tidy(lines: list[str]) -> list[str]:
    """Trailing spaces, leading and trailing blank lines and runs of blank lines removed."""
    out: list[str] = []
    for line in (line.rstrip() for line in lines):
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return out
