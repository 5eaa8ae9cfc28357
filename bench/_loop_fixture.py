"""Shared by bench/loop_overhead and bench/scale: a real target repository, the real execution loop, and timers.

- :func:`prepare_environment` points Prefect at a temporary home (its own ephemeral API server, as ``conveyor
  run`` starts one) before Prefect is imported; :func:`warm_up_prefect` starts that server with a trivial flow
  so that its start-up is not counted as loop time.
- :func:`make_repo` builds a git repository with ``n`` independent change tickets (one file each, disjoint touch
  sets): ``automations/build-spec.yaml`` (scripted agents, one trivial quality gate), the agent script
  (implementer: one ``write`` per ticket; reviewer: approve; knowledge steward: a waiver, both ``ticket: "*"``
  with ``repeat_last``), and the backlog files written the way bootstrap writes them (TASKS.md, run-queue.json,
  run-state.json) and the .gitignore entries ``conveyor init`` adds, all committed.
- :class:`Timers` wraps, for measurement only, ``GitRepo._git`` (every git command Conveyor runs),
  ``run_quality_gates`` (as delivery and the merge queue call it), ``Tracker._write`` (the three tracking files),
  the agent backends' ``run``, ``plan_dispatch``, the Limiter's slot around each agent call
  (``delivery_agents._Limited.run``) and the loop's artifacts (``_Loop._publish``). The wrappers time and call
  through; behaviour is unchanged.
- :func:`run_loop` runs ``flows.execution_loop.execution_loop`` (the Prefect flow, subflows and all) on the repo.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BOT = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@localhost"}
PREFIX = "BM"


def prepare_environment(home: Path, api_url: str | None = None) -> None:
    """Prefect settings as ``conveyor run`` sets them, with PREFECT_HOME in ``home``; call before importing Prefect.

    Without ``api_url`` the first flow starts an ephemeral API server (as ``conveyor run`` does); with it, the
    flows use that server (bench/scale shares one server between its child processes)."""
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
    else:
        os.environ.pop("PREFECT_API_URL", None)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def warm_up_prefect() -> float:
    """Run one trivial flow (starts the ephemeral API server); returns its wall time in seconds."""
    from prefect import flow

    @flow(name="bench-warm-up")
    def warm_up() -> int:
        return 1

    started = time.perf_counter()
    warm_up()
    return time.perf_counter() - started


# -- the target repository -------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        **BOT,
        "GIT_COMMITTER_NAME": BOT["GIT_AUTHOR_NAME"],
        "GIT_COMMITTER_EMAIL": BOT["GIT_AUTHOR_EMAIL"],
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def ticket_id(i: int) -> str:
    return f"{PREFIX}-FEAT-{i:03d}"


def ticket_path(i: int) -> str:
    return f"src/bench_pkg/feat_{i:03d}.py"


def _script(n: int) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "role": "implementer",
            "ticket": ticket_id(i),
            "stage": "implementing",
            "steps": [
                {
                    "notes": f"feat_{i:03d}.py",
                    "write": {"path": ticket_path(i), "content": f'"""Feature {i}."""\n\nVALUE = {i}\n'},
                }
            ],
        }
        for i in range(1, n + 1)
    ]
    entries += [
        {"role": "reviewer", "ticket": "*", "repeat_last": True, "steps": [{"output": {"decision": "approve"}}]},
        {
            "role": "knowledge-steward",
            "ticket": "*",
            "repeat_last": True,
            "steps": [{"output": {"updates": [], "checklist_complete": True, "waiver": "bench: no docs to change"}}],
        },
        {
            "role": "qa-triage",
            "ticket": "*",
            "repeat_last": True,
            "steps": [
                {
                    "output": {
                        "failure_summary": "unexpected in the benchmark",
                        "failing_gates": ["noop"],
                        "likely_cause": "none",
                        "next_action": "escalate",
                    }
                }
            ],
        },
    ]
    return {"version": 1, "description": f"bench: {n} independent tickets, zero latency", "entries": entries}


def make_repo(root: Path, n: int, *, workers: int, gate: list[str], sandbox: str) -> Path:
    """A committed target repository with ``n`` independent tickets (see the module docstring)."""
    from conveyor.adapters.state_files import run_queue_path, run_state_path, save_run_queue, save_run_state
    from conveyor.adapters.tasks_md import new_tasks_document, write_tasks_file
    from conveyor.domain.run_state import RunQueue, RunState
    from conveyor.domain.ticket import TaskType, Ticket
    from conveyor.ports import utcnow
    from conveyor.services.backlog_loader import RUN_QUEUE_PATH, RUN_STATE_PATH, TASKS_PATH
    from conveyor.services.scaffold import GITIGNORE_ENTRIES
    from conveyor.settings import load_settings

    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    (root / "src" / "bench_pkg").mkdir(parents=True)
    (root / "src" / "bench_pkg" / "__init__.py").write_text('"""Benchmark target."""\n')
    (root / "README.md").write_text("# bench target\n")
    # The .gitignore entries `conveyor init` adds (logs, replay traces and local state stay out of git).
    (root / ".gitignore").write_text("\n".join(GITIGNORE_ENTRIES) + "\n")
    spec = {
        "project": "bench-target",
        "task_prefix": PREFIX,
        "workers": workers,
        "budget": {"cap_usd": 1000.0},
        "quality_gates": [{"name": "noop", "argv": gate, "timeout_s": 60}],
        "agents": {"backend": "scripted", "script": "automations/bench-script.yaml", "sandbox": sandbox},
    }
    (root / "automations").mkdir()
    (root / "automations" / "build-spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "automations" / "bench-script.yaml").write_text(yaml.safe_dump(_script(n), sort_keys=False, width=200))

    settings = load_settings(root)
    tickets = [
        Ticket(
            id=ticket_id(i),
            title=f"Add feature {i}",
            description=f"Create {ticket_path(i)}.",
            acceptance_criteria=(f"{ticket_path(i)} exists",),
            touch_set=(ticket_path(i),),
            complexity=1,
            task_type=TaskType.FEATURE_ADD,
            estimate_tokens=1000,
        )
        for i in range(1, n + 1)
    ]
    now = utcnow()
    write_tasks_file(root / TASKS_PATH, new_tasks_document().sync(tickets))
    save_run_queue(
        run_queue_path(root),
        RunQueue.of(tickets, settings.task_prefix, settings.milestone.name),
        display=RUN_QUEUE_PATH,
    )
    state = RunState.start("RUN-20000101-0000", root.name, now, milestone=settings.milestone.name)
    for ticket in tickets:
        state = state.record(ticket, now)
    save_run_state(run_state_path(root), state, display=RUN_STATE_PATH)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", f"bench target: {n} tickets")
    return root


# -- timers ----------------------------------------------------------------------------------------------

# Priority when intervals of several categories overlap in wall time (nested, or in parallel threads). The two
# Prefect categories are Prefect calls Conveyor makes itself: the Limiter's concurrency slot around each agent
# call (delivery_agents._Limited.run minus the call inside) and the artifacts published after each ticket.
CATEGORIES = ("gates", "git", "state writes", "agents", "dispatch", "prefect slots", "prefect artifacts")
PREFECT_CATEGORIES = ("prefect slots", "prefect artifacts", "rest")


@dataclass
class Timers:
    """Intervals (outermost per thread and category) of the wrapped functions, on the perf_counter clock."""

    intervals: list[tuple[str, float, float]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    busy: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _depth: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, category, 0)
            setattr(self._depth, category, depth + 1)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                setattr(self._depth, category, depth)
                if depth == 0:
                    with self._lock:
                        self.intervals.append((category, started, ended))
                        self.calls[category] += 1
                        self.busy[category] += ended - started

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def partition(self, start: float, end: float) -> dict[str, float]:
        """Wall time of [start, end] split by category: each instant goes to the highest-priority category
        active then (CATEGORIES order); instants with none active go to "rest". Sums to end - start."""
        events: list[tuple[float, int, str]] = []
        for category, began, finished in self.intervals:
            a, b = max(began, start), min(finished, end)
            if b > a:
                events += [(a, 1, category), (b, -1, category)]
        events.sort()
        active: dict[str, int] = defaultdict(int)
        out = dict.fromkeys((*CATEGORIES, "rest"), 0.0)
        last = start
        for at, delta, category in events:
            if at > last:
                top = next((c for c in CATEGORIES if active[c] > 0), "rest")
                out[top] += at - last
                last = at
            active[category] += delta
        out["rest"] += end - last
        return out


@contextmanager
def instrumented(timers: Timers) -> Iterator[None]:
    """Install the timing wrappers (module docstring) for the duration; restore the originals afterwards."""
    from conveyor.adapters.agents.recording import RecordingBackend
    from conveyor.adapters.agents.scripted import ScriptedBackend
    from conveyor.adapters.git_repo import GitRepo
    from conveyor.services import delivery, delivery_agents, integration
    from conveyor.services.tracker import Tracker
    from flows import execution_loop as loop_module

    targets: list[tuple[Any, str, str]] = [
        (GitRepo, "_git", "git"),
        (delivery, "run_quality_gates", "gates"),  # the name as delivery and the merge queue look it up
        (integration, "run_quality_gates", "gates"),
        (Tracker, "_write", "state writes"),
        (ScriptedBackend, "run", "agents"),
        (RecordingBackend, "run", "agents"),
        (loop_module, "plan_dispatch", "dispatch"),
        (loop_module._Loop, "_publish", "prefect artifacts"),
    ]
    limited = vars(delivery_agents).get("_Limited")  # the Limiter wrapper (absent in older builds)
    if limited is not None:
        targets.append((limited, "run", "prefect slots"))
    originals = [(owner, name, vars(owner)[name]) for owner, name, _ in targets]
    for owner, name, category in targets:
        setattr(owner, name, timers.wrap(category, vars(owner)[name]))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class LoopRun:
    tickets: int
    wall_s: float
    started: float
    ended: float
    result: dict[str, Any]
    cpu_s: float  # this process (all its threads), user + system
    children_cpu_s: float  # its waited-for child processes: git, gates, bwrap


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run_loop(repo: Path, n: int) -> LoopRun:
    """``asyncio.run(execution_loop(repo=...))``, as ``conveyor run`` calls it; timed around the flow call."""
    from flows.execution_loop import execution_loop

    cpu_before, children_before = _cpu()
    started = time.perf_counter()
    result = asyncio.run(execution_loop(repo=str(repo)))
    ended = time.perf_counter()
    cpu_after, children_after = _cpu()
    return LoopRun(
        tickets=n,
        wall_s=ended - started,
        started=started,
        ended=ended,
        result=result,
        cpu_s=cpu_after - cpu_before,
        children_cpu_s=children_after - children_before,
    )


def write_cost_ms(root: Path, n: int, repeats: int = 10) -> float:
    """Median ms of one ``Tracker._write`` (no loop, no Prefect) on a fresh backlog of ``n`` tickets."""
    import statistics

    from conveyor.ports import utcnow
    from conveyor.services.agents import model_table
    from conveyor.services.tracker import Tracker
    from conveyor.settings import load_settings

    repo = make_repo(root, n, workers=2, gate=["true"], sandbox="none")
    settings = load_settings(repo)
    tracker = Tracker(repo, "RUN-20000101-0001", settings, model_table(settings.agents), clock=utcnow)
    tracker._write(utcnow())
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        tracker._write(utcnow())
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def check_run(run: LoopRun) -> str:
    """ "" when every ticket merged; else what went wrong (the report's first lines)."""
    done = len(run.result["done"])
    if done == run.tickets and not run.result["stopped"]:
        return ""
    report = str(run.result.get("report", ""))[:1500]
    return f"only {done}/{run.tickets} tickets done; stopped: {run.result['stopped']!r}\n{report}"


def temp_root(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)


def print_header(title: str, tmp: Path) -> None:
    """The benchmark's title and the platform it ran on (every figure depends on it)."""
    import prefect

    print(title)
    print(
        f"python {platform.python_version()}, prefect {prefect.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}; temp dir {tmp}"
    )
