"""A review report folder (docs/reports/<name>/*.md) → its findings, deterministically (seed 001 Steps 1-2).

**Files.** Every ``*.md`` file directly in the folder (not hidden, not in subfolders), read in file-name order
(plain code-point order: ``00-executive-summary.md``, ``01-security-review.md``, ...). A file whose name
contains ``summary`` is an executive summary; one whose name contains ``security`` is a security review.
Fenced code blocks are ignored everywhere, except that they stay in a finding's description.

**Finding ids** are upper-case words joined by hyphens with a trailing number: ``SEC-API-1``, ``CQ-WEB-3``,
``TEST-001``, ``PERF-DB-2``, ``DOC-1``. In bullets and headings, ids of external references (``CWE-79``,
``CVE-...``, ``RFC-``, ``ISO-``, ``SHA-``, ``UTF-``, ``CAPEC-``, ``GHSA-``) are not findings.

**Where a finding is read** (each of these is one *place*):

- a row of a markdown table whose header has an id column (``ID``, ``Finding ID``, ``Ref``, anything ending in
  `` ID``; without one, the first column whose every cell starts with an id). Other columns are matched by
  name, loosely (case, bold, ``(s)`` and punctuation ignored), in any order: severity (``Severity``, ``Sev``,
  ``Priority``, ``Risk``, ``Level``, ``Rating``), title (``Title``, ``Finding``, ``Issue``, ``Summary``,
  ``Name``, ``Problem``), description (``Description``, ``Details``, ``Notes``), component (``Component``,
  ``Area``, ``Module``, ``Workspace``, ``Repo``, ``Package``, ``Service``, ``App``, ``Scope``), file (``File``,
  ``Files``, ``Path``, ``Location``, ``File:Line``, ``Affected files``), lines (``Lines``, ``Line``, ``Line
  range``), category (``Category``, ``Type``) and references (``CWE``, ``OWASP``). An id cell may carry the
  title (``SEC-1: title``) when there is no title column.
- a bullet (``-``, ``*``, ``+``, ``1.``; a ``[ ]`` checkbox is skipped) that starts with an id, bold,
  backticked or linked, or followed by ``:``, a dash, ``(`` or ``[``. A severity tag may precede the id
  (``[High]``, ``(High)``, ``**High**``), follow it (``(Critical)``, ``— High —``) or end the line; a location
  may end the line after a dash, ``in`` or ``at``, or in parentheses; the first backticked path elsewhere is
  the file. The bullet's more-indented lines below it are its body.
- an ATX heading (``#`` to ``######``) that starts with an id (after optional numbering ``1.`` or the word
  ``Finding``), with the same tags and locations as bullets. Its body runs to the next heading of the same
  or a higher level, or to the next finding heading.

In a body, field lines ``**Severity:** Critical``, ``- **Component**: api``, ``File: path:45``, ``Lines:
45-67``, ``Title:``, ``Category:``/``Type:``, ``CWE:`` (also as a two-column ``| Severity | High |`` table) give
the fields; every other line (and the Category/CWE lines) is the description.

**Severity**: Critical, High, Medium (or Moderate), Low, Info (or Informational), any case, read from the
first word of the value; P0-P3 are critical, high, medium, low. A finding without its own severity takes the
one of the section heading it stands under when that heading names exactly one severity (``## High``,
``### Critical Issues (2)``, ``## 🔴 High Severity Findings``). An unknown severity word is an error.

**Locations**: ``path/file.ts:45-67``, ``file.ts#L45-L67``, ``file.ts L10-20``, ``file.ts (lines 10-20)`` or a
bare path; ``L`` prefixes and dashes are normalised (``L10-L20`` → ``10-20``), paths are kept as written.
Several locations in one value (separated by ``;``, newlines or commas): the first is the file, the others are
listed in the description (``Other locations: ...``). A ``Lines`` field wins over a ``:45`` suffix when the
suffix is the start of its range; otherwise the two conflict.

**Security**: the id starts with ``SEC``, or a place is in a security review file, or a place has a
Category/Type containing "security" or "vulnerab", a CWE/OWASP field or column, or a ``CWE-n``/``CVE-y-n``
reference in its title or description.

**Merging.** Every finding id becomes exactly one :class:`Finding`. Places rank: headings over table rows and
bullets, and anything outside the executive summary over anything in it; then a place that states a severity
of its own over one that does not (a cross-reference such as ``- CQ-3 (same root cause)``); then the earlier
place (file name, then line). The best-ranked place gives source, line, title and description (the next ones
fill what it lacks) and the spelling of the other fields. Severity, component (case-insensitively), file and
lines must agree wherever stated: a difference is an error naming both places. Security is true when any place
says so.
Findings are ordered by their source file name, then line.

**Executive summary counts** (summary files only, the first block in file-name then line order): a table with a
severity and a count column (``| Severity | Count |``; rows such as ``Total`` are skipped), a table with one
column per severity (its ``Total`` row, else its only row, else the sum of its rows), or consecutive lines such
as ``Critical: 2``, ``- **High:** 5``, ``🔴 Medium findings — 3`` (blank lines allowed between them). They go to
:attr:`ParsedReport.summary` unchecked; :meth:`ParsedReport.summary_mismatches` compares them.

**Errors** are collected and raised together as one :class:`InputError`, each naming file and 1-based line:
missing folder or no ``.md`` file, unreadable file, a findings-table row with the wrong number of cells or a
malformed or missing id, an id-like token (``SEC-API``, ``sec-api-1``, ``SEC_API_1``) where a finding with a
severity stands, an unknown severity, a finding without severity, a finding without a title (when no
description gives one either), conflicting fields, conflicting counts in one summary block.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from conveyor.adapters.review_report_scan import scan_file
from conveyor.adapters.review_report_sighting import Sighting, agree
from conveyor.adapters.review_report_text import is_security_id, same_path
from conveyor.adapters.structured_text import read_text
from conveyor.domain.errors import InputError, Problem
from conveyor.domain.findings import Finding, ParsedReport, SeverityCounts

__all__ = ["REPORTS_DIR", "parse_report", "parse_report_texts"]

REPORTS_DIR = "docs/reports"
_TITLE_FROM_DESCRIPTION = 120


def parse_report(repo: Path, folder: str) -> ParsedReport:
    """Parse the report folder ``folder``: a path relative to ``repo`` (``docs/reports/q1``) or, when that is not
    a folder, a name under docs/reports/ (``q1``). Raises :class:`InputError` listing every problem."""
    directory, display = _resolve(repo, folder)
    try:
        entries = list(directory.iterdir())
    except OSError as exc:
        raise InputError.single(display, None, f"cannot read the report folder: {exc.strerror or exc}") from None
    files = sorted(
        (p for p in entries if p.suffix.lower() == ".md" and not p.name.startswith(".") and not p.is_dir()),
        key=lambda p: p.name,
    )
    if not files:
        raise InputError.single(display, None, "the report folder holds no .md file")
    problems: list[Problem] = []
    texts: list[tuple[str, str]] = []
    for path in files:
        shown = f"{display}/{path.name}"
        try:
            texts.append((shown, read_text(path, shown)))
        except InputError as exc:
            problems.extend(exc.problems)
        except OSError as exc:
            problems.append(Problem(shown, None, f"cannot read the file: {exc.strerror or exc}"))
    try:
        report = parse_report_texts(directory.name, texts)
    except InputError as exc:
        raise InputError(_sorted(problems + exc.problems)) from None
    if problems:
        raise InputError(_sorted(problems))
    return report


def parse_report_texts(name: str, files: Sequence[tuple[str, str]]) -> ParsedReport:
    """The pure part of :func:`parse_report`: ``files`` are (path relative to the repository, text) pairs."""
    problems: list[Problem] = []
    sightings: list[Sighting] = []
    summary: SeverityCounts | None = None
    for display, text in sorted(files, key=lambda f: PurePosixPath(f[0]).name):
        stem = PurePosixPath(display).stem.lower()
        scan = scan_file(display, text, summary="summary" in stem, security_file="security" in stem)
        problems.extend(scan.problems)
        sightings.extend(scan.sightings)
        if summary is None and scan.counts is not None:
            summary = SeverityCounts(counts=scan.counts.counts, source=display, line=scan.counts.line)
    by_id: dict[str, list[Sighting]] = {}
    for sighting in sightings:
        by_id.setdefault(sighting.id, []).append(sighting)
    findings = [f for places in by_id.values() if (f := _merge(places, problems)) is not None]
    if problems:
        raise InputError(_sorted(problems))
    findings.sort(key=lambda f: (PurePosixPath(f.source).name, f.line, f.id))
    return ParsedReport(name=name, findings=tuple(findings), summary=summary)


def _resolve(repo: Path, folder: str) -> tuple[Path, str]:
    candidate = repo / folder
    if not candidate.is_dir() and "/" not in folder.strip("/") and (repo / REPORTS_DIR / folder).is_dir():
        candidate = repo / REPORTS_DIR / folder
    try:
        display = candidate.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        display = candidate.as_posix()
    if not candidate.is_dir():
        raise InputError.single(
            folder, None, f"report folder not found (looked for {folder} and {REPORTS_DIR}/{folder})"
        )
    return candidate, display


def _merge(places: list[Sighting], problems: list[Problem]) -> Finding | None:
    """One finding from every place that names its id (best-ranked first); disagreements are problems."""
    ordered = sorted(places, key=_preference)
    best = ordered[0]
    finding_id = best.id
    severity = agree(finding_id, "severity", [s.severity for s in ordered], lambda a, b: a == b, problems)
    component = agree(
        finding_id, "component", [s.component for s in ordered], lambda a, b: a.casefold() == b.casefold(), problems
    )
    file = agree(finding_id, "file", [s.file for s in ordered], same_path, problems)
    lines = agree(finding_id, "lines", [s.lines for s in ordered], lambda a, b: a == b, problems)
    title = next((s.title for s in ordered if s.title), "")
    description = next((s.description for s in ordered if s.description), "")
    if not title and description:
        title = description.strip().splitlines()[0].lstrip("#>*-+ ").replace("**", "").strip()
        if len(title) > _TITLE_FROM_DESCRIPTION:
            title = title[: _TITLE_FROM_DESCRIPTION - 3].rstrip() + "..."
    if severity is None and not any(s.unknown_severity for s in ordered):
        problems.append(
            Problem(
                best.source,
                best.line,
                f"{finding_id}: the finding has no severity (give a Severity column, a (High) tag, a "
                "**Severity:** line, or list it under a severity heading)",
            )
        )
    if not title:
        problems.append(Problem(best.source, best.line, f"{finding_id}: the finding has no title"))
    if severity is None or not title:
        return None
    return Finding(
        id=finding_id,
        severity=severity.value,
        title=title,
        description=description,
        component=component.value if component else None,
        file=file.value if file else None,
        lines=lines.value if lines else None,
        security=is_security_id(finding_id) or any(s.security for s in ordered),
        source=best.source,
        line=best.line,
    )


def _preference(place: Sighting) -> tuple[int, bool, str, int]:
    """Best first: higher rank, then a place that states its own severity (not a bare cross-reference), then
    the earlier place."""
    own_severity = place.severity is not None and not place.severity.note
    return (-place.rank, not own_severity, PurePosixPath(place.source).name, place.line)


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.path, p.line or 0, p.message))
