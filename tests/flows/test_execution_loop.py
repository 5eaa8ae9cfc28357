"""The execution loop end to end (issue 5): the textkit example, the scripted backend, real git and gates, a real
Prefect API.

The script's story: TK-FEAT-001 gets a review round trip, TK-FEAT-002 a real failing pytest run that the second
implementer step fixes, TK-FEAT-003 a steward docs update, TK-DOC-001 a docs-only change (no review). The two
phase-1 tickets run side by side (2 workers), so the one merged second finds main moved in code and is rebased
and re-qualified before its merge.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from conveyor.domain.errors import ConveyorError
from conveyor.domain.tracking import is_tracking_path
from conveyor.services.backlog_loader import load_backlog
from flows import execution_loop as loop_module
from tasks.events import PrefectEvents
from tests.conftest import git
from tests.flows.loop_support import TICKETS, log_subjects, run_loop, textkit


class RecordingEvents(PrefectEvents):
    """The real Prefect events, and a copy of what was emitted for the assertions."""

    emitted: ClassVar[list[tuple[str, dict[str, str], dict[str, Any]]]] = []

    def emit(self, event: str, *, resource: dict[str, str], payload: dict[str, Any]) -> None:
        super().emit(event, resource=resource, payload=payload)
        RecordingEvents.emitted.append((event, resource, payload))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[Any]]:
    repo = textkit(tmp_path_factory.mktemp("loop"))
    RecordingEvents.emitted = []
    between: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop_module, "PrefectEvents", RecordingEvents)
        patch.setattr(loop_module, "_hooks", [lambda ws, ticket_id: between.append(ticket_id)])
        result = run_loop(repo)
    assert sorted(between) == sorted(TICKETS)  # the between-tickets hook ran once per finished ticket
    return repo, result, list(RecordingEvents.emitted)


def _trailer_commits(repo: Path, ticket_id: str) -> list[str]:
    out = git(repo, "log", "--format=%H", "-E", f"--grep=^Conveyor-Ticket: {ticket_id}$", "main")
    return out.split()


def test_every_ticket_is_delivered_and_merged_once(full_run: tuple[Path, dict[str, Any], list[Any]]) -> None:
    repo, result, _ = full_run
    assert result["stopped"] == ""
    assert sorted(result["done"]) == sorted(TICKETS)
    assert result["open"] == []
    loaded = load_backlog(repo)
    assert {t.id: t.state.value for t in loaded.backlog} == dict.fromkeys(TICKETS, "done")
    assert "| TK-FEAT-001 | done |" in (repo / "docs/TASKS.md").read_text()
    for ticket_id in TICKETS:
        assert len(_trailer_commits(repo, ticket_id)) == 1, ticket_id
    # N merged tickets: N squash commits plus one checkpoint, on top of the skeleton and the bootstrap commit.
    subjects = log_subjects(repo)
    assert len(subjects) == 2 + len(TICKETS) + 1
    assert subjects[0] == f"chore(orchestrator): Run {result['run_id']} checkpoint"
    assert git(repo, "status", "--porcelain").strip() == ""
    # The code on main is the tickets' code, and its own tests pass.
    assert (repo / "src/textkit/cli.py").is_file()
    assert (repo / "docs/usage.md").is_file()


def test_squash_commit_code_is_the_tree_that_passed_qa(full_run: tuple[Path, dict[str, Any], list[Any]]) -> None:
    repo, _, _ = full_run
    for ticket_id in TICKETS:
        (squash,) = _trailer_commits(repo, ticket_id)
        branch = f"conveyor/{ticket_id.lower()}"
        differing = git(repo, "diff", "--name-only", branch, squash).split()
        assert [p for p in differing if not is_tracking_path(p)] == [], ticket_id
        parents = git(repo, "rev-list", "--parents", "-n", "1", squash).split()
        assert len(parents) == 2, "a squash commit has exactly one parent"


def test_review_round_trip_and_real_qa_failure(full_run: tuple[Path, dict[str, Any], list[Any]]) -> None:
    repo, result, _ = full_run
    state = json.loads((repo / "automations/run-state.json").read_text())
    assert state["tickets"]["TK-FEAT-001"]["stage"]["iterations"] == 1  # sent back once by the review
    assert state["tickets"]["TK-FEAT-002"]["stage"]["iterations"] == 1  # sent back once by QA
    record = repo / "automations/runs" / result["run_id"] / "record"
    feedback_001 = (record / "feedback/TK-FEAT-001.md").read_text()
    assert "line_count" in feedback_001  # the reviewer's blocker reached the implementer
    feedback_002 = (record / "feedback/TK-FEAT-002.md").read_text()
    assert "failed" in feedback_002 and "test_most_common_ignores_case" in feedback_002  # real pytest output
    qa = json.loads((record / "tickets/TK-FEAT-002.json").read_text())
    run_index = json.loads((record / "RUN.json").read_text())
    assert run_index["workflow"]["name"] == "execution-loop"
    assert set(run_index["tickets"]) == set(TICKETS)
    statuses = [a["status"] for a in qa["attempts"]]
    assert statuses[0] == "FAIL" and statuses[-1] == "PASS"
    for attempt in qa["attempts"]:
        for artifact in attempt["artifacts"]:
            assert len(artifact["sha256"]) == 64
    rewards = state["tickets"]["TK-FEAT-003"]["reward"]
    assert set(rewards["components"]) == {"first_pass_approval", "qa_first_pass", "cost_vs_estimate", "iterations"}
    assert state["tickets"]["TK-FEAT-001"]["reward"]["components"]["first_pass_approval"] == 0.0


def test_second_phase_one_merge_was_rebased_and_requalified(
    full_run: tuple[Path, dict[str, Any], list[Any]],
) -> None:
    repo, result, _ = full_run
    record = repo / "automations/runs" / result["run_id"] / "record/tickets"
    first, second = sorted(
        ("TK-FEAT-001", "TK-FEAT-002"),
        key=lambda t: int(git(repo, "rev-list", "--count", _trailer_commits(repo, t)[0]).strip()),
    )
    later = _trailer_commits(repo, second)[0]
    assert git(repo, "rev-parse", f"{later}^").strip() == _trailer_commits(repo, first)[0]
    attempts = json.loads((record / f"{second}.json").read_text())["attempts"]
    assert attempts[-1]["status"] == "PASS" and len(attempts) >= 2


def test_events_artifacts_and_report(full_run: tuple[Path, dict[str, Any], list[Any]]) -> None:
    repo, result, events = full_run
    names = {(e[0], e[1]["id"]) for e in events}
    for ticket_id in TICKETS:
        assert ("conveyor.ticket.done", ticket_id) in names
        assert ("conveyor.ticket.merged", ticket_id) in names
    assert ("conveyor.ticket.sent-back", "TK-FEAT-001") in names
    assert ("conveyor.milestone.ready", "0.0.1") in names
    report = (repo / "automations/runs" / result["run_id"] / "record/REPORT.md").read_text()
    for heading in ("Tickets completed (4 of 4)", "## Merges", "## Blockers", "## Tests run", "## Cost", "## Next"):
        assert heading in report
    slug = repo.name

    async def keys() -> set[str]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(
                        any_=[f"{slug}-run-report", f"{slug}-backlog", f"{slug}-progress", f"{slug}-ticket-tk-feat-001"]
                    )
                )
            )
        return {a.key for a in found if a.key}

    assert asyncio.run(keys()) == {
        f"{slug}-run-report",
        f"{slug}-backlog",
        f"{slug}-progress",
        f"{slug}-ticket-tk-feat-001",
    }


def test_a_second_run_finds_nothing_to_do(full_run: tuple[Path, dict[str, Any], list[Any]]) -> None:
    repo, _, _ = full_run
    before = git(repo, "rev-parse", "HEAD").strip()
    again = run_loop(repo)
    assert again["merges"] == [] and again["open"] == []
    commits = git(repo, "rev-list", f"{before}..HEAD").split()
    assert len(commits) <= 1  # at most the new run's checkpoint (its report)


def test_failed_preflight_lists_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    repo = textkit(tmp_path)
    (repo / "stray.txt").write_text("dirty\n")
    (repo / "automations/demo-script.yaml").unlink()
    git(repo, "add", "-A")
    (repo / "stray2.txt").write_text("dirty\n")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(ConveyorError) as caught:
        run_loop(repo)
    text = str(caught.value)
    assert "stray2.txt" in text and "demo-script.yaml" in text
    assert git(repo, "rev-parse", "HEAD") == head
    assert not (repo / ".conveyor/worktrees").exists()
