"""The processes of the real-server tests: a `prefect server start` and process workers, each in its own session.

Everything here is stopped by PID: a process group is the PID of the process that leads it, and every process
a started one left behind is found by its session id (or, for those that made a session of their own, by its
parent chain) and signalled by its own PID. Nothing is found by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import httpx

# The CLIs of the virtual environment running the tests: the worker's flow-run processes then import this
# checkout's flows (the editable install), as a deployment's module-path entrypoint expects.
BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT_S = 180.0  # a cold start migrates a new database: 11-21 s measured here, more on a busy CI
WORKER_START_TIMEOUT_S = 120.0  # 7-22 s measured here under load
STOP_GRACE_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot: with the PID, it names one process even if the PID is reused later

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)


def processes() -> list[ProcInfo]:
    """Live processes (zombies left out: they are already dead, only not reaped yet)."""
    found: list[ProcInfo] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: the fields after it start after the last ')'.
        fields = text.rsplit(")", 1)[1].split()
        if fields[0] in {"Z", "X"}:
            continue
        # After the name: state ppid pgrp session ... starttime is the 20th field from there (field 22 of stat).
        found.append(ProcInfo(int(stat.parent.name), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])))
    return found


def descendants(pid: int) -> set[tuple[int, int]]:
    """Every live process below ``pid`` in the parent chain, as (pid, start) keys."""
    table = processes()
    children: dict[int, list[ProcInfo]] = {}
    for proc in table:
        children.setdefault(proc.ppid, []).append(proc)
    found: set[tuple[int, int]] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.key not in found:
                found.add(child.key)
                todo.append(child.pid)
    return found


def alive(keys: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The processes of ``keys`` still running: same PID and same start time, so a reused PID is not one of them."""
    live = {proc.key for proc in processes()}
    return {key for key in keys if key in live}


def signal_processes(keys: Iterable[tuple[int, int]], sig: signal.Signals) -> None:
    for pid, _ in alive(keys):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


@dataclass
class Started:
    """A process the harness started, as leader of its own session (so its process group is its PID)."""

    name: str
    kind: Literal["server", "worker"]
    process: subprocess.Popen[bytes]
    log: Path
    # Every process seen in its session or below it (flow runs, and gates or scanners, which run in sessions of
    # their own), as (pid, start) keys: stopped with it and checked gone after.
    seen: set[tuple[int, int]] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.process.pid

    def members(self) -> set[tuple[int, int]]:
        """Its live processes: its session, its descendants, and those seen before that still run."""
        self.seen |= {proc.key for proc in processes() if proc.sid == self.pid} | descendants(self.pid)
        return alive(self.seen)

    def stop(self, grace_s: float = STOP_GRACE_S) -> set[tuple[int, int]]:
        """SIGTERM to its process group and by PID to the rest, SIGKILL after ``grace_s``; returns what is left."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            if not self.members():
                break
            with contextlib.suppress(ProcessLookupError):  # an empty group: its members left it or are gone
                os.killpg(self.pid, sig)
            signal_processes(self.members(), sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and self.members():
                self.process.poll()  # reaps the leader, which otherwise stays a zombie of this process
                time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        return self.members()

    def crash(self) -> set[tuple[int, int]]:
        """SIGKILL it and every process below it, as a machine that died: none of them can report the end.

        Killing only the flow-run process would not do: the worker sees its exit code and reports the run
        Crashed itself. The tree is frozen first (SIGSTOP, until no new process appears), so nothing in it
        reacts to the others' deaths or starts another process; then the worker dies first, then the rest.
        """
        frozen: set[tuple[int, int]] = set()
        while True:
            tree = alive({proc.key for proc in processes() if proc.pid == self.pid} | descendants(self.pid) | frozen)
            new = tree - frozen
            if not new:
                break
            signal_processes(new, signal.SIGSTOP)
            frozen |= new
        self.seen |= frozen
        signal_processes({key for key in frozen if key[0] == self.pid}, signal.SIGKILL)
        signal_processes(frozen, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and alive(frozen):
            time.sleep(0.05)
        self.process.wait(timeout=10)  # reaps the leader (its return code is -SIGKILL)
        return frozen

    def log_tail(self, lines: int = 120) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log at {self.log})"
        return "\n".join(text[-lines:])


@dataclass
class PrefectServer:
    """One `prefect server start` on 127.0.0.1 with its own PREFECT_HOME and database, and its workers."""

    root: Path
    port: int
    env: dict[str, str]
    started: list[Started] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @classmethod
    def start(cls, root: Path) -> PrefectServer:
        port = free_port()
        home = root / "prefect-home"
        home.mkdir(parents=True, exist_ok=True)
        api_url = f"http://127.0.0.1:{port}/api"
        env = {
            key: value
            for key, value in os.environ.items()
            # Nothing of the test process's own Prefect target or profile leaks into the processes started here.
            if not key.startswith(("PREFECT_API_", "PREFECT_PROFILE", "PREFECT_UI_", "PREFECT_SERVER_"))
        }
        env |= {
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{root / 'prefect.db'}",
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_UI_ENABLED": "true",
            # The UI asks the API at PREFECT_UI_API_URL, which otherwise stays at port 4200 whatever --port says.
            "PREFECT_UI_API_URL": api_url,
            # The logs of server and workers are the evidence printed on failure: INFO, not the tests' WARNING.
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        server = cls(root=root, port=port, env=env)
        server.note(f"starting prefect server on port {port}")
        server._spawn("server", "server", ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)])
        try:
            server._wait_healthy()
        except BaseException:
            server.stop_all()  # a server that never became healthy is still a process this harness started
            raise
        server.note("server healthy")
        return server

    def _spawn(self, name: str, kind: Literal["server", "worker"], argv: list[str], **extra_env: str) -> Started:
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(BIN / argv[0]), *argv[1:]],
                cwd=self.root,
                env={**self.env, **extra_env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session and process group, whose id is its PID
            )
        started = Started(name=name, kind=kind, process=process, log=log)
        self.started.append(started)
        return started

    def _wait_healthy(self) -> None:
        server = self.started[0]
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"prefect server not healthy after {SERVER_START_TIMEOUT_S} s:\n{server.log_tail()}")

    def cli(
        self, *argv: str, timeout: float = 180, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a CLI of the virtual environment (`prefect`, `conveyor`) against this server."""
        done = subprocess.run(
            [str(BIN / argv[0]), *argv[1:]],
            cwd=cwd or self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )
        return done

    def create_pool(self, pool: str) -> None:
        """A process work pool with the process worker's default job template, as `prefect work-pool create
        --type process` makes it (through the API: the CLI's start-up costs seconds on a busy machine)."""
        from prefect.workers.process import ProcessWorker

        body = {"name": pool, "type": "process", "base_job_template": ProcessWorker.get_default_base_job_template()}
        created = httpx.post(f"{self.api_url}/work_pools/", json=body, timeout=30)
        assert created.status_code == 201, created.text
        self.note(f"work pool {pool} created")

    def start_worker(self, pool: str, name: str, **extra_env: str) -> Started:
        """A process worker on ``pool``, started (``wait_online`` waits until the API lists it online)."""
        return self._spawn(
            name,
            "worker",
            ["prefect", "worker", "start", "--pool", pool, "--name", name, "--type", "process"],
            # The flow-run process is the one that sends heartbeats (prefect.flow_engine._send_heartbeats, every
            # `flows.heartbeat_frequency` s, 180 by default, 30 at the least); the process worker starts it with
            # its own environment (and the deployment's job variables over it: Conveyor's set 30 too), so the
            # setting goes here. Polling every second picks runs up without the 10 s default wait.
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30",
            PREFECT_WORKER_QUERY_SECONDS="1",
            **extra_env,
        )

    def wait_online(self, worker: Started, pool: str) -> None:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise RuntimeError(f"{worker.name} exited with {worker.process.returncode}:\n{worker.log_tail()}")
            found = httpx.post(f"{self.api_url}/work_pools/{pool}/workers/filter", json={}, timeout=5)
            if found.status_code == 200 and any(
                item["name"] == worker.name and item["status"] == "ONLINE" for item in found.json()
            ):
                self.note(f"worker {worker.name} (pid {worker.pid}) online on pool {pool}")
                return
            time.sleep(0.25)
        raise RuntimeError(f"{worker.name} not online after {WORKER_START_TIMEOUT_S} s:\n{worker.log_tail()}")

    def stop_all(self) -> dict[str, set[tuple[int, int]]]:
        """Workers first (their flow runs talk to the server until they end), then the server. Returns leftovers."""
        left: dict[str, set[tuple[int, int]]] = {}
        ordered = [s for s in reversed(self.started) if s.kind == "worker"] + [
            s for s in self.started if s.kind == "server"
        ]
        for started in ordered:
            self.note(f"stopping {started.name} (pid {started.pid})")
            remaining = started.stop()
            if remaining:
                left[started.name] = remaining
        return left

    def named(self, name: str) -> Started:
        return next(started for started in self.started if started.name == name)

    def all_seen(self) -> set[tuple[int, int]]:
        seen: set[tuple[int, int]] = set()
        for started in self.started:
            seen |= started.seen
        return seen

    def note(self, message: str) -> None:
        """A line of the session's timeline (timeline.log, printed with the logs): what the harness did when."""
        with (self.root / "timeline.log").open("a", encoding="utf-8") as out:
            out.write(f"{datetime.now():%H:%M:%S.%f} {message}\n")

    def logs(self, lines: int = 120) -> str:
        timeline = self.root / "timeline.log"
        parts = [f"===== timeline =====\n{timeline.read_text() if timeline.exists() else ''}"]
        parts += [
            f"===== {started.name} (pid {started.pid}, log {started.log}) =====\n{started.log_tail(lines)}"
            for started in self.started
        ]
        return "\n".join(parts)
