"""A lossless codec for GitHub-flavoured-markdown pipe tables. Pure text: no knowledge of what the cells mean.

Every row keeps its exact raw text in parts: the indentation before the first pipe, whether it has a leading
and a trailing pipe, each cell's raw text with its padding, the whitespace after the trailing pipe, and the
line ending (``\\n``, ``\\r\\n`` or none on a last line). Joining the parts gives the line back byte for byte,
so a row whose cells did not change renders exactly as it was read.

Cells are split on unescaped pipes only: as in GFM, a pipe preceded by a backslash (``\\|``) belongs to the
cell. Cell values are plain text, not markdown; the codec transforms exactly two things:

- encoding turns ``|`` into ``\\|`` and a newline (``\\n``, ``\\r\\n`` or ``\\r``) into ``<br>``;
- decoding strips the surrounding whitespace of the cell, turns ``<br>`` (also ``<br/>``, ``<br />``, any
  case) into ``\\n`` and ``\\|`` into ``|``.

So ``decode(encode(v)) == v`` for every value without surrounding whitespace and without a literal ``<br>``
(such a value reads back with the whitespace stripped and the tag as a newline).

A rewritten cell keeps the table's layout where it can: in an *aligned* column (the header and delimiter
cells have the same width and the header is padded, as a formatter or a careful person leaves them) the new
text is padded to that width when it fits; otherwise the cell becomes `` value `` (a single space when
empty). Appended rows follow the same rule, with the edge style of the last row. Rows are found as GFM does, with two
simplifications: a table ends at a blank line or at a line without an unescaped pipe, and tables inside
fenced code blocks are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_DELIMITER_CELL = re.compile(r"^\s*:?-+:?\s*$")
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")


# -- cell values ------------------------------------------------------------------------------------------


def encode_cell(value: str) -> str:
    """The cell text for ``value``: pipes escaped, newlines as ``<br>``."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("|", "\\|").replace("\n", "<br>")


def decode_cell(raw: str) -> str:
    """The value of a raw cell: surrounding whitespace stripped, ``<br>`` as newline, ``\\|`` as ``|``."""
    return _BREAK.sub("\n", raw.strip()).replace("\\|", "|")


def fresh_cell(text: str) -> str:
    """An unaligned cell for already-encoded ``text``: `` text ``, or a single space when empty."""
    return f" {text} " if text else " "


def fit_cell(template: str, text: str) -> str | None:
    """Already-encoded ``text`` padded to the width of the raw cell ``template``, or None when it does not fit.

    The template's leading padding is kept; at least one space stays after the text when the template had
    trailing padding, or when the text ends with a backslash (which would otherwise escape the next pipe).
    """
    if template.strip():
        lead = len(template) - len(template.lstrip())
        trail = len(template) - len(template.rstrip())
    else:
        lead = min(1, len(template))
        trail = len(template) - lead
    need_trail = 1 if trail > 0 or text.endswith("\\") else 0
    if lead + len(text) + need_trail > len(template):
        return None
    return template[:lead] + text + " " * (len(template) - lead - len(text))


# -- lines and rows --------------------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Lines with their endings kept; only ``\\n`` ends a line (``\\r\\n`` is kept whole, a lone ``\\r`` is text)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _line_ending(line: str) -> tuple[str, str]:
    if line.endswith("\r\n"):
        return line[:-2], "\r\n"
    if line.endswith("\n"):
        return line[:-1], "\n"
    return line, ""


def _unescaped_pipes(content: str) -> list[int]:
    return [i for i, ch in enumerate(content) if ch == "|" and (i == 0 or content[i - 1] != "\\")]


def has_unescaped_pipe(line: str) -> bool:
    return bool(_unescaped_pipes(line))


def is_blank(line: str) -> bool:
    return not line.strip()


@dataclass(frozen=True)
class Row:
    """One table line in parts; ``text`` joins them back exactly."""

    indent: str
    leading_pipe: bool
    cells: tuple[str, ...]
    trailing_pipe: bool
    tail: str
    eol: str

    @classmethod
    def parse(cls, line: str) -> Row:
        body, eol = _line_ending(line)
        stripped = body.lstrip()
        indent = body[: len(body) - len(stripped)]
        content = stripped
        leading = content.startswith("|")
        if leading:
            content = content[1:]
        without_tail = content.rstrip()
        tail = content[len(without_tail) :]
        pipes = _unescaped_pipes(without_tail)
        trailing = bool(pipes) and pipes[-1] == len(without_tail) - 1 and bool(without_tail)
        if trailing:
            content = without_tail[:-1]
            pipes = pipes[:-1]
        else:
            tail = ""
        cells: list[str] = []
        start = 0
        for index in pipes:
            cells.append(content[start:index])
            start = index + 1
        cells.append(content[start:])
        return cls(indent, leading, tuple(cells), trailing, tail, eol)

    @property
    def text(self) -> str:
        lead = "|" if self.leading_pipe else ""
        trail = "|" if self.trailing_pipe else ""
        return f"{self.indent}{lead}{'|'.join(self.cells)}{trail}{self.tail}{self.eol}"

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(decode_cell(cell) for cell in self.cells)

    def value(self, index: int) -> str:
        return decode_cell(self.cells[index])

    def with_cell(self, index: int, raw: str) -> Row:
        """This row with the raw text of one cell replaced; pipes are added at the edges where an empty edge
        cell would otherwise vanish."""
        if index == 0 and not self.leading_pipe and raw.strip():
            raw = raw.lstrip()  # leading whitespace of a first cell without pipe is the row's indentation
        cells = (*self.cells[:index], raw, *self.cells[index + 1 :])
        return _keep_edges(replace(self, cells=cells))

    def with_eol(self, eol: str) -> Row:
        return replace(self, eol=eol)


def _keep_edges(row: Row) -> Row:
    if not row.leading_pipe and not row.cells[0].strip():
        row = replace(row, leading_pipe=True)
    if not row.trailing_pipe and not row.cells[-1].strip():
        row = replace(row, trailing_pipe=True, tail="")
    return row


def _is_delimiter(row: Row) -> bool:
    return all(_DELIMITER_CELL.match(cell) for cell in row.cells)


# -- tables ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A header row, its delimiter row and the body rows; ``first_line`` is the header's 0-based line index."""

    header: Row
    delimiter: Row
    rows: tuple[Row, ...]
    first_line: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return self.header.values

    @property
    def width(self) -> int:
        return len(self.header.cells)

    @property
    def line_count(self) -> int:
        return 2 + len(self.rows)

    def body_line(self, index: int) -> int:
        """The 0-based line index of body row ``index`` in the text the table was found in."""
        return self.first_line + 2 + index

    def render(self) -> str:
        return "".join(row.text for row in (self.header, self.delimiter, *self.rows))

    def is_aligned(self, column: int) -> bool:
        """Header and delimiter cells of ``column`` have the same width and the header cell is padded.

        That is what a formatter or a careful person leaves; a compact ``|id|`` over ``|--|`` is not aligned.
        """
        head = self.header.cells[column]
        return len(head) == len(self.delimiter.cells[column]) and head != head.strip()

    def layout(self, column: int, value: str) -> str:
        """The raw cell for ``value`` in ``column``: padded to the column width when aligned and it fits."""
        text = encode_cell(value)
        if column < self.width and self.is_aligned(column):
            fitted = fit_cell(self.header.cells[column], text)
            if fitted is not None:
                return fitted
        return fresh_cell(text)

    def with_value(self, row: int, column: int, value: str) -> Table:
        """The table with one body cell set to ``value``; the cell is left as it is when it already holds it."""
        return self.with_values([(row, column, value)])

    def with_values(self, changes: Iterable[tuple[int, int, str]]) -> Table:
        """The table with body cells ``(row, column, value)`` set; cells that already hold the value stay."""
        rows = list(self.rows)
        changed = False
        for row, column, value in changes:
            if rows[row].value(column) != value:
                rows[row] = rows[row].with_cell(column, self.layout(column, value))
                changed = True
        return replace(self, rows=tuple(rows)) if changed else self

    def append(self, values: Sequence[str]) -> Table:
        """The table with one more body row after the last (see :meth:`extend`)."""
        return self.extend([values])

    def extend(self, rows: Iterable[Sequence[str]]) -> Table:
        """The table with more body rows after the last: edge style from the last row, widths from the header.

        When the table's last line had no line ending (end of file), it gets the header's and the last new
        row takes its place as the unterminated last line.
        """
        body = list(self.rows)
        eol = self.header.eol or "\n"
        final_eol = (body[-1] if body else self.delimiter).eol
        template = body[-1] if body else self.header
        added = 0
        for values in rows:
            if len(values) != self.width:
                raise ValueError(f"a row of this table has {self.width} cells, got {len(values)}")
            cells = tuple(self.layout(i, v) for i, v in enumerate(values))
            body.append(_keep_edges(replace(template, cells=cells, eol=eol)))
            added += 1
        if not added:
            return self
        delimiter = self.delimiter
        if not final_eol:
            if len(body) > added:
                body[-added - 1] = body[-added - 1].with_eol(eol)
            else:
                delimiter = delimiter.with_eol(eol)
        body[-1] = body[-1].with_eol(final_eol)
        return replace(self, delimiter=delimiter, rows=tuple(body))

    def without_rows(self, indexes: Iterable[int]) -> Table:
        """The table without the given body rows; the last line keeps the old last line's ending."""
        drop = set(indexes)
        if not drop:
            return self
        final_eol = (self.rows[-1] if self.rows else self.delimiter).eol
        kept = [row for i, row in enumerate(self.rows) if i not in drop]
        if kept:
            kept[-1] = kept[-1].with_eol(kept[-1].eol if final_eol else "")
            return replace(self, rows=tuple(kept))
        return replace(self, delimiter=self.delimiter.with_eol(final_eol), rows=())


def find_tables(lines: Sequence[str]) -> list[Table]:
    """Every pipe table in ``lines`` (from :func:`split_lines`), outside fenced code blocks, in order."""
    tables: list[Table] = []
    fence: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _FENCE.match(line)
        if fence is not None:
            if match and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence):
                fence = None
            i += 1
            continue
        if match:
            fence = match["fence"]
            i += 1
            continue
        table = _table_at(lines, i)
        if table is None:
            i += 1
            continue
        tables.append(table)
        i += table.line_count
    return tables


def _table_at(lines: Sequence[str], i: int) -> Table | None:
    if i + 1 >= len(lines):
        return None
    line, below = lines[i], lines[i + 1]
    if is_blank(line) or not has_unescaped_pipe(line) or not has_unescaped_pipe(below):
        return None
    if len(line) - len(line.lstrip(" ")) > 3:
        return None  # indented code
    header, delimiter = Row.parse(line), Row.parse(below)
    if len(header.cells) != len(delimiter.cells) or not _is_delimiter(delimiter):
        return None
    rows: list[Row] = []
    j = i + 2
    while j < len(lines) and not is_blank(lines[j]) and has_unescaped_pipe(lines[j]) and not _FENCE.match(lines[j]):
        rows.append(Row.parse(lines[j]))
        j += 1
    return Table(header, delimiter, tuple(rows), first_line=i)
