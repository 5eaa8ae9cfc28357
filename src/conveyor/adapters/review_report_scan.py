"""One report file → the places it names findings (sightings) and, for a summary, its severity counts.

A place is a findings-table row, a bullet with its more-indented lines, or a heading with its section. The
formats and rules are documented in :mod:`conveyor.adapters.review_report`; places that name the same id are
merged there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from conveyor.adapters.markdown_table import Table
from conveyor.adapters.review_report_counts import CountBlock, row_fits, summary_counts
from conveyor.adapters.review_report_head import Head, context_severity, parse_head
from conveyor.adapters.review_report_sighting import Sighting, Statement, build_sighting
from conveyor.adapters.review_report_text import (
    clean,
    is_blank,
    is_finding_id,
    is_id_like,
    is_reference,
    read_document,
    role_of,
)
from conveyor.domain.errors import Problem
from conveyor.domain.ticket import Severity

RANK_SUMMARY_TABLE_OR_BULLET, RANK_SUMMARY_HEADING, RANK_TABLE_OR_BULLET, RANK_HEADING = 1, 2, 11, 12
_FIELD_ROLES = frozenset({"severity", "component", "file", "lines", "title", "description", "category", "reference"})
_CONSUMED_ROLES = frozenset({"severity", "component", "file", "lines", "title"})  # not repeated in the description

_HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?(?:[ \t]+#+)?[ \t]*$")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)(?:[-*+]|\d+[.)])[ \t]+(?:\[[ xX]\][ \t]+)?(?P<body>.*)$")
_FIELD = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?(?P<key>[A-Za-z][A-Za-z0-9 ()/#'-]{0,40}?)\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*"
    r"(?P<value>.*?)\s*$"
)
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_ID_CELL = re.compile(r"(?P<id>[^\s:]+?)(?:\s*(?::|\s[-\u2013—])\s*(?P<title>.*)|$)")
_MALFORMED = "malformed finding id {!r} (expected upper-case words and a number: SEC-API-1)"


@dataclass
class FileScan:
    sightings: list[Sighting] = field(default_factory=list)
    counts: CountBlock | None = None
    problems: list[Problem] = field(default_factory=list)


def _indent(line: str) -> int:
    prefix = line[: len(line) - len(line.lstrip(" \t"))]
    return len(prefix.replace("\t", "    "))


class _FileScanner:
    def __init__(self, display: str, text: str, *, summary: bool, security_file: bool) -> None:
        self.display, self.summary, self.security_file = display, summary, security_file
        self.doc = read_document(text)
        self.lines = self.doc.lines
        self.out = FileScan()
        self.headings = [
            (i, len(m["hashes"]), m["text"] or "")
            for i, line in enumerate(self.lines)
            if self.doc.is_text(i) and (m := _HEADING.match(line))
        ]
        self.context = self._contexts()
        self.owner: dict[int, object] = {}  # line → the finding place (table or bullet line) it belongs to

    def _contexts(self) -> list[tuple[Severity, int] | None]:
        """The severity (and 1-based heading line) a severity section heading gives each line under it."""
        out: list[tuple[Severity, int] | None] = []
        stack: list[tuple[int, Severity, int]] = []
        starts = {i: (level, text) for i, level, text in self.headings}
        for i in range(len(self.lines)):
            if i in starts:
                level, text = starts[i]
                while stack and stack[-1][0] >= level:
                    stack.pop()
                severity = context_severity(text)
                if severity is not None:
                    stack.append((level, severity, i + 1))
            out.append((stack[-1][1], stack[-1][2]) if stack else None)
        return out

    def problem(self, index: int, message: str) -> None:
        self.out.problems.append(Problem(self.display, index + 1, message))

    def scan(self) -> FileScan:
        for table in self.doc.tables:
            self._findings_table(table)
        self._bullets()
        self._headings()
        if self.summary:
            self.out.counts = summary_counts(self.doc, self.display, self.out.problems)
        return self.out

    def _place(
        self, finding_id: str, i: int, *, rank: int, title: str, description: list[str], statements: list[Statement]
    ) -> None:
        sighting = build_sighting(
            finding_id,
            self.display,
            i + 1,
            rank=rank,
            title=title,
            description=description,
            statements=statements,
            context=self.context[i],
            security_file=self.security_file,
            problems=self.out.problems,
        )
        self.out.sightings.append(sighting)

    def _findings_table(self, table: Table) -> None:
        roles: dict[str, int] = {}
        for column, name in enumerate(table.names):
            role = role_of(name)
            if role is not None and role not in roles:
                roles[role] = column
        if "id" not in roles:
            fallback = _id_column(table)
            if fallback is None:
                return
            roles = {role: c for role, c in roles.items() if c != fallback} | {"id": fallback}
        for index in range(table.first_line, table.first_line + table.line_count):
            self.owner[index] = table
        rank = RANK_SUMMARY_TABLE_OR_BULLET if self.summary else RANK_TABLE_OR_BULLET
        for index, row in enumerate(table.rows):
            at = table.body_line(index)
            if not row_fits(table, row, at, self.display, self.out.problems):
                continue
            cell = clean(row.value(roles["id"]))
            match = _ID_CELL.fullmatch(cell)
            if not cell:
                self.problem(at, "table row has no finding id")
            elif match is None or not is_finding_id(match["id"]):
                self.problem(at, _MALFORMED.format(cell))
            else:
                title = row.value(roles["title"]) if "title" in roles else (match["title"] or "")
                description = [row.value(roles["description"])] if "description" in roles else []
                statements = [
                    Statement(role, row.value(column), at + 1)
                    for role, column in roles.items()
                    if role not in ("id", "title", "description") and not is_blank(row.value(column))
                ]
                self._place(match["id"], at, rank=rank, title=title, description=description, statements=statements)

    def _bullets(self) -> None:
        found: list[tuple[int, Head, list[int]]] = []
        for i, line in enumerate(self.lines):
            match = _BULLET.match(line) if self.doc.is_text(i) else None
            head = parse_head(match["body"], heading=False) if match else None
            if head is None or not (head.finding_id or is_id_like(head.token)):
                continue
            body = self._bullet_body(i)
            found.append((i, head, body))
            if head.finding_id is not None:
                for j in (i, *body):
                    self.owner[j] = i  # a nested finding bullet, met later, takes its own lines back
        rank = RANK_SUMMARY_TABLE_OR_BULLET if self.summary else RANK_TABLE_OR_BULLET
        for i, head, body in found:
            self._head_place(i, head, body, rank, owner=i)

    def _bullet_body(self, i: int) -> list[int]:
        indent, body = _indent(self.lines[i]), []
        heading_lines = {h[0] for h in self.headings}
        for j in range(i + 1, len(self.lines)):
            line = self.lines[j]
            if j in heading_lines or (line.strip() and _indent(line) <= indent):
                break
            body.append(j)
        while body and not self.lines[body[-1]].strip():
            body.pop()
        return body

    def _headings(self) -> None:
        heads = [parse_head(text, heading=True) for _, _, text in self.headings]
        rank = RANK_SUMMARY_HEADING if self.summary else RANK_HEADING
        for position, (i, level, _) in enumerate(self.headings):
            head = heads[position]
            if head is None or not (head.finding_id or is_id_like(head.token)):
                continue
            end = len(self.lines)
            for (j, other_level, _), other in zip(self.headings[position + 1 :], heads[position + 1 :], strict=True):
                if other_level <= level or (other is not None and other.finding_id is not None):
                    end = j
                    break
            self._head_place(i, head, list(range(i + 1, end)), rank, owner=None)

    def _head_place(self, i: int, head: Head, body: list[int], rank: int, owner: int | None) -> None:
        statements, description = self._body(body, owner)
        statements = [Statement(role, value, i + 1) for role, value in head.statements] + statements
        if head.finding_id is not None:
            self._place(head.finding_id, i, rank=rank, title=head.title, description=description, statements=statements)
        elif any(s.role == "severity" for s in statements) and not is_reference(head.token):
            self.problem(i, _MALFORMED.format(head.token))  # an id-like token where a finding with a severity stands

    def _body(self, body: list[int], owner: int | None) -> tuple[list[Statement], list[str]]:
        """Field lines (``**Severity:** High``) and key-value tables of a finding's body; the rest is description."""
        statements: list[Statement] = []
        description: list[str] = []
        base = min((_indent(self.lines[j]) for j in body if self.lines[j].strip()), default=0)
        for j in body:
            if self.owner.get(j, owner) != owner:
                continue  # a finding of its own inside this one
            line = self.lines[j]
            shown = line[base:] if _indent(line) >= base else line.strip()
            table = None if self.doc.fenced[j] else self.doc.table_of.get(j)
            fields = _key_values(table) if table is not None else None
            if table is not None:
                if fields is None:
                    description.append(shown)
                elif j == table.first_line:
                    statements.extend(Statement(r, v, j + 1 + offset) for offset, r, v in fields)
                continue
            match = None if self.doc.fenced[j] else _FIELD.match(line)
            role = role_of(match["key"]) if match else None
            if match and role in _FIELD_ROLES:
                statements.append(Statement(role, match["value"], j + 1))
                if role == "description":
                    description.append(match["value"])
                elif role not in _CONSUMED_ROLES:
                    description.append(shown)
            elif self.doc.fenced[j] or not _RULE.match(line):
                description.append(shown)
        return statements, description


def _id_column(table: Table) -> int | None:
    """Without an id header: the first column whose every cell starts with a finding id (``SEC-1: title``)."""
    if not table.rows:
        return None
    for column in range(table.width):
        cells = [clean(row.value(column)) for row in table.rows if len(row.cells) > column]
        if cells and all((m := _ID_CELL.fullmatch(cell)) and is_finding_id(m["id"]) for cell in cells):
            return column
    return None


def _key_values(table: Table) -> list[tuple[int, str, str]] | None:
    """A two-column ``| Severity | High |`` table: (offset from the header line, role, value) per field row."""
    if table.width != 2 or role_of(table.names[0]) == "id":
        return None
    rows = [(0, table.header), *((2 + k, row) for k, row in enumerate(table.rows))]
    fields = [
        (offset, role, row.value(1))
        for offset, row in rows
        if len(row.cells) == 2 and (role := role_of(row.value(0))) in _FIELD_ROLES
    ]
    return fields or None


def scan_file(display: str, text: str, *, summary: bool, security_file: bool) -> FileScan:
    return _FileScanner(display, text, summary=summary, security_file=security_file).scan()
