"""Helpers of the real-server tests: sample repositories, deployments and their runs, waiting on the API."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import Artifact, FlowRun, StateType

from tests.conftest import git
from tests.flows.loop_support import edit_build_spec
from tests.server.harness import PrefectServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEPLOYMENT = "test"  # the name `conveyor deploy --name` gives every deployment of the session


def sample_repo(parent: Path, example: str, *, name: str | None = None, spec: dict[str, Any] | None = None) -> Path:
    """A copy of ``examples/<example>`` as a fresh git repository, one commit on main; ``spec`` edits its build-spec."""
    repo = parent / (name or example)
    # Caches a local run of the example may have left are not part of it.
    caches = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".conveyor")
    shutil.copytree(EXAMPLES / example, repo, ignore=caches)
    if spec:
        edit_build_spec(repo, **spec)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"{example} skeleton")
    return repo


def log_subjects(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def deploy_argv(repo: Path | None = None, *, pool: str, name: str = DEPLOYMENT) -> list[str]:
    """`conveyor deploy [REPO]`: every Conveyor deployment, named ``name``, on ``pool`` (created if missing)."""
    return ["conveyor", "deploy", *([str(repo)] if repo else []), "--name", name, "--pool", pool]


def apply_automations(server: PrefectServer, *, name: str, notify_block: str, zombie_after_s: int) -> str:
    """`conveyor automations apply`: zombie detection, the ticket-blocked notification, the milestone release."""
    argv = ["automations", "apply", "--name", name, "--notify-block", notify_block]
    argv += ["--zombie-after", str(zombie_after_s)]
    server.note("conveyor " + " ".join(argv))
    return server.cli("conveyor", *argv).stdout


def start_run(server: PrefectServer, deployment: str, **params: Any) -> UUID:
    """A run of ``deployment`` (FLOW/NAME) from the API, as `prefect deployment run` makes it, without the CLI's
    start-up (seconds on a busy machine; the test of the CLI itself is the improvement loop's)."""
    with api_settings(server), client() as api:
        run = api.create_flow_run_from_deployment(api.read_deployment_by_name(deployment).id, parameters=params)
    server.note(f"{deployment} run {run.id} created")
    return run.id


def run_deployment(server: PrefectServer, deployment: str, **params: Any) -> UUID:
    """`prefect deployment run FLOW/NAME --param k=v ...`; returns the new flow run's id."""
    argv = ["prefect", "deployment", "run", deployment]
    for key, value in params.items():
        argv += ["--param", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    out = server.cli(*argv).stdout
    found = re.search(r"UUID: ([0-9a-f-]{36})", out)
    assert found, out
    server.note(f"{deployment} run {found.group(1)} created")
    return UUID(found.group(1))


@contextmanager
def api_settings(server: PrefectServer) -> Iterator[None]:
    """In-process Prefect settings (clients, ``emit_event``) pointing at ``server``, for this block only."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


def client() -> SyncPrefectClient:
    """A client of the API the test's settings name (the ``prefect_api`` fixture points them at the server)."""
    return get_client(sync_client=True)


def run_logs(flow_run_id: UUID, lines: int = 60) -> str:
    with client() as api:
        logs = api.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
    return "\n".join(f"{log.timestamp:%H:%M:%S} {log.message}" for log in logs[-lines:])


def wait_for_state(flow_run_id: UUID, expect: StateType, *, timeout_s: float) -> FlowRun:
    """Poll until the run is in ``expect``; fail at once if it ends in another final state, with its logs."""
    deadline = time.monotonic() + timeout_s
    run: FlowRun | None = None
    with client() as api:
        while time.monotonic() < deadline:
            run = api.read_flow_run(flow_run_id)
            if run.state and run.state.type == expect:
                return run
            if run.state and run.state.is_final():
                break
            time.sleep(0.5)
    state = run.state if run else None
    raise AssertionError(
        f"flow run {flow_run_id} is {state.type if state else None} ({state.message if state else ''}), "
        f"not {expect.value}, after {'its end' if state and state.is_final() else f'{timeout_s} s'}\n"
        f"--- its logs\n{run_logs(flow_run_id)}"
    )


def wait_for(what: str, check: Callable[[], Any], *, timeout_s: float, every_s: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; returns that, or fails naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def artifacts_of(flow_run_id: UUID) -> list[Artifact]:
    with client() as api:
        return api.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def events(server: PrefectServer, event: str, *, resource_id: str | None = None) -> list[dict[str, Any]]:
    """Events named ``event`` the server recorded (through its REST API: the client has no reader for them)."""
    query: dict[str, Any] = {"event": {"name": [event]}}
    if resource_id:
        query["resource"] = {"id": [resource_id]}
    found = httpx.post(f"{server.api_url}/events/filter", json={"filter": query, "limit": 50}, timeout=10)
    found.raise_for_status()
    items: list[dict[str, Any]] = found.json()["events"]
    return items


@dataclass
class Received:
    path: str
    body: str


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 recording every request: the far end of a webhook notification block."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace")
                with receiver._lock:
                    receiver.received.append(Received(self.path, body))
                self.send_response(204)
                self.end_headers()

            do_POST = do_PUT = _record  # noqa: N815 (http.server's naming)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the test asserts on what arrived; nothing for stderr

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/conveyor"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def bodies(self) -> list[str]:
        with self._lock:
            return [item.body for item in self.received]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
