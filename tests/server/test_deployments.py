"""Deployment runs on a real server and process worker: `conveyor deploy`, then `prefect deployment run`."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType

from tasks.artifacts import artifact_key
from tests.conftest import git
from tests.server.conftest import POOL, Repos, SessionRuns
from tests.server.harness import PrefectServer
from tests.server.support import artifacts_of, client, events, log_subjects, wait_for_state

pytestmark = pytest.mark.slow

TEXTKIT_TICKETS = ("TK-FEAT-001", "TK-FEAT-002", "TK-FEAT-003", "TK-DOC-001")


def test_improvement_loop_deployment_run(prefect_api: PrefectServer, session_runs: SessionRuns, repos: Repos) -> None:
    """The issue's path: `prefect deployment run 'improvement-loop/test' --param repo=<copy of examples/lintkit>`
    (started by the session_runs fixture) completes with its artifacts and its commit."""
    flow_run = session_runs.improvement
    wait_for_state(flow_run, StateType.COMPLETED, timeout_s=300)

    keys = {a.key for a in artifacts_of(flow_run)}
    assert artifact_key("lintkit", "improvement-loop") in keys
    assert artifact_key("lintkit", "improvement-findings") in keys
    # The loop's closing commit holds the issue queue.
    repo = repos.lintkit
    commit = git(repo, "log", "--format=%H", "--fixed-strings", "--grep=Improvement loop 1", "-1", "main").strip()
    assert commit
    changed = git(repo, "show", "--name-only", "--format=", commit).split()
    assert "automations/issue_queue.md" in changed
    # Its execution run finished every ticket, yet announced no milestone: no release after each loop.
    ready = events(prefect_api, "conveyor.milestone.ready")
    assert [e for e in ready if e["resource"].get("conveyor.repo") == "lintkit"] == []


def test_execution_loop_deployment_delivers_textkit(
    prefect_api: PrefectServer, delivered_textkit: tuple[Path, UUID]
) -> None:
    repo, loop_run = delivered_textkit
    with client() as api:
        run = api.read_flow_run(loop_run)
    # The session's worker ran it, in a process of its own.
    assert run.work_pool_name == POOL
    assert run.infrastructure_pid
    assert run.deployment_id is not None

    artifacts = {a.key: a for a in artifacts_of(loop_run)}
    backlog = artifacts[artifact_key("textkit", "backlog")]
    assert isinstance(backlog.data, str)
    assert {row["id"]: row["state"] for row in json.loads(backlog.data)} == dict.fromkeys(TEXTKIT_TICKETS, "done")
    assert artifact_key("textkit", "run-report") in artifacts

    # One squash commit per ticket and the checkpoint (the milestone release may commit on top meanwhile).
    assert any(subject.startswith("chore(orchestrator): Run ") for subject in log_subjects(repo))
    for ticket in TEXTKIT_TICKETS:
        assert git(repo, "log", "--format=%H", "-E", f"--grep=^Conveyor-Ticket: {ticket}$", "main").strip(), ticket
