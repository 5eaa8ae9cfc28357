"""Escalation, approvals, deadlock, budget and ops in the execution loop (issue 5 §1, §3, §5).

Pauses are answered the way a person's client does it: ``resume_flow_run(id, run_input=...)`` against the same
Prefect API, from another thread while the loop keeps running.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterState
from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypeFilter
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL

from conveyor.services.backlog_loader import load_backlog
from tests.conftest import git
from tests.flows.loop_support import edit_build_spec, edit_script, run_loop, textkit


def _escalate_first(ticket_id: str) -> Any:
    def change(script: dict[str, Any]) -> None:
        for entry in script["entries"]:
            if entry.get("role") == "implementer" and entry.get("ticket") == ticket_id:
                entry["steps"].insert(0, {"status": "escalate", "commit": False, "notes": "Which word splitter?"})
                return
        raise AssertionError(f"no implementer entry for {ticket_id}")

    return change


def _commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def _states(repo: Path) -> dict[str, str]:
    return {t.id: t.state.value for t in load_backlog(repo).backlog}


class Answerer(threading.Thread):
    """Waits for a paused flow run named ``name`` and resumes it with ``answer`` (what the UI does)."""

    def __init__(
        self,
        name: str,
        answer: dict[str, Any],
        timeout_s: float = 120.0,
        *,
        once: Callable[[], bool] | None = None,
        cli_repo: Path | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.once = once  # answer only once this holds too
        self.cli_repo = cli_repo  # answer with `conveyor answer` in a subprocess, as a person in another shell
        self.name_ = name
        self.answer = answer
        self.timeout_s = timeout_s
        self.answered_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self.error = exc

    def _answer_with_cli(self) -> None:
        assert self.cli_repo is not None
        done = _answer_cli(self.cli_repo, self.name_, self.answer)
        if done.returncode != 0:
            raise RuntimeError(f"conveyor answer failed: {done.stdout} {done.stderr}")

    async def _run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        async with get_client() as client:
            while time.monotonic() < deadline:
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        name=FlowRunFilterName(any_=[self.name_]),
                        state=FlowRunFilterState(type=StateTypeFilter(any_=[StateType.PAUSED])),
                    )
                )
                if runs and self.cli_repo is not None and (self.once is None or self.once()):
                    self._answer_with_cli()
                    self.answered_at = time.monotonic()
                    return
                if runs and (self.once is None or self.once()):
                    await resume_flow_run(runs[0].id, run_input=self.answer)  # type: ignore[misc]
                    self.answered_at = time.monotonic()
                    return
                await asyncio.sleep(0.5)
        raise TimeoutError(f"no paused run named {self.name_}")


def _answer_cli(repo: Path, name: str, answer: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "conveyor", "answer", name, "--repo", str(repo), "--action", answer["action"]]
    for key in ("guidance", "reason"):
        if answer.get(key):
            argv += [f"--{key}", answer[key]]
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_escalation_pauses_one_ticket_while_the_others_go_on(tmp_path: Path) -> None:
    repo = textkit(tmp_path)
    edit_script(repo, _escalate_first("TK-FEAT-002"))
    _commit_all(repo, "TK-FEAT-002 escalates first")
    run_state = repo / "automations/run-state.json"

    def other_ticket_done() -> bool:
        # Answer only after TK-FEAT-001 finished: if the pause held up the whole run, this never happens.
        return bool(json.loads(run_state.read_text())["tickets"]["TK-FEAT-001"]["status"] == "done")

    answer = {"action": "retry", "guidance": "Use str.split(); lower-case the words."}
    answerer = Answerer("TK-FEAT-002", answer, once=other_ticket_done)
    answerer.start()
    result = run_loop(repo, interactive=True, escalation_timeout_s=120)
    answerer.join(5)
    assert answerer.error is None
    assert result["stopped"] == ""
    assert set(_states(repo).values()) == {"done"}
    state = json.loads((repo / "automations/run-state.json").read_text())
    escalation = state["tickets"]["TK-FEAT-002"]["escalations"][0]
    assert "Which word splitter?" in escalation["reason"]
    assert escalation["answer"].startswith("retry")
    feedback = (repo / "automations/runs" / result["run_id"] / "record/feedback/TK-FEAT-002.md").read_text()
    assert "Use str.split()" in feedback


def test_policy_defer_without_a_person_then_deadlock_is_reported(tmp_path: Path) -> None:
    repo = textkit(tmp_path, on_escalation="defer")
    edit_script(repo, _escalate_first("TK-FEAT-002"))
    _commit_all(repo, "TK-FEAT-002 escalates")
    result = run_loop(repo)
    states = _states(repo)
    assert states["TK-FEAT-001"] == "done"
    assert states["TK-FEAT-002"] == "deferred"
    assert states["TK-FEAT-003"] == "queued"
    assert result["stopped"].startswith("deadlock")
    assert "TK-FEAT-003" in result["stopped"]
    deferred = (repo / "docs/reports/deferred/deferred-errors.md").read_text()
    assert "## TK-FEAT-002" in deferred and "**Category:**" in deferred and "**Suggested approach:**" in deferred
    assert "Which word splitter?" in deferred
    # the deferral and the run's records are committed with the checkpoint
    assert git(repo, "status", "--porcelain").strip() == ""


def test_a_ticket_needing_approval_never_merges_without_it(tmp_path: Path) -> None:
    repo = textkit(tmp_path)
    queue_path = repo / "automations/run-queue.json"
    queue = json.loads(queue_path.read_text())
    for ticket in queue["tickets"]:
        if ticket["id"] == "TK-FEAT-001":
            ticket["approval_required"] = True
    queue_path.write_text(json.dumps(queue, indent=2) + "\n")
    _commit_all(repo, "TK-FEAT-001 needs approval")
    result = run_loop(repo)  # nobody can answer: policy pause keeps it waiting
    assert _states(repo)["TK-FEAT-001"] != "done"
    assert git(repo, "log", "--format=%H", "-E", "--grep=^Conveyor-Ticket: TK-FEAT-001$", "main").strip() == ""
    assert result["stopped"].startswith("deadlock")
    assert "awaiting-approval" in result["stopped"]

    answerer = Answerer("TK-FEAT-001", {"action": "approve", "reason": "looks right"}, cli_repo=repo)
    answerer.start()
    again = run_loop(repo, resume=True, interactive=True, escalation_timeout_s=120)
    answerer.join(5)
    assert answerer.error is None
    assert again["stopped"] == ""
    assert set(_states(repo).values()) == {"done"}


def test_frozen_budget_starts_nothing(tmp_path: Path) -> None:
    repo = textkit(tmp_path)
    edit_build_spec(repo, budget={"cap_usd": 0.01})
    _commit_all(repo, "tiny cap")
    result = run_loop(repo)
    assert result["stopped"].startswith("budget frozen")
    assert result["merges"] == []
    assert set(_states(repo).values()) == {"queued"}
    assert not (repo / ".conveyor/worktrees").exists() or not any((repo / ".conveyor/worktrees").iterdir())


def test_ops_failure_reverts_the_merge_and_files_a_remediation_ticket(tmp_path: Path) -> None:
    repo = textkit(tmp_path, workers=1)
    edit_build_spec(repo, ops=[{"name": "smoke", "argv": ["python", "-c", "raise SystemExit(3)"], "timeout_s": 30}])
    _commit_all(repo, "an ops step that fails")
    result = run_loop(repo)
    states = _states(repo)
    first = next(t for t in ("TK-FEAT-001", "TK-FEAT-002") if states[t] == "failed")
    assert f"{first}-OPS" in states
    merged = git(repo, "log", "--format=%H", "-E", f"--grep=^Conveyor-Ticket: {first}$", "main").split()
    assert len(merged) == 1
    revert = git(repo, "log", "--format=%H", "-F", f"--grep=Revert {first}: ops step smoke failed", "main").split()
    assert len(revert) == 1
    code_diff = git(repo, "diff", "--name-only", f"{merged[0]}^", revert[0]).split()
    assert [p for p in code_diff if p.startswith(("src/", "tests/"))] == []
    assert result["stopped"] != ""


@pytest.mark.parametrize("workers", [8])
def test_many_workers_still_respect_dependencies(tmp_path: Path, workers: int) -> None:
    repo = textkit(tmp_path, workers=workers)
    result = run_loop(repo)
    assert result["stopped"] == ""
    order = git(repo, "log", "--reverse", "--format=%s", "main").splitlines()
    merged = [line.split(":")[0] for line in order if line.startswith("TK-")]
    assert merged.index("TK-FEAT-003") > max(merged.index("TK-FEAT-001"), merged.index("TK-FEAT-002"))
    assert merged[-1] == "TK-DOC-001"


VERIFY_TASKS = """# Tasks

| id | status | description | issue | repo | branch | depends_on | blocks | agent | started_at | completed_at | estimate | used | notes |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| VF-FEAT-001 | todo | Add a feature | TASKS:P1 | | | | VF-VER-001 | | | | 4K | | |
| VF-VER-001 | todo | Phase 1 verification: the gates pass on main | TASKS:P1 | | | VF-FEAT-001 | | | | | 2K | | |
"""  # noqa: E501


def _verification_repo(repo: Path, gate: list[str], feature_status: str) -> None:
    (repo / "docs").mkdir(exist_ok=True)
    (repo / "automations").mkdir(exist_ok=True)
    (repo / "docs/TASKS.md").write_text(
        VERIFY_TASKS.replace("| VF-FEAT-001 | todo |", f"| VF-FEAT-001 | {feature_status} |")
    )
    spec: dict[str, Any] = {
        "project": "verify",
        "task_prefix": "VF",
        "budget": {"cap_usd": 1.0},
        "agents": {"sandbox": "none"},
        "quality_gates": [{"name": "check", "argv": gate, "timeout_s": 30}],
    }
    (repo / "automations/build-spec.yaml").write_text(json.dumps(spec))
    _commit_all(repo, "verification backlog")


def test_deterministic_mode_holds_change_tickets_and_runs_verification_on_main(scratch_repo: Path) -> None:
    _verification_repo(scratch_repo, ["git", "--version"], "todo")
    result = run_loop(scratch_repo)
    states = _states(scratch_repo)
    assert states["VF-FEAT-001"] == "implementing"  # held: no implementer without a model
    assert "deterministic mode" in json.dumps(json.loads((scratch_repo / "automations/run-state.json").read_text()))
    assert result["stopped"].startswith("deadlock")

    _verification_repo(scratch_repo, ["git", "--version"], "done")
    again = run_loop(scratch_repo)
    assert _states(scratch_repo)["VF-VER-001"] == "done"
    assert again["merges"] == []  # verification changes nothing: no squash commit


def test_failing_phase_verification_is_held_with_the_failing_command(scratch_repo: Path) -> None:
    _verification_repo(scratch_repo, ["git", "no-such-subcommand"], "done")
    result = run_loop(scratch_repo)
    state = json.loads((scratch_repo / "automations/run-state.json").read_text())
    blocker = state["tickets"]["VF-VER-001"]["blockers"][-1]
    assert "phase verification failed on main" in blocker["reason"]
    assert blocker["command"] == "git no-such-subcommand"
    assert result["stopped"].startswith("deadlock")


def test_an_unanswered_pause_times_out_into_the_policy(tmp_path: Path) -> None:
    repo = textkit(tmp_path, on_escalation="skip")
    edit_script(repo, _escalate_first("TK-DOC-001"))
    _commit_all(repo, "TK-DOC-001 escalates")
    result = run_loop(repo, interactive=True, escalation_timeout_s=2)
    assert _states(repo)["TK-DOC-001"] == "skipped"
    state = json.loads((repo / "automations/run-state.json").read_text())
    assert "timed out" in state["tickets"]["TK-DOC-001"]["escalations"][0]["answer"]
    assert result["stopped"] == ""


def test_a_ticket_whose_delivery_fails_is_held_and_the_others_go_on(tmp_path: Path) -> None:
    repo = textkit(tmp_path)

    def malformed_review(script: dict[str, Any]) -> None:
        entry = {
            "role": "reviewer",
            "ticket": "TK-FEAT-002",
            "stage": "reviewing",
            "repeat_last": True,
            "steps": [{"output": {"decision": "maybe"}}],  # not a ReviewDecision, even after the repair round
        }
        script["entries"].append(entry)

    edit_script(repo, malformed_review)
    _commit_all(repo, "TK-FEAT-002's reviewer answers nonsense")
    result = run_loop(repo)
    states = _states(repo)
    assert states["TK-FEAT-001"] == "done"
    assert states["TK-FEAT-002"] == "reviewing"
    state = json.loads((repo / "automations/run-state.json").read_text())
    assert "delivery failed: RoleOutputError" in state["tickets"]["TK-FEAT-002"]["blockers"][-1]["reason"]
    assert state["tickets"]["TK-FEAT-002"]["status"] == "blocked"
    assert result["stopped"].startswith("deadlock")


def test_the_iteration_limit_holds_a_ticket_and_the_policy_defers_it(tmp_path: Path) -> None:
    repo = textkit(tmp_path, max_iterations=1, on_escalation="defer")

    def always_request_changes(script: dict[str, Any]) -> None:
        for entry in script["entries"]:
            if entry.get("role") == "reviewer" and entry.get("ticket") == "TK-FEAT-001":
                entry["steps"] = entry["steps"][:1]  # the request-changes verdict, repeated
                entry["repeat_last"] = True

    edit_script(repo, always_request_changes)
    _commit_all(repo, "TK-FEAT-001's reviewer never approves")
    run_loop(repo)
    assert _states(repo)["TK-FEAT-001"] == "deferred"
    state = json.loads((repo / "automations/run-state.json").read_text())
    assert state["tickets"]["TK-FEAT-001"]["stage"]["iterations"] == 1
    deferred = (repo / "docs/reports/deferred/deferred-errors.md").read_text()
    assert "## TK-FEAT-001" in deferred
