"""Crash resume (issue 5 §7): `conveyor run` SIGKILLed at named checkpoints, then `conveyor run --resume`.

The kill is a test hook (CONVEYOR_TEST_KILL_AT, adapters/crash.py), never timing. Each case must end with the
right backlog: every ticket done, each merged exactly once, a clean checkout, no stray temporary file. The
killed process's Prefect flow run stays Running in the API; the resumed run does not care (the lease and the
state files decide).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.settings import PREFECT_API_URL

from conveyor.services.backlog_loader import load_backlog
from tests.conftest import git
from tests.flows.loop_support import TICKETS, textkit

pytestmark = pytest.mark.slow


def _conveyor_run(
    repo: Path, *extra: str, kill_at: str | None = None, nth: int = 1
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_TEST_")}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # the session's real API: no startup per process
    if kill_at is not None:
        env["CONVEYOR_TEST_KILL_AT"] = kill_at
        env["CONVEYOR_TEST_KILL_NTH"] = str(nth)
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "run", "--repo", str(repo), "--quiet", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _blockers(repo: Path) -> str:
    """Every blocker run-state.json records, in full (the report's table cuts them): what a failure needs."""
    state = json.loads((repo / "automations/run-state.json").read_text(encoding="utf-8"))
    found = [f"{tid}: {b['reason']}" for tid, t in state["tickets"].items() for b in t.get("blockers", [])]
    return "\nBlockers in run-state.json:\n" + "\n".join(found)


def _flow_run_states(name: str, repo: Path) -> list[str]:
    """States of the flow runs named ``name`` on ``repo`` (run ids are per repository: other tests reuse them)."""

    async def read() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
        return [r.state.type.value for r in runs if r.state is not None and r.parameters.get("repo") == str(repo)]

    return asyncio.run(read())


def _implementer_logs(repo: Path) -> list[dict[str, object]]:
    folder = repo / "automations/logs/implementer"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


@pytest.mark.parametrize(
    ("point", "nth"),
    [
        ("implementer-stored", 1),  # after the implementer's result is stored
        ("qa-running", 2),  # during QA
        ("after-squash-commit", 1),  # between the squash commit and the state update
        ("worktree-commit-before-ledger", 1),  # between a worktree commit and the ledger write
        # during an atomic write: the second one of the first merge (TASKS.md written, run-queue.json half done);
        # scoped, so the kill lands at the same place whatever the threads' interleaving
        ("atomic-write@merge", 2),
        # in the merge queue: TASKS.md and run-queue.json say done, run-state.json still says integrating, and
        # the squash commit is not built yet (the files are written first)
        ("between-tracking-files@merge", 1),
    ],
)
def test_killed_run_resumes_to_the_right_backlog(tmp_path: Path, point: str, nth: int) -> None:
    repo = textkit(tmp_path)
    killed = _conveyor_run(repo, kill_at=point, nth=nth)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run_id = json.loads((repo / "automations/run-state.json").read_text())["run_id"]
    assert _flow_run_states(run_id, repo) == ["RUNNING"]  # left Running by the killed process: it must not block

    resumed = _conveyor_run(repo, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:] + _blockers(repo)

    assert {t.id: t.state.value for t in load_backlog(repo).backlog} == dict.fromkeys(TICKETS, "done")
    for ticket_id in TICKETS:
        merged = git(repo, "log", "--format=%H", "-E", f"--grep=^Conveyor-Ticket: {ticket_id}$", "main").split()
        assert len(merged) == 1, f"{ticket_id} merged {len(merged)} times"
    assert git(repo, "status", "--porcelain").strip() == ""
    assert list(repo.glob("**/.*.tmp")) == []
    state = json.loads((repo / "automations/run-state.json").read_text())
    assert state["run_id"] == run_id  # the resumed run is the same run
    if point == "implementer-stored":
        assert any(log["result"]["replayed"] for log in _implementer_logs(repo))  # type: ignore[index]
