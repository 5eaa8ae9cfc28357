"""The on-disk layout of run records in a real git repository."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.adapters.evidence import collect_evidence
from conveyor.adapters.run_store import RunStore
from conveyor.domain.errors import InputError, NotFoundError
from conveyor.domain.gate import GateContract, required_evidence, verdict
from conveyor.domain.run import (
    GateAttempt,
    GateRecord,
    GateStatus,
    RunMode,
    TicketRecord,
    WorkflowRef,
    add_ticket_attempt,
    finish_gate,
    start_gate,
)

NOW = datetime(2026, 1, 19, 14, 30, 12, tzinfo=UTC)
REF = WorkflowRef(name="design-doc", slug="robot", artifact_path="docs/robot")
GATES = [GateRecord(gate="G1", name="Intake", contract="G1")]


def test_create_run_layout_and_gitignore(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    run = store.create_run(REF, GATES, NOW, mode=RunMode.WORKFLOW)
    assert run.run_id == "RUN-20260119-1430"
    base = scratch_repo / "automations/runs/RUN-20260119-1430"
    assert (base / "record/RUN.json").is_file()
    assert (base / "logs").is_dir()
    assert (scratch_repo / "automations/runs/.gitignore").read_text() == "*/logs/\n"
    data = json.loads((base / "record/RUN.json").read_text())
    assert data["run_id"] == "RUN-20260119-1430"
    assert data["workflow"] == {
        "name": "design-doc",
        "version": "local-dev",
        "slug": "robot",
        "artifact_path": "docs/robot",
    }
    assert data["status"] == "RUNNING"
    assert data["started_at"] == "2026-01-19T14:30:12Z"
    assert data["finished_at"] is None
    assert data["gates"][0]["status"] == "PENDING"
    # git sees the record but not the logs
    (base / "logs/prompt.txt").write_text("x")
    untracked = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=scratch_repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "automations/runs/RUN-20260119-1430/record/RUN.json" in untracked
    assert "logs/prompt.txt" not in untracked


def test_existing_gitignore_is_extended_once(scratch_repo: Path) -> None:
    ignore = scratch_repo / "automations/runs/.gitignore"
    ignore.parent.mkdir(parents=True)
    ignore.write_text("*.tmp")
    store = RunStore(scratch_repo)
    store.ensure_gitignore()
    store.ensure_gitignore()
    assert ignore.read_text() == "*.tmp\n*/logs/\n"


def test_run_id_collision_gets_suffixes(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    ids = [store.create_run(REF, GATES, NOW).run_id for _ in range(3)]
    assert ids == ["RUN-20260119-1430", "RUN-20260119-1430-2", "RUN-20260119-1430-3"]
    assert store.list_runs() == sorted(ids)


def test_load_save_round_trip(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    run = store.create_run(REF, GATES, NOW)
    run, _ = start_gate(run, "G1", "planner", NOW)
    store.save(run)
    assert store.load(run.run_id) == run


def test_unknown_run_is_not_found(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    with pytest.raises(NotFoundError, match="no run RUN-20260101-0000"):
        store.load("RUN-20260101-0000")
    with pytest.raises(NotFoundError, match="not a run id"):
        store.load("../../etc")


def test_malformed_run_json_names_file_and_line(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    run = store.create_run(REF, GATES, NOW)
    path = store.run_file(run.run_id)
    broken = path.read_text().replace('"status": "RUNNING"', '"status": "RUNNING",,', 1)
    path.write_text(broken)
    with pytest.raises(InputError) as caught:
        store.load(run.run_id)
    problem = caught.value.problems[0]
    assert problem.path == f"automations/runs/{run.run_id}/record/RUN.json"
    expected_line = next(n for n, line in enumerate(broken.splitlines(), 1) if ",," in line)
    assert problem.line == expected_line
    assert path.read_text() == broken  # never overwritten


def test_invalid_field_in_run_json_names_its_line(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    run = store.create_run(REF, GATES, NOW)
    path = store.run_file(run.run_id)
    text = path.read_text().replace('"depth": "standard"', '"depth": "bottomless"')
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        store.load(run.run_id)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "bottomless" in row)
    assert caught.value.problems[0].line == line
    assert "depth" in caught.value.problems[0].message


def test_attempt_file_sha256_matches_the_output(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    brief = scratch_repo / "docs/robot/BRIEF.md"
    brief.parent.mkdir(parents=True)
    brief.write_bytes(b"# Problem\n\nRobots.\n")
    contract = GateContract(gate="G1", name="Intake", required_outputs=["{artifact_path}/BRIEF.md"])
    variables = {"slug": "robot", "artifact_path": "docs/robot"}
    evidence = collect_evidence(scratch_repo, required_evidence(contract, variables), variables)
    run = store.create_run(REF, GATES, NOW)
    run, _ = start_gate(run, "G1", "planner", NOW)
    run, attempt = finish_gate(run, "G1", verdict(contract, evidence), NOW)
    path = store.write_attempt(run.run_id, attempt)
    assert path == scratch_repo / f"automations/runs/{run.run_id}/record/gates/G1/attempt-1.json"
    data = json.loads(path.read_text())
    assert data["status"] == "PASS"
    assert data["artifacts"] == [
        {"path": "docs/robot/BRIEF.md", "sha256": hashlib.sha256(brief.read_bytes()).hexdigest(), "exists": True}
    ]
    assert data["validations"][0]["pass"] is True
    assert store.load_attempt(run.run_id, "G1", 1) == attempt


def test_ticket_records_live_beside_run_json(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    run = store.create_run(REF, GATES, NOW)
    before = store.run_file(run.run_id).read_text()
    record = TicketRecord(ticket_id="MS-SEC-001", run_id=run.run_id)
    record = add_ticket_attempt(
        record, GateAttempt(gate="QA", attempt=1, status=GateStatus.PASS, started_at=NOW, finished_at=NOW)
    )
    run = store.write_ticket_record(run, record)
    ticket_path = scratch_repo / f"automations/runs/{run.run_id}/record/tickets/MS-SEC-001.json"
    assert ticket_path.is_file()
    assert json.loads(store.run_file(run.run_id).read_text())["tickets"] == {"MS-SEC-001": "tickets/MS-SEC-001.json"}
    assert store.load_ticket_record(run.run_id, "MS-SEC-001") == record
    # a second write of the same ticket touches only the ticket's file
    after_index = store.run_file(run.run_id).read_text()
    assert after_index != before
    store.write_ticket_record(run, add_ticket_attempt(record, record.attempts[0].model_copy(update={"attempt": 2})))
    assert store.run_file(run.run_id).read_text() == after_index
    assert len(store.load_ticket_record(run.run_id, "MS-SEC-001").attempts) == 2


def test_requests_are_taken_once_and_fail_wins(scratch_repo: Path) -> None:
    store = RunStore(scratch_repo)
    run = store.create_run(REF, GATES, NOW)
    assert store.take_request(run.run_id, "G1") is None
    store.write_request(run.run_id, "G1", reason=None, now=NOW, pid=1)
    store.write_request(run.run_id, "G1", reason="no quotes", now=NOW, pid=1)
    assert store.take_request(run.run_id, "G1") == ("fail", "no quotes")
    assert store.take_request(run.run_id, "G1") is None
