"""automations/issue_queue.md on disk: two pipe tables (findings, suppressed) a person can read and edit.

Parsing is strict, because a person edits this file: an unknown status, a malformed fingerprint or a row with
the wrong number of cells stops the loop with the file and line, and the file is never overwritten then.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from conveyor.adapters.atomic import write_text
from conveyor.adapters.markdown_table import Table, encode_cell, find_tables, split_lines
from conveyor.domain.errors import InputError, Problem
from conveyor.domain.issue_queue import IssueQueue, QueueEntry, QueueStatus, Suppression
from conveyor.domain.scan import ScanFinding

ISSUE_QUEUE_PATH = "automations/issue_queue.md"
FINDING_COLUMNS = ("Fingerprint", "Severity", "Line", "Message", "Fix", "Status", "Ticket", "Loops")
SUPPRESSED_COLUMNS = ("Fingerprint", "Reason")
_LAST_LOOP = re.compile(r"^Last loop:\s*(\d+)\s*$", re.MULTILINE)
_LOOPS = re.compile(r"^(\d+)(?:-(\d+))?$")
_HEAD = """# Improvement issue queue

Findings of Conveyor's improvement loop (`conveyor improve`), one row per fingerprint `scanner:rule:file:symbol`.
A finding is filed as a ticket once; set a row's status to `wont-fix`, or move it to the suppressed table, and it
is never filed again. Written by Conveyor; edits to statuses and the suppressed table are kept.
"""


def render_queue(queue: IssueQueue) -> str:
    lines = [_HEAD, f"Last loop: {queue.last_loop}", "", "## Findings", ""]
    lines += [_row(FINDING_COLUMNS), _row(["---"] * len(FINDING_COLUMNS))]
    for e in queue.entries:
        f = e.finding
        loops = str(e.first_loop) if e.first_loop == e.last_loop else f"{e.first_loop}-{e.last_loop}"
        fix = "yes" if f.fixable else ""
        cells = [f.fingerprint, f.severity, str(f.line or ""), f.message, fix, e.status.value, e.ticket or "", loops]
        lines.append(_row(cells))
    lines += ["", "## Suppressed", "", _row(SUPPRESSED_COLUMNS), _row(["---"] * len(SUPPRESSED_COLUMNS))]
    lines += [_row([s.fingerprint, s.reason]) for s in queue.suppressed]
    return "\n".join(lines) + "\n"


def _row(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(encode_cell(c) if c else " " for c in cells) + " |"


def parse_queue(text: str, display: str = ISSUE_QUEUE_PATH) -> IssueQueue:
    lines = split_lines(text)
    tables = {t.names: t for t in find_tables(lines)}
    problems: list[Problem] = []
    findings, suppressed = tables.get(FINDING_COLUMNS), tables.get(SUPPRESSED_COLUMNS)
    if findings is None or suppressed is None:
        missing = "findings" if findings is None else "suppressed"
        raise InputError.single(display, None, f"no {missing} table with the columns Conveyor writes")
    last = _LAST_LOOP.search(text)
    entries = [e for e in (_entry(findings, i, display, problems) for i in range(len(findings.rows))) if e]
    kept: list[Suppression] = []
    for i, row in enumerate(suppressed.rows):
        values = row.values
        if len(values) != 2 or not values[0]:
            problems.append(Problem(display, suppressed.body_line(i) + 1, "a suppressed row needs Fingerprint, Reason"))
            continue
        kept.append(Suppression(fingerprint=values[0], reason=values[1]))
    if problems:
        raise InputError(problems)
    return IssueQueue(last_loop=int(last[1]) if last else 0, entries=tuple(entries), suppressed=tuple(kept))


def _entry(table: Table, index: int, display: str, problems: list[Problem]) -> QueueEntry | None:
    line = table.body_line(index) + 1
    values = table.rows[index].values
    if len(values) != len(FINDING_COLUMNS):
        problems.append(Problem(display, line, f"expected {len(FINDING_COLUMNS)} cells, found {len(values)}"))
        return None
    fingerprint, severity, at, message, fix, status, ticket, loops = values
    parts = fingerprint.split(":", 2)
    loop_match = _LOOPS.match(loops)
    if len(parts) != 3 or ":" not in parts[2] or loop_match is None:
        what = "fingerprint scanner:rule:file:symbol" if loop_match else "Loops (N or N-M)"
        problems.append(Problem(display, line, f"malformed {what}: {fingerprint if loop_match else loops!r}"))
        return None
    status = status.replace("'", "").lower()
    if status not in {s.value for s in QueueStatus}:
        allowed = ", ".join(s.value for s in QueueStatus)
        problems.append(Problem(display, line, f"status {values[5]!r} is not one of {allowed}"))
        return None
    scanner, rule, rest = parts
    file, symbol = rest.rsplit(":", 1)
    try:
        finding = ScanFinding(
            scanner=scanner,
            rule=rule,
            file=file,
            symbol=symbol,
            line=int(at) if at else None,
            message=message,
            severity=severity,
            fixable=fix.lower() in {"yes", "true"},
        )
        first, last = int(loop_match[1]), int(loop_match[2] or loop_match[1])
        return QueueEntry(
            finding=finding, status=QueueStatus(status), ticket=ticket or None, first_loop=first, last_loop=last
        )
    except (ValidationError, ValueError) as exc:
        problems.append(Problem(display, line, f"bad finding row: {_first_error(exc)}"))
        return None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


def load_queue(root: Path) -> IssueQueue:
    path = root / ISSUE_QUEUE_PATH
    if not path.exists():
        return IssueQueue()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.single(ISSUE_QUEUE_PATH, None, f"not UTF-8 text: {exc}") from None
    return parse_queue(text)


def save_queue(root: Path, queue: IssueQueue) -> None:
    write_text(root / ISSUE_QUEUE_PATH, render_queue(queue))
