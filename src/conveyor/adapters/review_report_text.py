"""Words of a review report: finding ids, severities, column and field names, file locations.

Pure text helpers for :mod:`conveyor.adapters.review_report`; the rules are documented there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.adapters.markdown_table import Table, find_tables, split_lines
from conveyor.domain.ticket import Severity

# -- finding ids -----------------------------------------------------------------------------------------

FINDING_ID = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z][A-Z0-9]*)*-\d+")
# An upper-case first word, then hyphen/underscore/dot-joined parts (the last may mix digits and letters),
# or letters glued to digits: what a mistyped finding id looks like (SEC-API, SEC_API_1, SEC-API-1a, SEC1).
_ID_LIKE = re.compile(
    r"[A-Z][A-Z0-9]*(?:[-_.][A-Z0-9]+)*[-_.][A-Z0-9]*\d[A-Za-z0-9]*|[A-Z][A-Z0-9]*(?:[-_.][A-Z0-9]+)+|[A-Z]{2,}\d+"
)
# External references that look like ids and start bullets in reference lists; never finding ids there.
REFERENCE_PREFIXES = frozenset({"CWE", "CVE", "CAPEC", "GHSA", "RFC", "ISO", "SHA", "UTF"})


def is_finding_id(token: str) -> bool:
    return FINDING_ID.fullmatch(token) is not None


def is_id_like(token: str) -> bool:
    """A token that is not a finding id but was evidently meant as one (wrong case, no number, extra parts)."""
    return not is_finding_id(token) and (is_finding_id(token.upper()) or _ID_LIKE.fullmatch(token) is not None)


def is_reference(token: str) -> bool:
    return token.split("-", 1)[0] in REFERENCE_PREFIXES


def is_security_id(finding_id: str) -> bool:
    return finding_id.startswith("SEC")


# -- severities ------------------------------------------------------------------------------------------

SEVERITY_WORD = r"(?:critical|high|medium|moderate|low|informational|info|p[0-3])"
_SEVERITIES = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "low": Severity.LOW,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "p0": Severity.CRITICAL,
    "p1": Severity.HIGH,
    "p2": Severity.MEDIUM,
    "p3": Severity.LOW,
}
_FIRST_WORD = re.compile(r"[^A-Za-z0-9]*([A-Za-z]+[0-9]?)\b")


def severity_of(text: str) -> Severity | None:
    """The severity a value names by its first word (``Critical (CVSS 9.8)``, ``🔴 High``, ``P1``), or None."""
    match = _FIRST_WORD.match(clean(text))
    return _SEVERITIES.get(match[1].lower()) if match else None


def severity_word(word: str) -> Severity | None:
    return _SEVERITIES.get(word.lower())


# -- cell and field values -------------------------------------------------------------------------------

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_BLANK_VALUES = frozenset({"", "-", "--", "—", "\u2013", "n/a", "na", "none", "tbd", "?"})


def clean(text: str) -> str:
    """Markdown decoration removed: links become their text, bold markers and backticks go."""
    return _LINK.sub(r"\1", text).replace("**", "").replace("`", "").strip()


def plain(text: str) -> str:
    """A title as text: links become their text, bold markers go, backticks stay."""
    return _LINK.sub(r"\1", text).replace("**", "").strip()


def is_blank(text: str) -> bool:
    return clean(text).lower() in _BLANK_VALUES


def normalise_name(text: str) -> str:
    """A column header or field name compared loosely: ``**File(s)**`` → ``file``, ``File:Line`` → ``file line``."""
    lowered = clean(text).lower().replace("(s)", "")
    return re.sub(r"[^a-z0-9#]+", " ", lowered).strip()


ROLE_NAMES: dict[str, frozenset[str]] = {
    "id": frozenset({"id", "ref", "reference", "key"}),
    "severity": frozenset({"severity", "sev", "priority", "risk", "risk level", "severity level", "level", "rating"}),
    "title": frozenset({"title", "finding", "issue", "summary", "name", "problem", "finding title", "issue title"}),
    "description": frozenset({"description", "details", "detail", "notes", "explanation"}),
    "component": frozenset(
        {"component", "area", "module", "workspace", "repo", "repository", "package", "service", "app", "scope"}
    ),
    "file": frozenset(
        {"file", "files", "path", "paths", "location", "locations", "file path", "affected file", "affected files"}
        | {"file line", "file lines", "file location", "source file"}
    ),
    "lines": frozenset({"lines", "line", "line numbers", "line number", "line range"}),
    "category": frozenset({"category", "type", "kind", "class"}),
    "reference": frozenset({"cwe", "cve", "owasp"}),
}
COUNT_NAMES = frozenset({"count", "counts", "number", "findings", "issues", "total", "#", "no", "n", "qty", "amount"})


def role_of(name: str) -> str | None:
    """The role a column header or field name plays; ``... id`` is an id column."""
    key = normalise_name(name)
    for role, names in ROLE_NAMES.items():
        if key in names:
            return role
    return "id" if key.endswith(" id") else None


# -- locations -------------------------------------------------------------------------------------------

_RANGE = r"L?\d+(?:\s*[-\u2013—]\s*L?\d+)?"
_LOCATION = re.compile(
    rf"(?P<file>[^\s()]+?)"
    rf"(?:(?::|#L)(?P<a>{_RANGE})(?::\d+)?|\s*,?\s+(?:L|lines?\s*)(?P<b>{_RANGE})|\s*\((?:L|lines?\s*)?(?P<c>{_RANGE})\))?",
    re.IGNORECASE,
)
_LINES = re.compile(_RANGE, re.IGNORECASE)
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")
_LOCATION_SPLIT = re.compile(r"\s*(?:[;\n]|,\s*(?=[^\s,]*[/.][^\s,]*[A-Za-z]))\s*")


@dataclass(frozen=True)
class Location:
    file: str
    lines: str | None


def normalise_lines(text: str) -> str | None:
    """``L10-L20``, ``10 \u2013 20`` (en dash) → ``10-20``; other text is kept as written; blank → None."""
    value = clean(text)
    if is_blank(value):
        return None
    if _LINES.fullmatch(value):
        return re.sub(r"\s*[-\u2013—]\s*", "-", value.replace("L", "").replace("l", ""))
    return value


def looks_like_path(text: str) -> bool:
    return "://" not in text and ("/" in text or _EXTENSION.search(text) is not None) and not text[0].isdigit()


def parse_location(text: str, *, strict: bool = False) -> Location | None:
    """``path/file.ts:45-67``, ``file.ts#L45-L67``, ``file.ts L10-20``, ``file.ts (lines 3-4)`` or a bare path.

    ``strict`` (free text): the path must look like one (a slash or an extension) and hold no spaces;
    otherwise (a File column or field) any ``name:45`` splits (``Dockerfile:3``) and anything else is the file
    as written.
    """
    value = clean(text)
    if is_blank(value):
        return None
    match = _LOCATION.fullmatch(value)
    lines = (match["a"] or match["b"] or match["c"]) if match else None
    if strict:
        return (
            Location(match["file"], normalise_lines(lines) if lines else None)
            if match and looks_like_path(match["file"])
            else None
        )
    if match is None or not lines:
        return Location(value, None)
    return Location(match["file"], normalise_lines(lines))


def split_locations(text: str) -> list[str]:
    """Several locations in one value: split at newlines, semicolons, and commas before another path."""
    return [part for part in _LOCATION_SPLIT.split(clean(text)) if part and not is_blank(part)]


def same_path(a: str, b: str) -> bool:
    return a.removeprefix("./") == b.removeprefix("./")


# -- document structure ----------------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")


@dataclass(frozen=True)
class Document:
    """A report file's lines (without line endings), which are fenced code, and its pipe tables by line."""

    lines: list[str]
    fenced: list[bool]
    tables: list[Table]
    table_of: dict[int, Table]

    def is_text(self, index: int) -> bool:
        """Neither fenced code nor part of a table."""
        return not self.fenced[index] and index not in self.table_of


def read_document(text: str) -> Document:
    raw = split_lines(text.removeprefix("\ufeff"))
    lines = [line.rstrip("\r\n") for line in raw]
    fenced: list[bool] = []
    fence: str | None = None
    for line in lines:
        match = _FENCE.match(line)
        if fence is not None:
            fenced.append(True)
            if match and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence):
                fence = None
        else:
            fenced.append(bool(match))
            fence = match["fence"] if match else None
    tables = find_tables(raw)
    table_of = {i: t for t in tables for i in range(t.first_line, t.first_line + t.line_count)}
    return Document(lines, fenced, tables, table_of)
