"""The improvement loop's bookkeeping: triage against the queue, decomposition, the queue file, the summary."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from conveyor.adapters.issue_queue_file import parse_queue, render_queue
from conveyor.domain.errors import InputError
from conveyor.domain.improvement import decompose, triage
from conveyor.domain.issue_queue import IssueQueue, QueueEntry, QueueStatus, Suppression
from conveyor.domain.loop_summary import LoopOutcome, render_summary
from conveyor.domain.scan import ScanFinding, ScanResult
from conveyor.domain.ticket import Severity, State, Ticket


def finding(rule: str = "F401", file: str = "a.py", symbol: str = "f", scanner: str = "ruff", **kw: Any) -> ScanFinding:
    return ScanFinding(scanner=scanner, rule=rule, file=file, symbol=symbol, message=f"{rule} here", **kw)


def result(*found: ScanFinding, scanner: str = "ruff", available: bool = True) -> ScanResult:
    return ScanResult(scanner=scanner, findings=found, available=available)


def test_new_findings_are_open_candidates_and_the_line_is_not_part_of_the_fingerprint() -> None:
    first = triage(IssueQueue(), [result(finding(line=3))], [], loop=1, ticket_states={})
    assert [f.fingerprint for f in first.candidates] == ["ruff:F401:a.py:f"]
    moved = triage(first.queue, [result(finding(line=30))], [], loop=2, ticket_states={})
    assert len(moved.queue.entries) == 1 and moved.queue.entries[0].finding.line == 30
    assert moved.queue.entries[0].first_loop == 1 and moved.queue.entries[0].last_loop == 2


def _filed(ticket: str, status: QueueStatus = QueueStatus.FILED, **kw: object) -> IssueQueue:
    entry = QueueEntry(finding=finding(**kw), status=status, ticket=ticket, first_loop=1, last_loop=1)  # type: ignore[arg-type]
    return IssueQueue(last_loop=1, entries=(entry,))


@pytest.mark.parametrize("state", [State.QUEUED, State.IMPLEMENTING, State.DONE])
def test_a_finding_with_an_open_or_done_ticket_is_not_filed_again(state: State) -> None:
    out = triage(_filed("CV-CQ-001"), [result(finding())], [], loop=2, ticket_states={"CV-CQ-001": state})
    assert out.candidates == []
    assert (out.recurring if state is State.DONE else out.in_flight) == ["ruff:F401:a.py:f"]


def test_an_archived_ticket_still_deduplicates() -> None:
    out = triage(_filed("CV-CQ-001"), [result(finding())], [], loop=2, ticket_states={})
    assert out.candidates == [] and out.queue.entries[0].status is QueueStatus.FILED


@pytest.mark.parametrize("state", [State.DEFERRED, State.SKIPPED, State.FAILED])
def test_a_given_up_ticket_moves_its_finding_to_the_suppression_list(state: State) -> None:
    out = triage(_filed("CV-CQ-001"), [result(finding())], [], loop=2, ticket_states={"CV-CQ-001": state})
    assert out.queue.entries == () and out.candidates == []
    assert out.queue.suppressed == (Suppression(fingerprint="ruff:F401:a.py:f", reason=f"ticket CV-CQ-001 {state}"),)
    again = triage(out.queue, [result(finding())], [], loop=3, ticket_states={})
    assert again.candidates == [] and again.queue.entries == ()


def test_wont_fix_is_suppressed_and_a_gone_finding_is_fixed_only_when_its_scanner_ran() -> None:
    wont = triage(_filed("", QueueStatus.WONT_FIX), [result()], [], loop=2, ticket_states={})
    assert wont.queue.suppressed[0].reason == "marked wont-fix"
    ran = triage(_filed("CV-CQ-001"), [result()], [], loop=2, ticket_states={"CV-CQ-001": State.DONE})
    assert ran.queue.entries[0].status is QueueStatus.FIXED and ran.fixed == ["ruff:F401:a.py:f"]
    down = triage(_filed("CV-CQ-001"), [result(available=False)], [], loop=2, ticket_states={})
    assert down.queue.entries[0].status is QueueStatus.FILED and down.fixed == []


def test_a_fixed_finding_that_comes_back_is_open_again() -> None:
    out = triage(_filed("CV-CQ-001", QueueStatus.FIXED), [result(finding())], [], loop=3, ticket_states={})
    assert out.queue.entries[0].status is QueueStatus.OPEN and out.queue.entries[0].ticket is None
    assert len(out.candidates) == 1


def test_decompose_groups_by_rule_splits_by_files_and_orders_by_severity() -> None:
    found = [
        *(finding("F401", f"m{i}.py", fixable=True) for i in range(5)),
        finding("B602", "s.py", scanner="bandit", severity=Severity.HIGH),
        finding("arg-type", "t.py", scanner="mypy", severity=Severity.MEDIUM),
    ]
    filed = decompose(found, max_tickets=10, max_files=2, fixable_only=False, prefix="LK", taken_ids=["LK-CQ-007"])
    assert [f.ticket.id for f in filed] == ["LK-SEC-001", "LK-CQ-008", "LK-CQ-009", "LK-CQ-010", "LK-CQ-011"]
    assert [len(f.findings) for f in filed] == [1, 1, 2, 2, 1]
    assert filed[2].ticket.touch_set == ("m0.py", "m1.py") and filed[2].ticket.complexity == 1
    only = decompose(found, max_tickets=2, max_files=20, fixable_only=True, prefix="LK", taken_ids=[])
    assert [f.ticket.id for f in only] == ["LK-CQ-001"] and len(only[0].findings) == 5
    assert decompose(found, max_tickets=0, max_files=2, fixable_only=False, prefix="LK", taken_ids=[]) == []


def test_the_queue_file_round_trips_and_names_the_line_of_a_bad_row() -> None:
    queue = triage(
        IssueQueue(), [result(finding(line=3, fixable=True), finding("E501", "b|c.py"))], [], loop=1, ticket_states={}
    ).queue
    queue = queue.model_copy(update={"suppressed": (Suppression(fingerprint="x:y:z.py:f", reason="person"),)})
    text = render_queue(queue)
    assert parse_queue(text) == queue
    broken = text.replace("| low | 3 |", "| low | three |")
    with pytest.raises(InputError) as caught:
        parse_queue(broken)
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "three" in row)
    assert caught.value.problems[0].line == line


def test_the_summary_reports_counts_before_and_after_and_gotchas() -> None:
    outcome = LoopOutcome(
        loop=3,
        at=datetime(2026, 11, 22, tzinfo=UTC),
        backend="deterministic mode (no LLM)",
        run_id="RUN-20261122-0000",
        before=[result(finding(), finding("E1")), result(scanner="mypy", available=False)],
        after=[result(finding("E1")), result(scanner="mypy", available=False)],
        tickets=[],
        findings_fixed=1,
        suppressed=[],
        notes=["scanner unavailable: mypy missing"],
        queue=IssueQueue(),
        blocked={"LK-CQ-002": "the mechanical fixer changed nothing"},
    )
    text = render_summary(outcome)
    assert "| ruff | 2 | 1 |" in text and "| mypy | unavailable | unavailable |" in text
    assert "Findings 2 -> 1" in text and "- LK-CQ-002 held: the mechanical fixer changed nothing" in text


def test_fix_plan_reads_the_queue_and_ignores_a_broken_one(tmp_path: Path) -> None:
    from conveyor.services.mechanical import fix_plan
    from conveyor.services.workspace import Workspace

    ws = cast(Workspace, SimpleNamespace(repo=tmp_path))
    ticket = Ticket(id="CV-CQ-001", title="fix")
    fixable = finding(fixable=True)
    entry = QueueEntry(finding=fixable, status=QueueStatus.FILED, ticket="CV-CQ-001", first_loop=1, last_loop=1)
    (tmp_path / "automations").mkdir()
    queue_file = tmp_path / "automations/issue_queue.md"
    queue_file.write_text(render_queue(IssueQueue(last_loop=1, entries=(entry,))), encoding="utf-8")
    assert fix_plan(ws, ticket) == [fixable]
    unfixable = entry.model_copy(update={"finding": finding("E1")})
    queue_file.write_text(render_queue(IssueQueue(last_loop=1, entries=(entry, unfixable))), encoding="utf-8")
    assert fix_plan(ws, ticket) == []  # one finding without a fixer: the ticket needs a model
    queue_file.write_text("# broken\n", encoding="utf-8")
    assert fix_plan(ws, ticket) == []  # a person's broken edit must not hold every other ticket
