"""The lossless GFM pipe-table codec: rows keep their exact bytes, cells split on unescaped pipes only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.adapters.markdown_table import (
    Row,
    Table,
    decode_cell,
    encode_cell,
    find_tables,
    fit_cell,
    fresh_cell,
    split_lines,
)

ALIGNED = "| id    | status      |\n|-------|-------------|\n| A-B-1 | done        |\n"
COMPACT = "| id | status |\n|---|---|\n| A-B-1 | not-started |\n"

# Lines built from the characters that matter to the splitter: pipes, backslashes, spaces, tabs, CR.
_line_chars = st.sampled_from(["|", "\\", " ", "\t", "\r", "a", "b", "é", "✓", "-", ":", "<br>"])
_lines = st.lists(_line_chars, max_size=30).map("".join)
# Cell values in canonical form: no surrounding whitespace, no literal <br>, no CR (read back as a newline).
_values = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(["|", "\\", "\n", " "]),
        max_size=25,
    )
    .map(str.strip)
    .filter(lambda s: "<br" not in s.lower())
)


def _table(text: str) -> Table:
    tables = find_tables(split_lines(text))
    assert len(tables) == 1
    return tables[0]


# -- lines and rows --------------------------------------------------------------------------------------


def test_split_lines_keeps_every_ending() -> None:
    assert split_lines("a\nb\r\nc") == ["a\n", "b\r\n", "c"]
    assert split_lines("a\n") == ["a\n"]
    assert split_lines("") == []
    assert split_lines("a\rb\n") == ["a\rb\n"]


@given(st.lists(_lines | st.just("\n") | st.just("\r\n"), max_size=10).map("".join))
def test_split_lines_joins_back(text: str) -> None:
    assert "".join(split_lines(text)) == text


@given(_lines, st.sampled_from(["", "\n", "\r\n"]))
def test_any_row_renders_back_to_its_exact_line(body: str, eol: str) -> None:
    line = body + eol
    row = Row.parse(line)
    assert row.text == line
    assert row.eol == ("\r\n" if eol == "\n" and body.endswith("\r") else eol)


def test_row_parts() -> None:
    row = Row.parse("  | a |  b\\|c |d|  \r\n")
    assert row.indent == "  "
    assert row.leading_pipe and row.trailing_pipe
    assert row.cells == (" a ", "  b\\|c ", "d")
    assert row.tail == "  "
    assert row.eol == "\r\n"
    assert row.values == ("a", "b|c", "d")


def test_row_without_edge_pipes() -> None:
    row = Row.parse("a | b \\| c  ")
    assert not row.leading_pipe and not row.trailing_pipe
    assert row.cells == ("a ", " b \\| c  ")
    assert row.values == ("a", "b | c")
    assert row.text == "a | b \\| c  "


def test_escaped_pipe_at_the_end_is_not_a_trailing_pipe() -> None:
    row = Row.parse("| a | b \\|")
    assert not row.trailing_pipe
    assert row.values == ("a", "b |")


def test_backslash_before_backslash_pipe_still_escapes_the_pipe() -> None:
    # As in GFM: any pipe preceded by a backslash belongs to the cell.
    row = Row.parse("| a\\\\| b |")
    assert row.values == ("a\\| b",)


def test_rewriting_the_first_cell_of_a_row_without_leading_pipe_keeps_the_indent() -> None:
    row = Row.parse("  a | b\n").with_cell(0, " xyz ")
    assert row.text == "  xyz | b\n"
    assert Row.parse(row.text).indent == "  "


def test_emptying_the_first_cell_of_a_row_without_leading_pipe_adds_the_pipe() -> None:
    row = Row.parse("a | b\n").with_cell(0, " ")
    assert row.text == "| | b\n"
    assert Row.parse(row.text).values == ("", "b")


# -- cell values -------------------------------------------------------------------------------------------


def test_encode_escapes_pipes_and_newlines() -> None:
    assert encode_cell("a | b\nc") == "a \\| b<br>c"
    assert encode_cell("x\r\ny\rz") == "x<br>y<br>z"


def test_decode_strips_and_unescapes() -> None:
    assert decode_cell("  a \\| b<br>c  ") == "a | b\nc"
    assert decode_cell("x<br/>y<BR />z") == "x\ny\nz"
    assert decode_cell(" back\\slash ") == "back\\slash"


@given(_values)
def test_decode_of_encode_is_identity_for_canonical_values(value: str) -> None:
    assert decode_cell(encode_cell(value)) == value
    assert decode_cell(fresh_cell(encode_cell(value))) == value


@given(_values)
def test_an_encoded_value_is_one_cell(value: str) -> None:
    row = Row.parse("|" + fresh_cell(encode_cell(value)) + "|")
    assert row.values == (value,)


def test_fit_cell_keeps_width_and_leading_padding() -> None:
    assert fit_cell(" not-started ", "done") == " done        "
    assert fit_cell(" ab ", "abcd") is None  # no room for the trailing space
    assert fit_cell("   ", "") == "   "
    assert fit_cell(" x  ", "a\\") == " a\\ "
    assert fit_cell(" x ", "a\\") is None  # a final backslash needs a space before the pipe


def test_fresh_cell() -> None:
    assert fresh_cell("x") == " x "
    assert fresh_cell("") == " "


# -- tables ----------------------------------------------------------------------------------------------


def test_table_renders_back_exactly() -> None:
    table = _table(ALIGNED)
    assert table.render() == ALIGNED
    assert table.names == ("id", "status")
    assert [r.values for r in table.rows] == [("A-B-1", "done")]


def test_changing_a_cell_in_an_aligned_column_keeps_the_alignment() -> None:
    table = _table(ALIGNED).with_value(0, 1, "failed")
    assert table.render() == "| id    | status      |\n|-------|-------------|\n| A-B-1 | failed      |\n"


def test_a_value_too_wide_for_the_aligned_column_is_written_plainly() -> None:
    table = _table(ALIGNED).with_value(0, 1, "a much longer value")
    assert table.rows[0].text == "| A-B-1 | a much longer value |\n"


def test_changing_a_cell_in_an_unaligned_column_writes_it_plainly() -> None:
    table = _table(COMPACT).with_value(0, 1, "done")
    assert table.rows[0].text == "| A-B-1 | done |\n"


def test_compact_header_is_not_aligned() -> None:
    table = _table("|id|st|\n|--|--|\n|x|y|\n")
    assert not table.is_aligned(0)
    assert table.with_value(0, 1, "z").rows[0].text == "|x| z |\n"


def test_setting_the_same_value_changes_nothing() -> None:
    table = _table("| a |\n|---|\n|   x   |\n")
    assert table.with_value(0, 0, "x") is table


def test_only_the_changed_cell_changes() -> None:
    text = "  |  a  | b\\|c |  d |   \r\n|---|---|---|\r\n|  1 |2|  3 |  \r\n"
    table = _table(text).with_value(0, 1, "new | value")
    old_row, new_row = _table(text).rows[0], table.rows[0]
    assert new_row.cells[0] == old_row.cells[0] and new_row.cells[2] == old_row.cells[2]
    assert (new_row.indent, new_row.tail, new_row.eol) == (old_row.indent, old_row.tail, old_row.eol)
    assert new_row.values == ("1", "new | value", "3")


def test_append_uses_header_widths_when_aligned() -> None:
    table = _table(ALIGNED).append(["C-D-2", "blocked"])
    assert table.render() == ALIGNED + "| C-D-2 | blocked     |\n"


def test_append_to_a_table_whose_last_line_has_no_ending() -> None:
    text = "| a | b |\r\n|---|---|\r\n| 1 | 2 |"
    table = _table(text).append(["3", ""])
    assert table.render() == "| a | b |\r\n|---|---|\r\n| 1 | 2 |\r\n| 3 |   |"


def test_extend_with_several_rows_at_the_end_of_a_file() -> None:
    text = "| a |\r\n|---|\r\n| 1 |"
    table = _table(text).extend([["2"], ["3"]])
    assert table.render() == "| a |\r\n|---|\r\n| 1 |\r\n| 2 |\r\n| 3 |"
    assert _table(text).extend([]) == _table(text)


def test_append_to_an_empty_table() -> None:
    table = _table("| a | b |\n|---|---|").append(["x", "y"])
    assert table.render() == "| a | b |\n|---|---|\n| x | y |"


def test_append_refuses_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        _table(COMPACT).append(["x"])


def test_without_rows_keeps_the_final_line_ending() -> None:
    text = "| a |\n|---|\n| 1 |\n| 2 |"
    assert _table(text).without_rows([1]).render() == "| a |\n|---|\n| 1 |"
    assert _table(text).without_rows([0, 1]).render() == "| a |\n|---|"
    assert _table(text + "\n").without_rows([0]).render() == "| a |\n|---|\n| 2 |\n"


def test_find_tables_skips_fenced_code_and_stops_at_blank_lines() -> None:
    text = "intro\n```\n| x | y |\n|---|---|\n```\n\n| a |\n|---|\n| 1 |\n\n| 2 |\nprose | with pipe\n"
    tables = find_tables(split_lines(text))
    assert len(tables) == 1
    assert tables[0].first_line == 6
    assert [r.values for r in tables[0].rows] == [("1",)]


def test_find_tables_finds_several_and_ends_at_a_line_without_pipe() -> None:
    text = "| a |\n|---|\n| 1 |\ntext\n| b | c |\n|:--|--:|\n| 2 | 3 |\n"
    tables = find_tables(split_lines(text))
    assert [t.names for t in tables] == [("a",), ("b", "c")]
    assert [t.first_line for t in tables] == [0, 4]


def test_a_header_without_matching_delimiter_is_not_a_table() -> None:
    assert find_tables(split_lines("| a | b |\n|---|\n| 1 | 2 |\n")) == []
    assert find_tables(split_lines("| a | b |\n| x | y |\n")) == []
    assert find_tables(split_lines("    | a |\n    |---|\n")) == []  # indented code
