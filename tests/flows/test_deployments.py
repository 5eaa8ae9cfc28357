"""Conveyor's deployments (deployments/) and `conveyor deploy` on the session's real Prefect API: module-path
entrypoints, the work pool, default parameters, the improvement loop's paused schedule, idempotent re-applying
that keeps a person's resume, and clear errors without a reachable API."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
from prefect.settings import PREFECT_API_URL

from deployments.apply import DEFAULT_CRON, apply_deployments
from deployments.pool import ensure_work_pool

ENTRYPOINTS = {
    "bootstrap": "flows.bootstrap.bootstrap",
    "execution-loop": "flows.execution_loop.execution_loop",
    "milestone-release": "flows.milestone_release.milestone_release",
    "improvement-loop": "flows.improvement_loop.improvement_loop",
}


def _conveyor(*args: str, api: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if api is not None:
        env["PREFECT_API_URL"] = api
    argv = [sys.executable, "-m", "conveyor", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_four_deployments_read_back_as_applied(tmp_path: Path) -> None:
    name, pool = _unique("dep"), _unique("pool")
    applied = apply_deployments(name=name, work_pool=pool, repo=str(tmp_path))
    assert [d.flow for d in applied] == list(ENTRYPOINTS)
    with get_client(sync_client=True) as client:
        assert client.read_work_pool(pool).type == "process"
        for d in applied:
            read = client.read_deployment_by_name(f"{d.flow}/{name}")
            assert read.id == d.id and d.created
            assert read.entrypoint == ENTRYPOINTS[d.flow]  # module path: no file path, no pull step
            assert not read.pull_steps and read.path is None
            assert read.work_pool_name == pool
            assert read.parameters == {"repo": str(tmp_path.resolve())}
            assert read.job_variables == {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}
            assert "conveyor" in read.tags and not read.paused
            if d.flow == "improvement-loop":
                (schedule,) = read.schedules
                assert getattr(schedule.schedule, "cron", None) == DEFAULT_CRON
                assert schedule.active is False  # paused until a person resumes it
            else:
                assert read.schedules == []


def test_reapplying_keeps_ids_one_schedule_and_a_resumed_schedule_active(tmp_path: Path) -> None:
    name, pool = _unique("again"), _unique("pool")
    first = {d.flow: d for d in apply_deployments(name=name, work_pool=pool)}
    loop = first["improvement-loop"]
    assert loop.schedule_id is not None and loop.schedule_active is False and loop.parameters == {}
    with get_client(sync_client=True) as client:
        client.update_deployment_schedule(loop.id, loop.schedule_id, active=True)  # a person resumes it
        client.pause_deployment(first["bootstrap"].id)  # and pauses another deployment
    second = {d.flow: d for d in apply_deployments(name=name, work_pool=pool, cron="30 4 * * 1")}
    assert {f: d.id for f, d in second.items()} == {f: d.id for f, d in first.items()}
    assert not any(d.created for d in second.values())
    with get_client(sync_client=True) as client:
        read = client.read_deployment(loop.id)
        (schedule,) = read.schedules
        assert schedule.id == loop.schedule_id  # patched in place, not recreated
        assert schedule.active is True
        assert getattr(schedule.schedule, "cron", None) == "30 4 * * 1"
        assert client.read_deployment(first["bootstrap"].id).paused is True
        pools = client.read_work_pools(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))
        assert len(pools) == 1


def test_the_work_pool_is_created_once(tmp_path: Path) -> None:
    pool = _unique("pool")
    assert ensure_work_pool(pool) is True
    assert ensure_work_pool(pool) is False


@pytest.mark.slow
def test_a_deployment_run_takes_the_repository_as_a_parameter(tmp_path: Path) -> None:
    name = _unique("generic")
    apply_deployments(name=name, work_pool=_unique("pool"))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    argv = ["prefect", "deployment", "run", f"improvement-loop/{name}", "--param", f"repo={tmp_path}"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"improvement-loop/{name}")
        runs = client.read_flow_runs(limit=50)
    (run,) = [r for r in runs if r.deployment_id == deployment.id]
    assert run.parameters["repo"] == str(tmp_path)
    assert run.state is not None and run.state.is_scheduled()  # waits for a worker


@pytest.mark.slow
def test_conveyor_deploy_prints_each_deployment_and_how_to_run_it(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    repo.mkdir()
    pool = _unique("pool")
    done = _conveyor("deploy", str(repo), "--pool", pool, api=str(PREFECT_API_URL.value()))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"work pool {pool} (process)" in out and "created" in out
    for flow in ENTRYPOINTS:
        assert f"{flow}/shop  id " in out
    assert "schedule: cron '0 3 * * *' (UTC), inactive" in out
    assert "prefect deployment schedule resume 'improvement-loop/shop' " in out
    assert "run: prefect deployment run 'improvement-loop/shop'\n" in out  # the repo is the default parameter
    again = _conveyor("deploy", str(repo), "--pool", pool, api=str(PREFECT_API_URL.value()))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"work pool {pool} (process) on" in again.stdout and ": exists" in again.stdout
    assert again.stdout.count(" updated ") == 4


@pytest.mark.parametrize(
    ("api", "message"),
    [(None, "no Prefect server: set PREFECT_API_URL"), ("http://127.0.0.1:9/api", "cannot reach the Prefect API")],
)
def test_conveyor_deploy_without_a_reachable_api_is_a_clear_error(api: str | None, message: str) -> None:
    done = _conveyor("deploy", api=api)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_cron_is_refused_before_anything_is_applied() -> None:
    done = _conveyor("deploy", "--cron", "every day", api="http://127.0.0.1:9/api")
    assert done.returncode == 2
    assert "--cron: error: not a cron expression: 'every day'" in done.stderr
