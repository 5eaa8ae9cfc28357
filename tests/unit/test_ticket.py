"""The ticket state machine of ARCHITECTURE.md §3 and the id formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from conveyor.domain.errors import IllegalTransitionError
from conveyor.domain.ids import format_ticket_id, next_run_id, parse_ticket_id
from conveyor.domain.ticket import (
    Flag,
    ModelTier,
    State,
    Ticket,
    TicketKind,
    can_transition,
    clear_flag,
    send_back,
    set_flag,
    transition,
)

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def ticket(**kw: object) -> Ticket:
    return Ticket.model_validate({"id": "MS-SEC-001", "title": "fix it", **kw})


@pytest.mark.parametrize(
    ("value", "category", "number", "suffixes"),
    [
        ("MS-SEC-001", "SEC", 1, ()),
        ("MS-SEC-001-QA", "SEC", 1, ("QA",)),
        ("UC-CLEAN-003-V01", "CLEAN", 3, ("V01",)),
        ("PR2-TEST-1234", "TEST", 1234, ()),
    ],
)
def test_ticket_ids(value: str, category: str, number: int, suffixes: tuple[str, ...]) -> None:
    parsed = parse_ticket_id(value)
    assert (parsed.category, parsed.number, parsed.suffixes) == (category, number, suffixes)
    assert format_ticket_id(parsed.prefix, parsed.category, parsed.number, *parsed.suffixes) == value


@pytest.mark.parametrize("value", ["ms-sec-001", "MS-SEC-01", "MS-SEC", "SEC-001", "MS SEC 001", "MS-SEC-001-"])
def test_bad_ticket_ids(value: str) -> None:
    with pytest.raises(ValueError, match="PREFIX-CAT-NNN"):
        parse_ticket_id(value)
    with pytest.raises(ValidationError):
        ticket(id=value)


def test_custom_category() -> None:
    assert parse_ticket_id("MS-CLEAN-001").is_custom_category
    assert not parse_ticket_id("MS-PERF-001").is_custom_category


def test_run_ids_collide_with_suffixes() -> None:
    now = datetime(2026, 11, 21, 9, 5, tzinfo=UTC)
    assert next_run_id(now, []) == "RUN-20261121-0905"
    assert next_run_id(now, ["RUN-20261121-0905"]) == "RUN-20261121-0905-2"
    assert next_run_id(now, ["RUN-20261121-0905", "RUN-20261121-0905-2"]) == "RUN-20261121-0905-3"


@pytest.mark.parametrize(
    ("complexity", "tier"),
    [(1, ModelTier.EASY), (3, ModelTier.EASY), (4, ModelTier.NORMAL), (7, ModelTier.NORMAL), (8, ModelTier.COMPLEX)],
)
def test_model_tier_by_complexity(complexity: int, tier: ModelTier) -> None:
    assert ticket(complexity=complexity).model_tier is tier
    assert ticket(complexity=complexity, tier_override=ModelTier.COMPLEX).model_tier is ModelTier.COMPLEX


def test_complexity_bounds() -> None:
    for bad in (0, 11):
        with pytest.raises(ValidationError):
            ticket(complexity=bad)


def test_happy_path_through_every_stage() -> None:
    t = ticket()
    for target in (State.IMPLEMENTING, State.REVIEWING, State.QA, State.DOCUMENTING, State.INTEGRATING, State.OPS):
        t = transition(t, target, at=AT)
    t = transition(t, State.DONE, at=AT)
    assert t.state is State.DONE and t.attempt == 1 and t.iterations == 0
    assert t.started_at == AT and t.completed_at == AT


def test_illegal_transition_names_both_states() -> None:
    with pytest.raises(IllegalTransitionError, match=r"MS-SEC-001: illegal transition queued -> integrating"):
        transition(ticket(), State.INTEGRATING)
    done = ticket(state=State.DONE)
    with pytest.raises(IllegalTransitionError, match="done -> queued"):
        transition(done, State.QUEUED)
    with pytest.raises(IllegalTransitionError, match="obsolete -> implementing"):
        transition(ticket(state=State.OBSOLETE), State.IMPLEMENTING)


def test_only_verification_tickets_skip_from_qa_to_done() -> None:
    change = transition(transition(ticket(), State.IMPLEMENTING), State.QA)
    assert not can_transition(change, State.DONE)
    verify = ticket(kind=TicketKind.VERIFICATION)
    verify = transition(verify, State.QA)
    assert transition(verify, State.DONE).state is State.DONE
    with pytest.raises(IllegalTransitionError):
        transition(ticket(), State.QA)


@pytest.mark.parametrize("terminal", [State.FAILED, State.DEFERRED, State.SKIPPED, State.OBSOLETE])
def test_give_up_from_any_stage(terminal: State) -> None:
    t = transition(ticket(), State.IMPLEMENTING)
    assert transition(t, terminal, at=AT).state is terminal
    assert transition(ticket(), terminal).state is terminal


def test_person_may_reopen_failed_deferred_skipped() -> None:
    for terminal in (State.FAILED, State.DEFERRED, State.SKIPPED):
        reopened = transition(ticket(state=terminal, completed_at=AT, flags=frozenset({Flag.ESCALATED})), State.QUEUED)
        assert reopened.state is State.QUEUED and reopened.completed_at is None and not reopened.flags


def test_round_trips_count_and_block_after_the_limit() -> None:
    t = transition(transition(ticket(), State.IMPLEMENTING), State.REVIEWING)
    for expected in (1, 2, 3):
        t = send_back(t)
        assert t.state is State.IMPLEMENTING and t.iterations == expected
        t = transition(t, State.QA)
    blocked = send_back(t)  # the fourth round trip is refused: blocked and escalated (seed 000)
    assert blocked.state is State.QA and blocked.iterations == 3
    assert {Flag.BLOCKED, Flag.ESCALATED} <= blocked.flags
    with pytest.raises(IllegalTransitionError, match="ticket is blocked, escalated"):
        transition(blocked, State.DOCUMENTING)
    assert transition(blocked, State.DEFERRED).state is State.DEFERRED  # the escalation policy may give up
    resumed = clear_flag(clear_flag(blocked, Flag.BLOCKED), Flag.ESCALATED)
    assert transition(resumed, State.DOCUMENTING).state is State.DOCUMENTING


def test_awaiting_approval_holds_the_ticket() -> None:
    t = set_flag(transition(ticket(), State.IMPLEMENTING), Flag.AWAITING_APPROVAL)
    assert t.is_held
    with pytest.raises(IllegalTransitionError, match="awaiting-approval"):
        transition(t, State.REVIEWING)
    with pytest.raises(IllegalTransitionError, match="terminal tickets take no flags"):
        set_flag(ticket(state=State.DONE), Flag.BLOCKED)


def test_tickets_are_immutable_values() -> None:
    t = ticket()
    moved = transition(t, State.IMPLEMENTING)
    assert t.state is State.QUEUED and moved.state is State.IMPLEMENTING
    with pytest.raises(ValidationError):
        t.title = "changed"  # type: ignore[misc]
