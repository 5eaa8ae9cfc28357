"""docs/TASKS.md, Conveyor's human-readable system of record (seed 001 Step 6, ARCHITECTURE.md §2, §3, §8).

The file is prose around one task table: the first pipe table whose header has ``id`` and ``status``
columns. Everything before and after it (other tables included) is kept byte for byte, and so is every row
Conveyor has no reason to change; the markdown itself goes through the lossless codec of
:mod:`conveyor.adapters.markdown_table`, the cells through :mod:`conveyor.adapters.tasks_md_columns`.

- The 14 seed columns may come in any order; ``id``, ``status`` and ``description`` are required. A missing
  optional column is a warning (its values then live only in automations/run-queue.json); a column Conveyor
  does not know is kept untouched and its values are exposed per row.
- A status outside the vocabulary (``wip``) is a warning, not an error: the text is kept, the ticket is
  scheduled as queued, and the cell is rewritten only when Conveyor moves that ticket elsewhere.
- Bad input raises :class:`InputError` listing every problem with the display path and 1-based line; a file
  that does not parse is therefore never written back.

Documents are immutable: :meth:`TasksDocument.sync` returns a new document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import ValidationError

from conveyor.adapters.atomic import write_text
from conveyor.adapters.markdown_table import Table, find_tables, split_lines
from conveyor.adapters.tasks_md_columns import (
    COLUMNS,
    REQUIRED_COLUMNS,
    SEED_COLUMNS,
    normalise_column,
    read_description,
    read_status,
    split_ids,
    status_cell_is_current,
)
from conveyor.domain.backlog import Backlog
from conveyor.domain.errors import InputError, Problem
from conveyor.domain.ids import is_ticket_id
from conveyor.domain.projections import TASKS_STATUSES
from conveyor.domain.ticket import State, Ticket

DEFAULT_DISPLAY = "docs/TASKS.md"
_BOM = "\ufeff"


@dataclass(frozen=True)
class ColumnLayout:
    """Where the columns of the task table are."""

    known: dict[str, int]  # normalised seed column name → column index
    extra: dict[str, int]  # extra column header, as written (trimmed) → column index


@dataclass(frozen=True)
class TasksDocument:
    """A parsed TASKS.md: prose before, the task table, prose after, and the tickets its rows stand for."""

    display: str
    bom: bool
    before: str
    table: Table
    after: str
    layout: ColumnLayout
    ids: tuple[str, ...]
    parsed: tuple[Ticket, ...]
    problems: tuple[Problem, ...] = field(default=())

    # -- reading ----------------------------------------------------------------------------------------
    def render(self) -> str:
        return (_BOM if self.bom else "") + self.before + self.table.render() + self.after

    def tickets(self) -> list[Ticket]:
        """The tickets in row order (fields TASKS.md does not hold have their defaults)."""
        return list(self.parsed)

    def row_line(self, ticket_id: str) -> int:
        """The 1-based line of the ticket's row; KeyError when there is none."""
        return self.table.body_line(self._row_index(ticket_id)) + 1

    @property
    def header_line(self) -> int:
        return self.table.first_line + 1

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """Columns Conveyor does not know, as their headers are written, in table order."""
        return tuple(self.layout.extra)

    @property
    def missing_columns(self) -> tuple[str, ...]:
        return tuple(name for name in SEED_COLUMNS if name not in self.layout.known)

    def extra_values(self, ticket_id: str) -> dict[str, str]:
        """The decoded values of the extra columns in the ticket's row."""
        row = self.table.rows[self._row_index(ticket_id)]
        return {name: row.value(index) for name, index in self.layout.extra.items()}

    def status_text(self, ticket_id: str) -> str:
        """The status cell as written (a value Conveyor does not know included)."""
        return self.table.rows[self._row_index(ticket_id)].value(self.layout.known["status"])

    def unknown_statuses(self) -> dict[str, str]:
        """Ticket id → status text, for rows whose status is outside Conveyor's vocabulary."""
        texts = {tid: self.status_text(tid) for tid in self.ids}
        return {tid: text for tid, text in texts.items() if read_status(text) is None}

    @cached_property
    def _index(self) -> dict[str, int]:
        return {tid: i for i, tid in enumerate(self.ids)}

    def _row_index(self, ticket_id: str) -> int:
        try:
            return self._index[ticket_id]
        except KeyError:
            raise KeyError(f"{self.display}: no row for ticket {ticket_id}") from None

    # -- writing ----------------------------------------------------------------------------------------
    def sync(
        self,
        tickets: Iterable[Ticket],
        *,
        remove: Iterable[str] = (),
        extra: Mapping[str, Mapping[str, str]] | None = None,
    ) -> TasksDocument:
        """A new document that shows ``tickets``; this one is left as it is.

        For a ticket with a row, each known cell is rewritten only when its typed value differs from the
        ticket's (``blocks`` from the dependents in the merged backlog: this document's tickets updated by
        ``tickets``; pass the whole backlog to keep every ``blocks`` cell current). A ticket without a row
        gets one after the last row. ``extra`` sets extra-column values (ticket id → header → value) of
        given tickets and existing rows. Rows are removed only when named in ``remove``.

        Raises UnknownDependencyError or DependencyCycleError when the merged backlog is not a valid DAG;
        ValueError on a ticket given twice or both given and removed, an unknown extra column, or extra
        values for a ticket without a row.
        """
        given = list(tickets)
        drop = set(remove)
        merged = {t.id: t for t in self.parsed if t.id not in drop}
        seen: set[str] = set()
        for ticket in given:
            if ticket.id in seen or ticket.id in drop:
                raise ValueError(f"ticket {ticket.id} is given twice, or given and removed")
            seen.add(ticket.id)
            merged[ticket.id] = ticket
        backlog = Backlog(merged.values())
        backlog.validate()
        extras = self._extra_columns_for(extra or {})
        table = self.table
        row_of = dict(self._index)
        changes: list[tuple[int, int, str]] = []
        new_rows: list[list[str]] = []
        for ticket in given:
            blocks = backlog.blocks[ticket.id]
            wanted_extra = extras.get(ticket.id, {})
            if ticket.id in row_of:
                changes += self._changes(row_of[ticket.id], ticket, blocks)
                changes += [(row_of[ticket.id], index, value) for index, value in wanted_extra.items()]
                continue
            values = [""] * table.width
            for name, index in self.layout.known.items():
                values[index] = COLUMNS[name].write(ticket, blocks)
            for index, value in wanted_extra.items():
                values[index] = value
            new_rows.append(values)
            row_of[ticket.id] = len(table.rows) + len(new_rows) - 1
        for ticket_id in extras.keys() - seen:
            if ticket_id not in row_of:
                raise ValueError(f"{self.display} has no row for ticket {ticket_id} to set extra columns on")
            changes.extend((row_of[ticket_id], index, value) for index, value in extras[ticket_id].items())
        removed = [row_of[tid] for tid in drop if tid in row_of]
        if not (changes or new_rows or removed):
            return self  # the common case of a state write: no cell differs, and re-parsing costs O(rows)
        table = table.with_values(changes).extend(new_rows)
        table = table.without_rows(removed)
        text = (_BOM if self.bom else "") + self.before + table.render() + self.after
        return parse_tasks_md(text, self.display)

    def _changes(self, row_index: int, ticket: Ticket, blocks: list[str]) -> list[tuple[int, int, str]]:
        """The (row, column, value) rewrites the ticket needs: only cells whose typed value differs."""
        row = self.table.rows[row_index]
        changes = []
        for name, index in self.layout.known.items():
            cell = row.value(index)
            if name == "id":
                continue
            if name == "status":
                if status_cell_is_current(cell, ticket):
                    continue
            elif not COLUMNS[name].differs(cell, ticket, blocks):
                continue
            changes.append((row_index, index, COLUMNS[name].write(ticket, blocks)))
        return changes

    def _extra_columns_for(self, extra: Mapping[str, Mapping[str, str]]) -> dict[str, dict[int, str]]:
        by_name = {normalise_column(name): index for name, index in self.layout.extra.items()}
        out: dict[str, dict[int, str]] = {}
        for ticket_id, values in extra.items():
            for name, value in values.items():
                key = normalise_column(name)
                if key not in by_name:
                    raise ValueError(f"{self.display} has no extra column {name!r}")
                out.setdefault(ticket_id, {})[by_name[key]] = value
        return out


# -- parsing ---------------------------------------------------------------------------------------------


def parse_tasks_md(text: str, display: str = DEFAULT_DISPLAY) -> TasksDocument:
    """Parse TASKS.md text; raise InputError listing every problem (display path, 1-based line)."""
    bom = text.startswith(_BOM)
    body = text[1:] if bom else text
    lines = split_lines(body)
    table = next((t for t in find_tables(lines) if {"id", "status"} <= {normalise_column(n) for n in t.names}), None)
    if table is None:
        raise InputError.single(
            display, None, "no task table: expected a markdown table whose header has `id` and `status` columns"
        )
    errors: list[Problem] = []
    warnings: list[Problem] = []
    layout = _read_header(table, display, errors, warnings)
    if errors:
        raise InputError(errors)
    reader = _RowReader(display, layout, errors, warnings)
    for index, row in enumerate(table.rows):
        reader.read(table.body_line(index) + 1, row.values, table.width)
    reader.check_graph()
    if errors:
        raise InputError(sorted(errors, key=lambda p: (p.line or 0, p.message)))
    before = "".join(lines[: table.first_line])
    after = "".join(lines[table.first_line + table.line_count :])
    return TasksDocument(
        display=display,
        bom=bom,
        before=before,
        table=table,
        after=after,
        layout=layout,
        ids=tuple(reader.ids),
        parsed=tuple(reader.tickets),
        problems=tuple(sorted(warnings, key=lambda p: (p.line or 0, p.message))),
    )


def _read_header(table: Table, display: str, errors: list[Problem], warnings: list[Problem]) -> ColumnLayout:
    line = table.first_line + 1
    known: dict[str, int] = {}
    extra: dict[str, int] = {}
    seen: set[str] = set()
    for index, name in enumerate(table.names):
        key = normalise_column(name)
        if key in seen:
            errors.append(Problem(display, line, f"column `{name}` appears twice in the task table header"))
            continue
        seen.add(key)
        if key in COLUMNS:
            known[key] = index
        else:
            extra[name] = index
    for name in SEED_COLUMNS:
        if name in known:
            continue
        if name in REQUIRED_COLUMNS:
            errors.append(Problem(display, line, f"the task table has no `{name}` column (required)"))
        else:
            warnings.append(
                Problem(
                    display,
                    line,
                    f"the task table has no `{name}` column; its values live only in automations/run-queue.json",
                    severity="warning",
                )
            )
    return ColumnLayout(known, extra)


@dataclass
class _RowReader:
    display: str
    layout: ColumnLayout
    errors: list[Problem]
    warnings: list[Problem]
    ids: list[str] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def _error(self, line: int, message: str) -> None:
        self.errors.append(Problem(self.display, line, message))

    def read(self, line: int, values: tuple[str, ...], width: int) -> None:
        if len(values) != width:
            self._error(line, f"row has {len(values)} cells, the header has {width}")
            id_index = self.layout.known["id"]
            if id_index < len(values) and is_ticket_id(values[id_index]):
                self.lines.setdefault(values[id_index], line)  # known, so its dependents report no more
            return
        cell = {name: values[index] for name, index in self.layout.known.items()}
        ticket_id = cell["id"]
        if not is_ticket_id(ticket_id):
            self._error(line, f"malformed ticket id {ticket_id!r}: expected PREFIX-CAT-NNN[-SUFFIX] (e.g. MS-SEC-001)")
            return
        if ticket_id in self.lines:
            self._error(line, f"duplicate ticket id {ticket_id} (first at line {self.lines[ticket_id]})")
            return
        self.lines[ticket_id] = line
        fields = self._fields(line, ticket_id, cell)
        if fields is None:
            return
        try:
            ticket = Ticket.model_validate(fields)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "row"
                self._error(line, f"{ticket_id}: {where}: {err['msg']}")
            return
        self.ids.append(ticket_id)
        self.tickets.append(ticket)

    def _fields(self, line: int, ticket_id: str, cell: dict[str, str]) -> dict[str, object] | None:
        fields: dict[str, object] = {"id": ticket_id}
        ok = True
        status = read_status(cell["status"])
        if status is None:
            self.warnings.append(
                Problem(
                    self.display,
                    line,
                    f"{ticket_id}: status {cell['status']!r} is not one Conveyor knows "
                    f"({', '.join(TASKS_STATUSES)}); kept as written, scheduled as not-started",
                    severity="warning",
                )
            )
            status = (State.QUEUED, frozenset())
        fields["state"], fields["flags"] = status
        fields["finding_id"], fields["title"] = read_description(cell["description"])
        for name, column in COLUMNS.items():
            if column.field is None or name not in cell:
                continue
            try:
                fields[column.field] = column.read(cell[name])
            except ValueError as exc:
                self._error(line, f"{ticket_id}: column `{name}`: {exc}")
                ok = False
        if "blocks" in cell:
            bad = [part for part in split_ids(cell["blocks"]) if not is_ticket_id(part)]
            if bad:
                self.warnings.append(
                    Problem(
                        self.display,
                        line,
                        f"{ticket_id}: `blocks` lists {', '.join(bad)}, not ticket ids; "
                        "the column is derived from depends_on and will be rewritten",
                        severity="warning",
                    )
                )
        return fields if ok else None

    def check_graph(self) -> None:
        """Unknown dependencies (against every row with a valid id) and every disjoint dependency cycle."""
        for ticket in self.tickets:
            missing = [d for d in ticket.depends_on if d not in self.lines]
            if missing:
                self._error(self.lines[ticket.id], f"{ticket.id} depends on unknown ticket(s): {', '.join(missing)}")
        remaining = list(self.tickets)
        while (cycle := Backlog(remaining).find_cycle()) is not None:
            where = ", ".join(str(self.lines[tid]) for tid in dict.fromkeys(cycle))
            self._error(self.lines[cycle[0]], f"dependency cycle: {' -> '.join(cycle)} (rows at lines {where})")
            in_cycle = set(cycle)
            remaining = [t for t in remaining if t.id not in in_cycle]


# -- files and new documents -----------------------------------------------------------------------------


def new_tasks_document(
    title: str = "Tasks", extra_columns: Iterable[str] = (), display: str = DEFAULT_DISPLAY
) -> TasksDocument:
    """An empty backlog in seed 001's exact schema: ``# Tasks``, a blank line, header and delimiter rows."""
    names = [*SEED_COLUMNS, *extra_columns]
    header = "| " + " | ".join(names) + " |\n"
    delimiter = "|" + "---|" * len(names) + "\n"
    return parse_tasks_md(f"# {title}\n\n{header}{delimiter}", display)


def read_tasks_file(path: Path, display: str | None = None) -> TasksDocument:
    """Read and parse a TASKS.md exactly as stored (no newline translation, so CRLF files stay CRLF)."""
    shown = display or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError.single(shown, None, "file not found") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.single(shown, None, f"not UTF-8 text: {exc}") from None
    return parse_tasks_md(text, shown)


def write_tasks_file(path: Path, doc: TasksDocument) -> None:
    """Write atomically; only a parsed document can be written, so an unparseable file is never replaced."""
    write_text(path, doc.render())
