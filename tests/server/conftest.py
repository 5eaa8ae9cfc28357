"""Tests against a real `prefect server start`, process workers and a headless browser (issue 7 §5).

The harness
-----------
``prefect_server`` (package scope: set up once for tests/server, torn down after its last test):

- ``prefect server start --host 127.0.0.1 --port P`` on a free port, with a temporary PREFECT_HOME, its own
  sqlite database (PREFECT_API_DATABASE_CONNECTION_URL), analytics off (PREFECT_SERVER_ANALYTICS_ENABLED=false,
  DO_NOT_TRACK=1) and the UI on; PREFECT_UI_API_URL names the port too, or the UI asks port 4200. It runs as the
  leader of a session of its own; the fixture waits for ``/api/health``;
- a process work pool and ``prefect worker start --pool P`` with PREFECT_API_URL pointing at the server and
  PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 (see below);
- teardown stops every process it started by PID, workers before the server: SIGTERM to the process group
  (whose id is the PID it started) and by PID to the descendants seen in it (gates and scanners run in sessions
  of their own), then SIGKILL to whatever is left after a grace period. It fails if any of them still runs.

Heartbeats, in prefect 3.9.1: the process that runs the flow sends them itself
(``prefect.flow_engine._send_heartbeats``: a thread emitting ``prefect.flow-run.heartbeat`` at the start of the
run, then every ``flows.heartbeat_frequency`` seconds; default 180, minimum 30; PREFECT_RUNNER_HEARTBEAT_FREQUENCY
is the deprecated alias of PREFECT_FLOWS_HEARTBEAT_FREQUENCY). A process worker starts that process
(``python -m prefect.engine``, its child, in its session) with the worker's environment under the deployment's
job-variable ``env``: the setting takes effect on the worker, or in the deployment (Conveyor's deployments set 30
as well). If only the flow-run process is killed, the worker sees its exit code and reports the run Crashed
itself; the zombie automation is for runs whose worker died too, which is what the zombie test does.

On top of it: ``deployed`` (`conveyor deploy`, a webhook notification block, `conveyor automations apply`), then
``session_runs``, which starts the runs of every test at once so that their waits overlap (textkit's bootstrap,
the improvement loop on lintkit by `prefect deployment run`, and the zombie run, whose worker it SIGKILLs with
its processes once a heartbeat was recorded), and ``delivered_textkit`` (the execution loop on textkit). A
timeline of what the harness did when (timeline.log) and the server's and workers' logs are files in the temp
dir; a failing test prints their tails.

Subprocesses (``prefect``, ``conveyor``) get the server's URL explicitly (``PrefectServer.env``). In-process
Prefect calls (clients, ``emit_event``) run inside ``api_settings`` (the ``prefect_api`` fixture): a setting
made once for the session could be shadowed by tests/flows' ``prefect_test_harness`` when one xdist worker runs
both packages. That harness is not used here (its conftest applies to tests/flows only).

xdist: scripts/check loads tests/server/xdist_scheduling.py, which sends every test here to one worker (one
server per test run; xdist's ``loadgroup`` does not group under pytest 9.2).

Run: ``uv run --no-sync pytest -q -p no:randomly tests/server`` (about 3 minutes on a busy 2-core machine; the
zombie test waits ZOMBIE_AFTER_S after the last heartbeat, overlapped with the others). The browser test needs
Debian's chromium and chromedriver (``make browser``); without them it skips, saying why, unless CI=true, where
it fails. Its screenshots go to test-output/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType

from tests.server.harness import PrefectServer, Started, alive
from tests.server.support import (
    DEPLOYMENT,
    WebhookReceiver,
    api_settings,
    apply_automations,
    deploy_argv,
    events,
    run_deployment,
    sample_repo,
    start_run,
    wait_for,
    wait_for_state,
)

POOL = "conveyor-test"
WORKER = "conveyor-test-worker"
ZOMBIE_POOL = "conveyor-zombie"  # a pool of its own: only its worker is lost
ZOMBIE_WORKER = "conveyor-zombie-worker"
ZOMBIE_DEPLOYMENT = "zombie"
# The least `conveyor automations apply --zombie-after` takes: two 30 s heartbeats (the automation watches
# every run of the server, so a late heartbeat of a live run must not crash it).
ZOMBIE_AFTER_S = 60
WEBHOOK_BLOCK = "conveyor-test-webhook"
_RUNNING: list[PrefectServer] = []  # the session's server, for the logs of a failing test


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The server, its process work pool and a worker on it (started; ``wait_online`` before relying on it)."""
    root = tmp_path_factory.mktemp("prefect-server")
    server = PrefectServer.start(root)
    _RUNNING.append(server)
    try:
        server.create_pool(POOL)
        server.start_worker(POOL, WORKER)
        yield server
    finally:
        left = server.stop_all()
        server.note("all stopped")
        print(f"\n{(root / 'timeline.log').read_text()}")
        still = alive(server.all_seen())
        if left or still:
            pytest.fail(
                f"processes the harness started are still running: {sorted(still)}\n{server.logs()}", pytrace=False
            )


@pytest.fixture
def prefect_api(prefect_server: PrefectServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrefectServer]:
    """The server, with this test's in-process Prefect settings and environment pointing at it."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    with api_settings(prefect_server):
        yield prefect_server


@pytest.fixture(scope="package")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@dataclass
class Repos:
    textkit: Path  # examples/textkit: bootstrapped, then delivered, then released by the milestone automation
    lintkit: Path  # examples/lintkit: the improvement loop's sample repository
    sleeper: Path  # examples/lintkit whose pytest scanner sleeps: the zombie's run never ends by itself


@pytest.fixture(scope="package")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    parent = tmp_path_factory.mktemp("repos")
    sleep = ["python", "-c", "import time; time.sleep(600)"]
    return Repos(
        textkit=sample_repo(parent, "textkit", spec={"agents": {"sandbox": "none"}}),
        lintkit=sample_repo(parent, "lintkit"),
        sleeper=sample_repo(
            parent, "lintkit", name="lintkit-sleeper", spec={"improvement": {"commands": {"pytest": sleep}}}
        ),
    )


@dataclass
class Deployed:
    name: str  # `conveyor deploy --name`: test
    zombie_worker: Started


@pytest.fixture(scope="package")
def deployed(prefect_server: PrefectServer, webhook: WebhookReceiver, repos: Repos) -> Deployed:
    """`conveyor deploy textkit --name test` on the session's pool (its milestone automation then watches
    textkit only), `conveyor deploy --name zombie` on a pool of the zombie's own with its own worker, and
    `conveyor automations apply` with a webhook notification block pointing at ``webhook``."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    server = prefect_server
    server.create_pool(ZOMBIE_POOL)
    zombie_worker = server.start_worker(ZOMBIE_POOL, ZOMBIE_WORKER)
    # Side by side: each CLI spends seconds importing before it asks the server anything.
    with ThreadPoolExecutor(max_workers=1) as side:
        zombie_deploy = side.submit(server.cli, *deploy_argv(pool=ZOMBIE_POOL, name=ZOMBIE_DEPLOYMENT))
        server.cli(*deploy_argv(repos.textkit, pool=POOL, name=DEPLOYMENT))
        with api_settings(server):
            CustomWebhookNotificationBlock(
                name="conveyor-test", url=webhook.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
            ).save(WEBHOOK_BLOCK, overwrite=True)
        apply_automations(server, name=DEPLOYMENT, notify_block=WEBHOOK_BLOCK, zombie_after_s=ZOMBIE_AFTER_S)
        zombie_deploy.result()
    server.note("deployed")
    return Deployed(DEPLOYMENT, zombie_worker)


@dataclass
class Zombie:
    flow_run: UUID
    worker: Started
    killed: set[tuple[int, int]]


@dataclass
class SessionRuns:
    """The deployment runs the session starts at once, so that their waits overlap (the workers run them side
    by side)."""

    bootstrap: UUID  # bootstrap/test on textkit, which the execution loop then delivers
    improvement: UUID  # improvement-loop/test on lintkit, by `prefect deployment run`
    zombie: Zombie  # improvement-loop/zombie on the sleeper, whose worker was SIGKILLed with its processes


@pytest.fixture(scope="package")
def session_runs(prefect_server: PrefectServer, deployed: Deployed, repos: Repos) -> SessionRuns:
    server = prefect_server
    server.wait_online(server.named(WORKER), POOL)
    server.wait_online(deployed.zombie_worker, ZOMBIE_POOL)
    # The longest chain first: textkit's bootstrap, then its execution loop, then the release it triggers.
    bootstrap = start_run(server, f"bootstrap/{deployed.name}", repo=str(repos.textkit))
    zombie_run = start_run(server, f"improvement-loop/{ZOMBIE_DEPLOYMENT}", repo=str(repos.sleeper))
    improvement = run_deployment(server, f"improvement-loop/{deployed.name}", repo=str(repos.lintkit))
    with api_settings(server):
        wait_for_state(zombie_run, StateType.RUNNING, timeout_s=120)
        server.note("zombie run Running")
        resource = f"prefect.flow-run.{zombie_run}"
        wait_for(
            "a heartbeat of the zombie's flow run",
            lambda: events(server, "prefect.flow-run.heartbeat", resource_id=resource),
            timeout_s=60,
        )
    server.note("zombie run heartbeat seen")
    worker = deployed.zombie_worker
    worker.members()  # records the processes below it, so teardown checks that they are gone too
    killed = worker.crash()
    server.note(f"zombie worker and its processes SIGKILLed: {sorted(killed)}")
    return SessionRuns(bootstrap, improvement, Zombie(flow_run=zombie_run, worker=worker, killed=killed))


@pytest.fixture(scope="package")
def delivered_textkit(
    prefect_server: PrefectServer, deployed: Deployed, repos: Repos, session_runs: SessionRuns
) -> tuple[Path, UUID]:
    """textkit bootstrapped, then delivered by execution-loop/test on the worker: (repo, loop run id)."""
    with api_settings(prefect_server):
        wait_for_state(session_runs.bootstrap, StateType.COMPLETED, timeout_s=240)
        prefect_server.note("textkit bootstrap Completed")
        loop = start_run(prefect_server, f"execution-loop/{deployed.name}", repo=str(repos.textkit))
        wait_for_state(loop, StateType.COMPLETED, timeout_s=300)
        prefect_server.note("textkit execution loop Completed")
    return repos.textkit, loop


# The order the session runs these modules in, so that waits overlap: the release that the execution loop's
# event starts runs while the browser test runs, and the zombie's fixed wait (ZOMBIE_AFTER_S) comes last.
MODULE_ORDER = ("test_deployments.py", "test_ui_browser.py", "test_automations.py", "test_zombie.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    positions = [i for i, item in enumerate(items) if item.path.parent == here]
    ordered = sorted(
        (items[i] for i in positions),
        key=lambda item: MODULE_ORDER.index(item.path.name) if item.path.name in MODULE_ORDER else len(MODULE_ORDER),
    )
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test here prints the tails of the server's and workers' logs."""
    report = yield
    if report.failed and _RUNNING:
        report.sections.append(("prefect server and worker logs", _RUNNING[-1].logs()))
    return report
