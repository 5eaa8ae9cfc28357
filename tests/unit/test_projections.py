"""The documented, lossy projections of ARCHITECTURE.md §8: TASKS.md status, run-state status, token counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.projections import (
    RUN_STATE_STATUSES,
    TASKS_STATUSES,
    format_tokens,
    from_run_state_status,
    from_tasks_status,
    is_tasks_status,
    parse_tokens,
    run_state_status,
    tasks_status,
)
from conveyor.domain.ticket import Flag, State

BLOCKED = frozenset({Flag.BLOCKED})
NON_TERMINAL = [s for s in State if not s.is_terminal]
TERMINAL = [s for s in State if s.is_terminal]


# -- (a) TASKS.md status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (State.QUEUED, "not-started"),
        (State.IMPLEMENTING, "in-progress"),
        (State.REVIEWING, "in-progress"),
        (State.QA, "in-progress"),
        (State.DOCUMENTING, "in-progress"),
        (State.INTEGRATING, "in-progress"),
        (State.OPS, "in-progress"),
        (State.DONE, "done"),
        (State.FAILED, "failed"),
        (State.DEFERRED, "deferred"),
        (State.SKIPPED, "skipped"),
        (State.OBSOLETE, "obsolete"),
    ],
)
def test_tasks_status_of_each_state(state: State, expected: str) -> None:
    assert tasks_status(state) == expected
    assert expected in TASKS_STATUSES


@pytest.mark.parametrize("state", NON_TERMINAL)
def test_blocked_flag_on_a_non_terminal_ticket_shows_blocked(state: State) -> None:
    assert tasks_status(state, BLOCKED) == "blocked"
    assert tasks_status(state, {Flag.BLOCKED, Flag.ESCALATED}) == "blocked"


@pytest.mark.parametrize("state", TERMINAL)
def test_terminal_states_show_their_name_even_if_flagged(state: State) -> None:
    assert tasks_status(state, BLOCKED) == state.value


def test_escalated_and_awaiting_approval_do_not_show_in_tasks_md() -> None:
    assert tasks_status(State.QUEUED, {Flag.ESCALATED, Flag.AWAITING_APPROVAL}) == "not-started"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not-started", (State.QUEUED, frozenset())),
        ("in-progress", (State.IMPLEMENTING, frozenset())),
        ("needs-qa", (State.QA, frozenset())),
        ("blocked", (State.QUEUED, BLOCKED)),
        ("done", (State.DONE, frozenset())),
        ("failed", (State.FAILED, frozenset())),
        ("deferred", (State.DEFERRED, frozenset())),
        ("skipped", (State.SKIPPED, frozenset())),
        ("obsolete", (State.OBSOLETE, frozenset())),
    ],
)
def test_reading_each_tasks_status(value: str, expected: tuple[State, frozenset[Flag]]) -> None:
    assert from_tasks_status(value) == expected
    assert is_tasks_status(value)


def test_reading_a_status_ignores_case_and_surrounding_space() -> None:
    assert from_tasks_status("  Done ") == (State.DONE, frozenset())
    assert from_tasks_status("IN-PROGRESS") == (State.IMPLEMENTING, frozenset())


@pytest.mark.parametrize("value", ["wip", "", "in progress", "todo", "queued"])
def test_unknown_tasks_status_reads_as_none(value: str) -> None:
    assert from_tasks_status(value) is None
    assert not is_tasks_status(value)


@pytest.mark.parametrize("value", [s for s in TASKS_STATUSES if s != "needs-qa"])
def test_every_status_but_needs_qa_survives_a_read_and_write(value: str) -> None:
    read = from_tasks_status(value)
    assert read is not None
    assert tasks_status(*read) == value


def test_needs_qa_is_read_but_written_as_in_progress() -> None:
    read = from_tasks_status("needs-qa")
    assert read == (State.QA, frozenset())
    assert tasks_status(*read) == "in-progress"


# -- (b) run-state status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (State.QUEUED, "pending"),
        (State.IMPLEMENTING, "in_progress"),
        (State.REVIEWING, "in_progress"),
        (State.QA, "qa"),
        (State.DOCUMENTING, "qa"),
        (State.INTEGRATING, "deploy"),
        (State.OPS, "deploy"),
        (State.DONE, "done"),
        (State.FAILED, "failed"),
        (State.DEFERRED, "deferred"),
        (State.SKIPPED, "deferred"),
        (State.OBSOLETE, "deferred"),
    ],
)
def test_run_state_status_of_each_state(state: State, expected: str) -> None:
    assert run_state_status(state) == expected
    assert expected in RUN_STATE_STATUSES


@pytest.mark.parametrize("state", NON_TERMINAL)
def test_run_state_status_blocked_flag(state: State) -> None:
    assert run_state_status(state, BLOCKED) == "blocked"


def test_run_state_status_terminal_ignores_blocked_flag() -> None:
    assert run_state_status(State.DONE, BLOCKED) == "done"
    assert run_state_status(State.SKIPPED, BLOCKED) == "deferred"


@pytest.mark.parametrize("value", RUN_STATE_STATUSES)
def test_run_state_status_reads_back_to_a_state_that_writes_it(value: str) -> None:
    read = from_run_state_status(value)
    assert read is not None
    assert run_state_status(*read) == value


def test_unknown_run_state_status_reads_as_none() -> None:
    assert from_run_state_status("revise") is None
    assert from_run_state_status(" In_Progress ") == (State.IMPLEMENTING, frozenset())


def test_every_state_projects_into_both_vocabularies() -> None:
    for state in State:
        for flags in (frozenset(), BLOCKED):
            assert tasks_status(state, flags) in TASKS_STATUSES
            assert run_state_status(state, flags) in RUN_STATE_STATUSES


# -- (c) token counts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("8K", 8000),
        ("8k", 8000),
        ("4.2K", 4200),
        ("12.8K", 12800),
        ("0.3K", 300),
        ("1.5M", 1_500_000),
        ("2m", 2_000_000),
        ("800", 800),
        ("0", 0),
        (" 15K ", 15000),
        ("15 K", 15000),
        ("12,800", 12800),
        ("1_000", 1000),
        ("1.2345K", 1235),
    ],
)
def test_parse_tokens(text: str, tokens: int) -> None:
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("text", ["", "K", "8KB", "eight", "4,2K", "-5K", "1.5G", "8K tokens", "1..2K"])
def test_parse_tokens_refuses_what_is_not_a_count(text: str) -> None:
    with pytest.raises(ValueError, match="token count"):
        parse_tokens(text)


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (0, "0"),
        (800, "800"),
        (999, "999"),
        (1000, "1K"),
        (8000, "8K"),
        (4200, "4.2K"),
        (12800, "12.8K"),
        (4250, "4.25K"),
        (1_500_000, "1.5M"),
        (1_000_000, "1M"),
        (999_999, "999.999K"),
    ],
)
def test_format_tokens_in_seed_style(tokens: int, text: str) -> None:
    assert format_tokens(tokens) == text


def test_format_tokens_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_tokens(-1)


@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_tokens_is_exact(tokens: int) -> None:
    text = format_tokens(tokens)
    assert parse_tokens(text) == tokens
    assert text == text.strip()
