"""docs/TASKS.md as the system of record: nothing a person wrote is lost, and only what changed is rewritten."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.adapters.markdown_table import Row
from conveyor.adapters.tasks_md import (
    TasksDocument,
    new_tasks_document,
    parse_tasks_md,
    read_tasks_file,
    write_tasks_file,
)
from conveyor.adapters.tasks_md_columns import SEED_COLUMNS, read_description
from conveyor.domain.errors import DependencyCycleError, InputError, UnknownDependencyError
from conveyor.domain.ids import format_ticket_id
from conveyor.domain.projections import TASKS_STATUSES, from_tasks_status
from conveyor.domain.ticket import Flag, State, Ticket

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tasks_md"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.md"))
SEED_HEADER = "| " + " | ".join(SEED_COLUMNS) + " |\n" + "|---" * 14 + "|\n"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


def _doc(name: str) -> TasksDocument:
    return parse_tasks_md(_fixture(name), f"docs/{name}")


def _seed_text(*rows: str) -> str:
    return "# Tasks\n\n" + SEED_HEADER + "".join(r + "\n" for r in rows)


def _row(ticket_id: str, status: str = "not-started", depends_on: str = "", estimate: str = "") -> str:
    return f"| {ticket_id} | {status} | Work | | | | {depends_on} | | | | | {estimate} | | |"


def _problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(InputError) as caught:
        parse_tasks_md(text, "docs/TASKS.md")
    assert all(p.path == "docs/TASKS.md" for p in caught.value.problems)
    assert all(p.severity == "error" for p in caught.value.problems)
    return [(p.line, p.message) for p in caught.value.problems]


def _with_state(ticket: Ticket, state: State) -> Ticket:
    return ticket.model_copy(update={"state": state, "flags": frozenset()})


# -- 1. parse then render gives the same bytes ---------------------------------------------------------------


def test_fixtures_cover_the_required_shapes() -> None:
    assert {"seed.md", "handwritten.md", "aligned.md", "crlf.md", "partial_columns.md"} <= set(FIXTURE_NAMES)
    assert "\r\n" in _fixture("crlf.md")
    assert not _fixture("partial_columns.md").endswith("\n")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_untouched_fixture_renders_to_the_same_bytes(name: str) -> None:
    text = _fixture(name)
    assert parse_tasks_md(text).render() == text


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_sync_with_unchanged_tickets_renders_to_the_same_bytes(name: str) -> None:
    doc = _doc(name)
    assert doc.sync(doc.tickets()).render() == _fixture(name)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_read_then_write_file_gives_the_same_bytes(name: str, tmp_path: Path) -> None:
    target = tmp_path / "TASKS.md"
    target.write_bytes((FIXTURES / name).read_bytes())
    write_tasks_file(target, read_tasks_file(target))
    assert target.read_bytes() == (FIXTURES / name).read_bytes()


def test_byte_order_mark_is_kept() -> None:
    text = "\ufeff" + _seed_text(_row("AB-CQ-001"))
    doc = parse_tasks_md(text)
    assert doc.render() == text
    assert [t.id for t in doc.tickets()] == ["AB-CQ-001"]


# -- reading ----------------------------------------------------------------------------------------------


def test_seed_fixture_reads_every_column() -> None:
    doc = _doc("seed.md")
    first, second, qa, test, docs = doc.tickets()
    assert first == Ticket(
        id="MS-SEC-001",
        title="Validate webhook signatures",
        finding_id="SEC-API-1",
        issue="#12",
        repo="api",
        branch="fix/security",
        agent="worker-1",
        started_at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        completed_at=datetime(2024, 5, 1, 10, 12, tzinfo=UTC),
        estimate_tokens=8000,
        used_tokens=4200,
        notes="PR #40 merged, CI green, #12 closed",
        state=State.DONE,
    )
    assert (second.state, second.depends_on, second.estimate_tokens) == (State.IMPLEMENTING, ("MS-SEC-001",), 12000)
    assert (qa.id, qa.finding_id, qa.title) == ("MS-SEC-003-QA", None, "Remediation: review suggestions of MS-SEC-002")
    assert (test.state, test.flags) == (State.QUEUED, frozenset({Flag.BLOCKED}))
    assert (docs.state, docs.started_at, docs.used_tokens) == (State.QA, datetime(2024, 5, 2), 2900)
    assert doc.problems == ()
    assert doc.row_line("MS-SEC-001") == 4
    assert doc.row_line("MS-DOC-001") == 8


def test_handwritten_fixture_keeps_prose_extra_column_and_unknown_status() -> None:
    doc = _doc("handwritten.md")
    assert [t.id for t in doc.tickets()] == ["PAY-SEC-001", "PAY-CQ-002", "PAY-CQ-003"]
    assert doc.header_line == 17  # the fenced and the prose tables are not the task table
    assert doc.extra_columns == ("owner",)
    assert doc.extra_values("PAY-CQ-002") == {"owner": "bo"}
    assert doc.extra_values("PAY-CQ-003") == {"owner": ""}
    sec, cq, _ = doc.tickets()
    assert sec.title == "Escape `a | b` in the ledger export"
    assert sec.finding_id == "SEC-PAY-1"
    assert sec.notes == "merged in #8\nCI green"
    assert sec.estimate_tokens == 8000
    assert sec.started_at == datetime(2024, 6, 1, 6, 0, tzinfo=UTC)
    assert cq.title == "Tidy the retry helper — naïve backoff ✓"
    assert cq.state is State.QUEUED
    assert doc.unknown_statuses() == {"PAY-CQ-002": "wip"}
    [warning] = doc.problems
    assert (warning.path, warning.line, warning.severity) == ("docs/handwritten.md", 20, "warning")
    assert "'wip'" in warning.message


def test_missing_optional_columns_are_warnings() -> None:
    doc = _doc("partial_columns.md")
    missing = set(SEED_COLUMNS) - {"id", "status", "description", "depends_on", "estimate", "notes"}
    assert set(doc.missing_columns) == missing
    assert {p.message.split("`")[1] for p in doc.problems} == missing
    assert all(p.severity == "warning" and p.line == 3 for p in doc.problems)
    assert [(t.id, t.state, t.estimate_tokens) for t in doc.tickets()] == [
        ("NP-CQ-001", State.DONE, 2000),
        ("NP-CQ-002", State.QUEUED, 1500),
    ]


def test_header_names_match_case_insensitively_and_trimmed() -> None:
    text = "| ID | Status |  Description | Depends On |\n|---|---|---|---|\n| AB-CQ-001 | Done | x | |\n"
    [ticket] = parse_tasks_md(text).tickets()
    assert (ticket.id, ticket.state, ticket.title) == ("AB-CQ-001", State.DONE, "x")


# -- 2. changing one status changes only that cell -------------------------------------------------------------


def _only_cell_changed(old: str, new: str, column: int) -> int:
    """Assert exactly one line differs, and within it only ``column``; return its 0-based index."""
    old_lines, new_lines = old.split("\n"), new.split("\n")
    assert len(old_lines) == len(new_lines)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert len(changed) == 1
    before, after = Row.parse(old_lines[changed[0]]), Row.parse(new_lines[changed[0]])
    assert len(before.cells) == len(after.cells)
    assert [i for i, (a, b) in enumerate(zip(before.cells, after.cells, strict=True)) if a != b] == [column]
    assert (before.indent, before.leading_pipe, before.trailing_pipe, before.tail, before.eol) == (
        after.indent,
        after.leading_pipe,
        after.trailing_pipe,
        after.tail,
        after.eol,
    )
    return changed[0]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_changing_one_status_changes_only_that_cell(name: str) -> None:
    doc = _doc(name)
    tickets = doc.tickets()
    target = tickets[-1]
    new_state = State.FAILED if target.state is not State.FAILED else State.DONE
    updated = [_with_state(t, new_state) if t.id == target.id else t for t in tickets]
    synced = doc.sync(updated)
    line = _only_cell_changed(doc.render(), synced.render(), doc.table.names.index(_status_header(doc)))
    assert line + 1 == doc.row_line(target.id)
    assert synced.status_text(target.id) == new_state.value
    assert synced.tickets() == updated


def _status_header(doc: TasksDocument) -> str:
    return next(n for n in doc.table.names if n.strip().lower() == "status")


# -- 3. adding a ticket adds exactly one row -----------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_adding_a_ticket_adds_exactly_one_row(name: str) -> None:
    doc = _doc(name)
    new = Ticket(id="ZZ-TEST-900", title="Cover | the new path", estimate_tokens=6500)
    synced = doc.sync([new])
    old_lines, new_lines = doc.render().split("\n"), synced.render().split("\n")
    assert len(new_lines) == len(old_lines) + 1
    index = synced.row_line(new.id) - 1
    assert new_lines[:index] + new_lines[index + 1 :] == old_lines
    assert index == doc.row_line(doc.tickets()[-1].id)  # right after the last row
    assert synced.tickets() == [*doc.tickets(), new]
    row = Row.parse(new_lines[index])
    assert len(row.cells) == doc.table.width
    assert {v for i, v in enumerate(row.values) if i not in doc.layout.known.values()} <= {""}


def test_a_new_row_follows_aligned_widths_and_crlf() -> None:
    doc = _doc("aligned.md")
    synced = doc.sync([Ticket(id="AL-CQ-002", title="Short", estimate_tokens=3000)])
    last = synced.render().split("\n")[-2]
    assert last == (
        "| AL-CQ-002   | not-started | Short                             |       |      |              "
        "|             |             |       |            |              | 3K       |      |       |"
    )
    crlf = _doc("crlf.md").sync([Ticket(id="CR-CQ-003", title="Third")]).render()
    assert "| CR-CQ-003 | not-started | Third | | | | | | | | | | | |\r\n\r\nEnd.\r\n" in crlf
    assert "\n" not in crlf.replace("\r\n", "")


# -- 4. parse(render(model)) == model -------------------------------------------------------------------------

_CANONICAL_STATUSES = [from_tasks_status(s) for s in TASKS_STATUSES if s != "needs-qa"]
_EXTRA = ("owner", "priority")
_chars = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(["|", "\\", "\n", " ", "é", "✓"])
# Cell values have no surrounding whitespace (it is padding), and a literal <br> reads back as a newline.
_text = st.text(_chars, max_size=20).map(str.strip).filter(lambda s: "<br" not in s.lower())
_optional_text = st.none() | st.text(_chars, min_size=1, max_size=20).map(str.strip).filter(
    lambda s: bool(s) and "<br" not in s.lower()
)
_word = st.from_regex(r"[A-Z][A-Z0-9]{0,3}", fullmatch=True)
_ticket_ids = st.builds(
    lambda prefix, category, number, suffix: format_ticket_id(prefix, category, number, *suffix),
    _word,
    _word,
    st.integers(0, 1200),
    st.lists(st.from_regex(r"[A-Z0-9]{1,3}", fullmatch=True), max_size=1),
)
_zones: st.SearchStrategy[tzinfo] = st.just(UTC) | st.integers(-720, 840).map(lambda m: timezone(timedelta(minutes=m)))
_times = st.none() | st.datetimes(min_value=datetime(1000, 1, 1)) | st.datetimes(timezones=_zones)
_tokens = st.none() | st.integers(0, 10**9)


@st.composite
def _models(draw: st.DrawFn) -> tuple[list[Ticket], dict[str, dict[str, str]]]:
    ids = draw(st.lists(_ticket_ids, unique=True, max_size=7))
    tickets = []
    for index, ticket_id in enumerate(ids):
        finding = draw(st.none() | st.from_regex(r"[A-Z]{2,4}-[A-Z]{2,4}-[1-9][0-9]?", fullmatch=True))
        title = draw(_text if finding else _text.filter(lambda t: read_description(t) == (None, t)))
        state, flags = draw(st.sampled_from(_CANONICAL_STATUSES)) or (State.QUEUED, frozenset())
        tickets.append(
            Ticket(
                id=ticket_id,
                title=title,
                finding_id=finding,
                state=state,
                flags=flags,
                issue=draw(_optional_text),
                repo=draw(_optional_text),
                branch=draw(_optional_text),
                depends_on=tuple(draw(st.lists(st.sampled_from(ids[:index]), unique=True)) if index else ()),
                agent=draw(_optional_text),
                started_at=draw(_times),
                completed_at=draw(_times),
                estimate_tokens=draw(_tokens),
                used_tokens=draw(_tokens),
                notes=draw(_text),
            )
        )
    extra = {t.id: {name: draw(_text) for name in _EXTRA} for t in tickets}
    return tickets, extra


def _aligned_base() -> TasksDocument:
    names = [*SEED_COLUMNS, *_EXTRA]
    header = "|" + "|".join(f" {n:<14} " for n in names) + "|\n"
    delimiter = "|" + "|".join("-" * 16 for _ in names) + "|\n"
    return parse_tasks_md("Prose before.\n\n" + header + delimiter + "\nProse after.\n")


@given(_models(), st.booleans())
def test_parse_of_render_is_the_model(model: tuple[list[Ticket], dict[str, dict[str, str]]], aligned: bool) -> None:
    tickets, extra = model
    base = _aligned_base() if aligned else new_tasks_document(extra_columns=_EXTRA)
    text = base.sync(tickets, extra=extra).render()
    again = parse_tasks_md(text)
    assert again.tickets() == tickets
    assert {t.id: again.extra_values(t.id) for t in tickets} == extra
    assert again.problems == ()
    assert again.render() == text


# -- 5. bad input ---------------------------------------------------------------------------------------------


def test_no_task_table() -> None:
    assert _problems("# Tasks\n\n| a | b |\n|---|---|\n") == [(None, _problems("nothing")[0][1])]
    assert "`id` and `status`" in _problems("")[0][1]


def test_missing_required_column_names_the_header_line() -> None:
    [(line, message)] = _problems("# T\n\n| id | status | notes |\n|---|---|---|\n")
    assert line == 3
    assert "`description`" in message


def test_wrong_column_count_names_the_row() -> None:
    text = _seed_text(_row("AB-CQ-001"), "| AB-CQ-002 | done | too few |")
    assert _problems(text) == [(6, "row has 3 cells, the header has 14")]


def test_duplicate_ids_name_both_lines() -> None:
    text = _seed_text(_row("AB-CQ-001"), _row("AB-CQ-002"), _row("AB-CQ-001"))
    [(line, message)] = _problems(text)
    assert line == 7
    assert "duplicate ticket id AB-CQ-001" in message and "line 5" in message


def test_malformed_id() -> None:
    [(line, message)] = _problems(_seed_text(_row("AB-CQ-001"), _row("cq-2")))
    assert line == 6
    assert "'cq-2'" in message


def test_unknown_dependency() -> None:
    [(line, message)] = _problems(_seed_text(_row("AB-CQ-001"), _row("AB-CQ-002", depends_on="AB-CQ-404")))
    assert line == 6
    assert "AB-CQ-002 depends on unknown ticket(s): AB-CQ-404" in message


def test_dependency_cycle_carries_the_path() -> None:
    text = _seed_text(
        _row("AB-CQ-001", depends_on="AB-CQ-002"),
        _row("AB-CQ-002", depends_on="AB-CQ-001"),
        _row("AB-CQ-003", depends_on="AB-CQ-003"),
    )
    problems = _problems(text)
    assert [line for line, _ in problems] == [5, 7]
    assert (
        "AB-CQ-002 -> AB-CQ-001 -> AB-CQ-002" in problems[0][1]
        or "AB-CQ-001 -> AB-CQ-002 -> AB-CQ-001" in (problems[0][1])
    )
    assert "AB-CQ-003 -> AB-CQ-003" in problems[1][1]


def test_unparseable_dates_and_token_counts() -> None:
    row = "| AB-CQ-001 | done | x | | | | | | | yesterday | | lots | 4,2K | |"
    problems = _problems(_seed_text(row))
    assert [line for line, _ in problems] == [5, 5, 5]
    joined = " ".join(message for _, message in problems)
    assert "`started_at`" in joined and "`estimate`" in joined and "`used`" in joined


def test_malformed_dependency_id() -> None:
    [(line, message)] = _problems(_seed_text(_row("AB-CQ-001", depends_on="ab-1")))
    assert line == 5
    assert "`depends_on`" in message and "'ab-1'" in message


def test_all_problems_are_listed_at_once_in_line_order() -> None:
    text = _seed_text(
        _row("AB-CQ-001", estimate="many"),
        "| AB-CQ-002 | done |",
        _row("AB-CQ-001"),
        _row("bad"),
        _row("AB-CQ-005", depends_on="AB-CQ-404"),
    )
    assert [line for line, _ in _problems(text)] == [5, 6, 7, 8, 9]


def test_duplicate_column_is_an_error() -> None:
    [(line, message)] = _problems("| id | status | description | Status |\n|---|---|---|---|\n")
    assert line == 1
    assert "appears twice" in message


def test_a_file_that_fails_to_parse_is_never_written(tmp_path: Path) -> None:
    target = tmp_path / "TASKS.md"
    broken = _seed_text(_row("AB-CQ-001", depends_on="AB-CQ-001"))
    target.write_text(broken)
    with pytest.raises(InputError) as caught:
        read_tasks_file(target, "docs/TASKS.md")
    assert caught.value.problems[0].line == 5
    assert target.read_text() == broken


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape("docs/TASKS.md: error: file not found")):
        read_tasks_file(tmp_path / "nope.md", "docs/TASKS.md")


# -- hand edits survive sync --------------------------------------------------------------------------------


def test_handwritten_file_survives_sync_of_another_ticket_byte_for_byte() -> None:
    doc = _doc("handwritten.md")
    tickets = [_with_state(t, State.IMPLEMENTING) if t.id == "PAY-CQ-003" else t for t in doc.tickets()]
    synced = doc.sync(tickets)
    line = _only_cell_changed(doc.render(), synced.render(), 1)
    assert line == 20
    assert synced.render().split("\n")[20] == (
        "| PAY-CQ-003 | in-progress | Split `charge()` into two functions | | api | fix/cq | | | | | | 10K | "
        "| back-slash \\ kept | |"
    )
    assert synced.status_text("PAY-CQ-002") == "wip"
    assert synced.extra_values("PAY-SEC-001") == {"owner": "ana"}


def test_unknown_status_is_rewritten_once_the_ticket_moves() -> None:
    doc = _doc("handwritten.md")
    moved = _with_state(doc.tickets()[1], State.IMPLEMENTING)
    synced = doc.sync([moved])
    _only_cell_changed(doc.render(), synced.render(), 1)
    assert synced.status_text("PAY-CQ-002") == "in-progress"
    assert synced.unknown_statuses() == {}
    assert synced.problems == ()


def test_hand_written_token_count_stays_while_equal() -> None:
    doc = _doc("handwritten.md")
    sec = doc.tickets()[0]
    assert "| 8k |" in doc.sync([sec]).render()
    changed = doc.sync([sec.model_copy(update={"estimate_tokens": 9000})])
    assert "| 8k |" not in changed.render()
    assert "| 9K |" in changed.render()
    _only_cell_changed(doc.render(), changed.render(), 11)


def test_needs_qa_stays_for_a_ticket_in_qa() -> None:
    doc = _doc("seed.md")
    docs = doc.tickets()[-1]
    assert doc.sync([docs]).render() == doc.render()
    assert doc.sync([docs.model_copy(update={"state": State.DOCUMENTING})]).status_text("MS-DOC-001") == "in-progress"


def test_blocks_is_rewritten_only_when_the_set_differs() -> None:
    text = _seed_text(
        "| AB-CQ-001 | done | x | | | | | AB-CQ-003,AB-CQ-002 | | | | | | |",
        _row("AB-CQ-002", depends_on="AB-CQ-001"),
        _row("AB-CQ-003", depends_on="AB-CQ-001"),
    )
    doc = parse_tasks_md(text)
    assert doc.sync(doc.tickets()).render() == text  # same set, other order and spacing
    fourth = Ticket(id="AB-CQ-004", title="y", depends_on=("AB-CQ-001",))
    synced = doc.sync([*doc.tickets(), fourth])
    assert "| AB-CQ-001 | done | x | | | | | AB-CQ-002, AB-CQ-003, AB-CQ-004 | |" in synced.render()


def test_rows_are_removed_only_when_asked() -> None:
    doc = _doc("seed.md")
    assert doc.sync([]).render() == doc.render()
    trimmed = doc.sync([], remove=["MS-DOC-001"])
    assert [t.id for t in trimmed.tickets()] == [t.id for t in doc.tickets()][:-1]
    assert trimmed.render() == doc.render().replace(doc.render().split("\n")[7] + "\n", "")


def test_sync_refuses_an_invalid_backlog_and_leaves_the_document() -> None:
    doc = _doc("seed.md")
    before = doc.render()
    first = doc.tickets()[0]
    with pytest.raises(DependencyCycleError):
        doc.sync([first.model_copy(update={"depends_on": ("MS-SEC-002",)})])
    with pytest.raises(UnknownDependencyError):
        doc.sync([], remove=["MS-SEC-001"])
    with pytest.raises(ValueError, match="no extra column"):
        doc.sync([first], extra={first.id: {"owner": "x"}})
    assert doc.render() == before


def test_extra_values_of_a_row_not_given_and_unknown_rows() -> None:
    doc = _doc("handwritten.md")
    synced = doc.sync([], extra={"PAY-CQ-002": {"owner": "dee"}})
    _only_cell_changed(doc.render(), synced.render(), 14)
    assert synced.extra_values("PAY-CQ-002") == {"owner": "dee"}
    with pytest.raises(ValueError, match="no row for ticket PAY-CQ-404"):
        doc.sync([], extra={"PAY-CQ-404": {"owner": "x"}})
    with pytest.raises(KeyError, match="PAY-CQ-404"):
        doc.row_line("PAY-CQ-404")


def test_sync_sets_extra_column_values() -> None:
    doc = _doc("handwritten.md")
    synced = doc.sync([doc.tickets()[2]], extra={"PAY-CQ-003": {"Owner": "cy | dee"}})
    assert synced.extra_values("PAY-CQ-003") == {"owner": "cy | dee"}
    _only_cell_changed(doc.render(), synced.render(), 14)


# -- new documents and files ----------------------------------------------------------------------------------


def test_new_document_renders_the_seed_schema_exactly() -> None:
    doc = new_tasks_document()
    assert doc.render() == (
        "# Tasks\n\n"
        "| id | status | description | issue | repo | branch | depends_on | blocks | agent | started_at "
        "| completed_at | estimate | used | notes |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    assert doc.tickets() == [] and doc.problems == () and doc.extra_columns == ()
    assert new_tasks_document("Milestone 0.0.1").render().startswith("# Milestone 0.0.1\n\n| id |")


def test_new_document_then_seed_style_row() -> None:
    ticket = Ticket(
        id="MS-SEC-001",
        title="Brief description",
        finding_id="SEC-API-1",
        issue="#7",
        repo="api",
        branch="fix/security",
    )
    dependent = Ticket(id="MS-SEC-002", title="Next", depends_on=("MS-SEC-001",))
    text = new_tasks_document().sync([ticket.model_copy(update={"estimate_tokens": 8000}), dependent]).render()
    assert (
        "| MS-SEC-001 | not-started | SEC-API-1: Brief description | #7 | api | fix/security | | MS-SEC-002 "
        "| | | | 8K | | |\n"
    ) in text


def test_write_and_read_a_file(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "TASKS.md"
    doc = new_tasks_document().sync([Ticket(id="AB-CQ-001", title="x")])
    write_tasks_file(target, doc)
    assert target.read_bytes() == doc.render().encode("utf-8")
    again = read_tasks_file(target)
    assert again.display == str(target)
    assert again.tickets() == doc.tickets()
    assert [p.name for p in target.parent.iterdir()] == ["TASKS.md"]


def test_sync_returns_a_new_document() -> None:
    doc = _doc("seed.md")
    before = doc.render()
    synced = doc.sync([_with_state(doc.tickets()[2], State.DONE)])
    assert synced is not doc
    assert doc.render() == before
    assert synced.render() != before
