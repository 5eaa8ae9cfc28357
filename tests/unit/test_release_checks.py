"""Release blockers from the tickets, and the ticket ids of docs/reports/deferred/deferred-errors.md."""

from __future__ import annotations

from conveyor.domain.release_checks import (
    DEFERRED_PATH,
    BlockerKind,
    deferral_reasons,
    deferred_ticket_ids,
    parse_deferred_entries,
    release_blockers,
)
from conveyor.domain.ticket import Flag, State, Ticket

# The way services/completion.py writes the file, plus what a person might add.
DEFERRED = """# Deferred tickets

Tickets the execution loop could not finish, with why and what to try next (seed 001 Two-Phase Completion).

## CV-CQ-003: Parse dates

- **State:** deferred
- **Category:** quality-gates
- **Reason:** QA failed 3 times on test_dates
- **Suggested approach:** Reproduce the failing gate locally.
- **Run:** RUN-20260101-1200; iterations 3; cost $0.1000

My note: the upstream parser is broken.

- **Reason:** a person's later remark does not replace the entry's reason

## Notes from the team

- **Reason:** not an entry

```markdown
## CV-CQ-099: an example inside a code block
```

## CV-SEC-002-QA: Follow-up of the escaping fix
- **State:** failed
- **Reason:** iteration limit

## CV-CQ-003: Parse dates

- **Reason:** deferred again in the second run
"""


def ticket(ticket_id: str, state: State, **extra: object) -> Ticket:
    return Ticket.model_validate({"id": ticket_id, "title": f"Title of {ticket_id}", "state": state, **extra})


def test_parse_deferred_entries_reads_headings_and_fields() -> None:
    entries = parse_deferred_entries(DEFERRED)
    assert [(e.ticket_id, e.title, e.line) for e in entries] == [
        ("CV-CQ-003", "Parse dates", 5),
        ("CV-SEC-002-QA", "Follow-up of the escaping fix", 25),
        ("CV-CQ-003", "Parse dates", 29),
    ]
    first = entries[0]
    assert first.reason == "QA failed 3 times on test_dates"
    assert first.fields["category"] == "quality-gates"
    assert first.fields["suggested approach"] == "Reproduce the failing gate locally."
    assert deferred_ticket_ids(DEFERRED) == {"CV-CQ-003", "CV-SEC-002-QA"}
    assert deferral_reasons(DEFERRED) == {
        "CV-CQ-003": "deferred again in the second run",  # the last entry wins
        "CV-SEC-002-QA": "iteration limit",
    }


def test_parse_deferred_entries_of_nothing() -> None:
    assert parse_deferred_entries("") == []
    assert deferred_ticket_ids("# Deferred tickets\n\n## not-an-id: x\n### CV-CQ-001: level three\n") == set()
    assert deferred_ticket_ids("## CV-CQ-001\n") == {"CV-CQ-001"}  # a heading without a title still names it


def test_a_finished_milestone_has_no_blockers() -> None:
    tickets = [
        ticket("CV-CQ-001", State.DONE),
        ticket("CV-CQ-002", State.SKIPPED),
        ticket("CV-CQ-003", State.DEFERRED),
        ticket("CV-CQ-004", State.OBSOLETE),
    ]
    assert release_blockers(tickets, deferred_ticket_ids(DEFERRED)) == []


def test_unfinished_tickets_block_with_their_state_and_flags() -> None:
    tickets = [
        ticket("CV-CQ-001", State.DONE),
        ticket("CV-CQ-002", State.QUEUED),
        ticket("CV-CQ-005", State.REVIEWING, flags=frozenset({Flag.BLOCKED, Flag.ESCALATED})),
        ticket("CV-CQ-006", State.FAILED),
    ]
    blockers = release_blockers(tickets, set())
    assert [(b.kind, b.ticket_id) for b in blockers] == [
        (BlockerKind.UNFINISHED, "CV-CQ-002"),
        (BlockerKind.UNFINISHED, "CV-CQ-005"),
        (BlockerKind.UNFINISHED, "CV-CQ-006"),
    ]
    assert str(blockers[0]) == (
        "CV-CQ-002 (Title of CV-CQ-002) is queued: a release needs every ticket done, deferred, skipped or obsolete"
    )
    assert "is reviewing, blocked, escalated:" in str(blockers[1])
    assert "is failed:" in str(blockers[2])


def test_a_deferral_missing_from_deferred_errors_blocks() -> None:
    tickets = [ticket("CV-CQ-003", State.DEFERRED), ticket("CV-CQ-007", State.DEFERRED)]
    blockers = release_blockers(tickets, deferred_ticket_ids(DEFERRED))
    assert [(b.kind, b.ticket_id) for b in blockers] == [(BlockerKind.UNDOCUMENTED_DEFERRAL, "CV-CQ-007")]
    assert DEFERRED_PATH in blockers[0].message
    assert "'## CV-CQ-007: Title of CV-CQ-007'" in blockers[0].message


def test_an_empty_milestone_blocks() -> None:
    blockers = release_blockers([], set())
    assert [(b.kind, b.ticket_id) for b in blockers] == [(BlockerKind.NO_TICKETS, None)]
    assert "nothing to release" in str(blockers[0])
