"""The bootstrap budget gate (issue 4 item 6): still over the cap after the automatic cut, the flow run pauses
with the typed HumanGate form and applies the answer. Real Prefect API (the session harness), real git.

Each test runs the flow in a background thread with ``interactive_budget=True``, waits on the API until the run
is Paused with its form saved, and answers with ``resume_flow_run(..., run_input=...)``, as the UI or
``conveyor answer`` would. Nothing waits for a person.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from prefect.input.actions import read_flow_run_input
from prefect.input.run_input import keyset_from_paused_state

from conveyor.adapters.tasks_md import read_tasks_file
from conveyor.domain.errors import ConveyorError
from flows.bootstrap import bootstrap
from tests.conftest import git

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
PHASE_1 = ["CV-SEC-001", "CV-SEC-002", "CV-SEC-003", "CV-DOC-001", "CV-SEC-004"]
WAIT_S = 45.0


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    shutil.copytree(FIXTURES / "q1-review", scratch_repo / "docs/reports/q1-review")
    git(scratch_repo, "add", "-A")
    git(scratch_repo, "commit", "-q", "-m", "review report")
    return scratch_repo


def set_cap(repo: Path, cap: float, policy: str = "pause") -> None:
    (repo / "automations").mkdir(exist_ok=True)
    (repo / "automations/build-spec.yaml").write_text(f"on_escalation: {policy}\nbudget:\n  cap_usd: {cap}\n")


@dataclass
class Background:
    """The bootstrap flow running in a thread; its result or exception once it ends."""

    repo: Path
    kwargs: dict[str, Any]
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    answered: set[UUID] = field(default_factory=set)  # Paused states already answered
    thread: threading.Thread | None = None

    def start(self) -> Background:
        def run() -> None:
            try:
                self.result = bootstrap(repo=str(self.repo), report="q1-review", interactive_budget=True, **self.kwargs)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def paused(self) -> tuple[UUID, str]:
        """Wait until this repo's flow run is in a new Paused state with its form saved: (flow run id, description)."""
        deadline = time.monotonic() + WAIT_S
        paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
        while time.monotonic() < deadline:
            assert self.thread is not None
            if not self.thread.is_alive():
                raise AssertionError(f"the flow ended instead of pausing: {self.error or self.result}")
            with get_client(sync_client=True) as client:
                runs = [
                    r for r in client.read_flow_runs(flow_run_filter=paused) if r.parameters["repo"] == str(self.repo)
                ]
            for run in runs:
                if run.state is None or run.state.id in self.answered:
                    continue
                description = read_flow_run_input(
                    keyset_from_paused_state(run.state)["description"], flow_run_id=run.id
                )
                if description:
                    self.answered.add(run.state.id)
                    return run.id, str(description)
            time.sleep(0.2)
        raise AssertionError("the flow run never paused")

    def answer(self, run_input: dict[str, Any]) -> tuple[UUID, str]:
        flow_run_id, description = self.paused()
        resume_flow_run(flow_run_id, run_input=run_input)
        return flow_run_id, description

    def finish(self) -> dict[str, Any]:
        assert self.thread is not None
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the flow did not end after the answer"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@pytest.fixture
def background(repo: Path) -> Iterator[list[Background]]:
    started: list[Background] = []
    yield started
    for job in started:  # a failing test must not leave a paused flow behind
        if job.thread is not None and job.thread.is_alive():
            job.thread.join(WAIT_S)


def run_gated(repo: Path, started: list[Background], **kwargs: Any) -> Background:
    job = Background(repo, {"budget_timeout_s": 60.0, **kwargs}).start()
    started.append(job)
    return job


def statuses(repo: Path) -> dict[str, str]:
    document = read_tasks_file(repo / "docs/TASKS.md")
    return {t.id: document.status_text(t.id) for t in document.tickets()}


def test_raise_cap_writes_the_backlog_and_records_the_cap_as_explicit(repo: Path, background: list[Background]) -> None:
    set_cap(repo, 0.05)  # too small even for phase 1 ($0.55)
    job = run_gated(repo, background)
    _, description = job.answer({"action": "raise_cap", "new_cap_usd": 1.0})
    assert "over the cap" in description and "$0.05" in description
    result = job.finish()
    assert result["commit"] and "cap raised to $1.00" in result["summary"]
    budget = json.loads((repo / "automations/run-state.json").read_text())["budget"]
    assert budget["cap_usd"] == 1.0 and budget["cap_source"] == "explicit" and not budget["over_cap"]
    # The cut is redone against the raised cap: phase 1 fits $1.00, phases 2-4 stay deferred.
    got = statuses(repo)
    assert {tid for tid, status in got.items() if status != "deferred"} == set(PHASE_1)


def test_split_phases_keeps_only_the_most_severe_phase(repo: Path, background: list[Background]) -> None:
    bootstrap(repo=str(repo), report="q1-review")  # the whole backlog, no cap
    tasks = repo / "docs/TASKS.md"
    tasks.write_text(tasks.read_text().replace("| CV-CQ-001 | not-started |", "| CV-CQ-001 | done |"))
    git(repo, "commit", "-qam", "phase 3 work happened")
    # Phase 3 has work done, so the automatic cut stops at phase 4 and the rest ($2.3) is over $1.
    set_cap(repo, 1.0)
    job = run_gated(repo, background)
    job.answer({"action": "split_phases"})
    result = job.finish()
    got = statuses(repo)
    assert {tid for tid, status in got.items() if status == "not-started"} == set(PHASE_1)
    assert got["CV-CQ-001"] == "done"
    assert {status for tid, status in got.items() if tid not in {*PHASE_1, "CV-CQ-001"}} == {"deferred"}
    assert "split_phases" in result["summary"]


def test_reduce_scope_defers_the_tickets_and_their_dependents(repo: Path, background: list[Background]) -> None:
    set_cap(repo, 0.5)  # phase 1 alone projects $0.55
    job = run_gated(repo, background)
    job.answer({"action": "reduce_scope", "defer": ["CV-SEC-003"]})
    job.finish()
    got = statuses(repo)
    # CV-DOC-001 and the verification CV-SEC-004 depend on CV-SEC-003: deferred too, no dangling dependency.
    assert {tid for tid, status in got.items() if status == "not-started"} == {"CV-SEC-001", "CV-SEC-002"}
    assert got["CV-DOC-001"] == got["CV-SEC-004"] == "deferred"


def test_an_answer_that_cannot_apply_is_asked_again_then_stop_writes_nothing(
    repo: Path, background: list[Background]
) -> None:
    set_cap(repo, 0.05)
    head = git(repo, "rev-parse", "HEAD")
    job = run_gated(repo, background)
    job.answer({"action": "raise_cap", "new_cap_usd": 0.1})  # below the projection: refused, asked again
    _, description = job.answer({"action": "stop"})
    assert "was not applied" in description and "raise_cap needs new_cap_usd above" in description
    with pytest.raises(ConveyorError, match="stopped by the budget decision"):
        job.finish()
    assert not (repo / "docs/TASKS.md").exists() and not (repo / "docs/PRD.md").exists()
    assert git(repo, "rev-parse", "HEAD") == head


def test_nobody_answering_in_time_stops(repo: Path, background: list[Background]) -> None:
    set_cap(repo, 0.05)
    job = run_gated(repo, background, budget_timeout_s=2.0)
    with pytest.raises(ConveyorError, match="nobody answered the budget form"):
        job.finish()
    assert not (repo / "docs/TASKS.md").exists() and not (repo / "docs/PRD.md").exists()


def test_the_stop_policy_never_pauses(repo: Path) -> None:
    set_cap(repo, 0.05, policy="stop")
    with pytest.raises(ConveyorError, match="over the cap"):
        bootstrap(repo=str(repo), report="q1-review", interactive_budget=True)
    assert not (repo / "docs/TASKS.md").exists()
