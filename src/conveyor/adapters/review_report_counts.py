"""The counts by severity an executive summary states (rules in :mod:`conveyor.adapters.review_report`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.adapters.markdown_table import Row, Table
from conveyor.adapters.review_report_text import (
    COUNT_NAMES,
    SEVERITY_WORD,
    Document,
    clean,
    is_blank,
    normalise_name,
    role_of,
    severity_of,
    severity_word,
)
from conveyor.domain.errors import Problem
from conveyor.domain.ticket import Severity

_COUNT_LINE = re.compile(
    rf"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(?:\*\*|__)?\s*(?:[^\w\s*|]+\s*)?(?P<sev>{SEVERITY_WORD})"
    r"(?:\s+(?:severity|priority|risk))?(?:\s+(?:issues?|findings?|vulnerabilities))?\s*(?:\*\*|__)?\s*"
    r"[:=\-\u2013—]\s*(?:\*\*|__)?\s*(?P<n>\d+)\b",
    re.IGNORECASE,
)
_TOTAL_ROWS = frozenset({"total", "totals", "all", "overall", "sum", "all findings"})


@dataclass(frozen=True)
class CountBlock:
    line: int  # 1-based line of the block's first count
    counts: dict[Severity, int]


def row_fits(table: Table, row: Row, index: int, display: str, problems: list[Problem]) -> bool:
    """The row has as many cells as the header; otherwise a problem at its (0-based) line ``index``."""
    if len(row.cells) == table.width:
        return True
    problems.append(Problem(display, index + 1, f"table row has {len(row.cells)} cells, the header has {table.width}"))
    return False


class _Counter:
    def __init__(self, doc: Document, display: str, problems: list[Problem]) -> None:
        self.doc, self.display, self.problems = doc, display, problems

    def first_block(self) -> CountBlock | None:
        blocks = [block for table in self.doc.tables if (block := self._table(table)) is not None]
        current: list[tuple[Severity, int, int]] = []
        for i, line in enumerate(self.doc.lines):
            match = _COUNT_LINE.match(line) if self.doc.is_text(i) else None
            severity = severity_word(match["sev"]) if match else None
            if match and severity is not None:
                current.append((severity, int(match["n"]), i))
            elif line.strip() or not self.doc.is_text(i):
                if current:
                    blocks.append(self._block(current))
                current = []
        if current:
            blocks.append(self._block(current))
        return min(blocks, key=lambda b: b.line) if blocks else None

    def _block(self, stated: list[tuple[Severity, int, int]]) -> CountBlock:
        counts: dict[Severity, int] = {}
        first: dict[Severity, int] = {}
        for severity, n, i in stated:
            if severity in counts and counts[severity] != n:
                message = f"{severity.value} count {n} here conflicts with {counts[severity]} at "
                self.problems.append(Problem(self.display, i + 1, message + f"{self.display}:{first[severity] + 1}"))
                continue
            counts.setdefault(severity, n)
            first.setdefault(severity, i)
        return CountBlock(stated[0][2] + 1, counts)

    def _table(self, table: Table) -> CountBlock | None:
        names = [normalise_name(name) for name in table.names]
        if any(role_of(name) == "id" for name in table.names):
            return None
        severity_col = next((c for c, name in enumerate(table.names) if role_of(name) == "severity"), None)
        count_col = next((c for c, name in enumerate(names) if name in COUNT_NAMES), None)
        if severity_col is not None and count_col is not None:
            stated: list[tuple[Severity, int, int]] = []
            for index, row in enumerate(table.rows):
                at = table.body_line(index)
                severity = severity_of(row.value(severity_col)) if len(row.cells) > severity_col else None
                if severity is None or not row_fits(table, row, at, self.display, self.problems):
                    continue
                n = self._count(row.value(count_col), at)
                if n is not None:
                    stated.append((severity, n, at))
            return self._block(stated) if stated else None
        wide = {c: s for c, name in enumerate(names) if (s := severity_word(name)) is not None}
        return self._wide(table, wide) if len(wide) >= 2 else None

    def _wide(self, table: Table, wide: dict[int, Severity]) -> CountBlock | None:
        """One column per severity: the Total row, else the only row, else the sum of the rows."""
        rows = [
            (table.body_line(index), row)
            for index, row in enumerate(table.rows)
            if row_fits(table, row, table.body_line(index), self.display, self.problems)
        ]
        chosen = [(at, row) for at, row in rows if normalise_name(row.value(0)) in _TOTAL_ROWS][:1] or rows
        if not chosen:
            return None
        counts = dict.fromkeys(wide.values(), 0)
        for at, row in chosen:
            for column, severity in wide.items():
                counts[severity] += self._count(row.value(column), at) or 0
        return CountBlock(table.first_line + 1, counts)

    def _count(self, cell: str, at: int) -> int | None:
        if is_blank(cell):
            return 0
        match = re.match(r"\D*?(\d+)", clean(cell))
        if match is None:
            self.problems.append(Problem(self.display, at + 1, f"count {clean(cell)!r} is not a number"))
            return None
        return int(match[1])


def summary_counts(doc: Document, display: str, problems: list[Problem]) -> CountBlock | None:
    """The first block of counts in an executive summary file (a table or consecutive count lines)."""
    return _Counter(doc, display, problems).first_block()
