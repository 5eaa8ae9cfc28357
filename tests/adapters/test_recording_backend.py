"""RecordingBackend: logs, traces, redaction, replay, the empty-diff rule and a killed process.

Real git repositories and real files; the only stand-ins are the clock and two tiny backends defined here
(one that raises, one that hands its transcript over as a file).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.adapters.agents.call_log import LOGS_DIR, TRACES_DIR, Message
from conveyor.adapters.agents.recording import RecordingBackend
from conveyor.adapters.agents.replay import REPLAY_DIR, ReplayStore
from conveyor.adapters.agents.scripted import ScriptedBackend
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole, ErrorKind, Usage, WorkerStatus
from conveyor.domain.errors import InputError
from tests.adapters.test_scripted_backend import RUN_ID, add_worktree, make_request, prepare_repo
from tests.conftest import git

FAKE_KEY = "sk-ant-api03-PLANTEDplantedPLANTED0123456789abcdefXYZ"
ENV_SECRET = "value-of-a-secret-from-the-environment"


class StepClock:
    """A clock that stands still unless told to move (so several calls share one millisecond)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 30, 0, 123_456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class CountingBackend:
    """Passes calls to a real backend and counts them (the proof that a replay made no call)."""

    def __init__(self, inner: ScriptedBackend) -> None:
        self.inner = inner
        self.calls: list[AgentRequest] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def run(self, request: AgentRequest) -> AgentResult:
        self.calls.append(request)
        return self.inner.run(request)

    def pop_transcript(self, request: AgentRequest) -> list[Message] | None:
        return self.inner.pop_transcript(request)


IMPLEMENTER_SCRIPT = """
entries:
  - role: implementer
    ticket: T-1
    steps:
      - write: {path: src/greeting.py, content: "GREETING = 'hello'\\n"}
        notes: greeting added
        usage: {input_tokens: 4000, output_tokens: 1200, requests: 2}
      - write: {path: src/greeting.py, content: "GREETING = 'hello again'\\n"}
        notes: second version
  - role: implementer
    ticket: T-EMPTY
    repeat_last: true
    steps:
      - {notes: "nothing to do, claimed success"}
  - role: implementer
    ticket: T-FLAKY
    steps:
      - {error_kind: overloaded, error_detail: "529"}
      - write: {path: flaky.txt, content: "done\\n"}
  - role: reviewer
    repeat_last: true
    steps:
      - output: {decision: approve}
        text: "looks fine"
"""


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    return prepare_repo(scratch_repo)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(IMPLEMENTER_SCRIPT)
    return path


def recording(
    repo: Path,
    script: Path,
    clock: StepClock | None = None,
    *,
    keep_traces: bool = True,
    state_path: Path | None = None,
) -> tuple[RecordingBackend, CountingBackend]:
    counting = CountingBackend(ScriptedBackend(script, repo_root=repo, state_path=state_path))
    backend = RecordingBackend(
        counting,
        repo_root=repo,
        clock=clock or StepClock(),
        replay=ReplayStore(repo, known_secrets=[ENV_SECRET]),
        keep_traces=keep_traces,
        known_secrets=[ENV_SECRET],
    )
    return backend, counting


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def log_files(repo: Path, role: str) -> list[Path]:
    return sorted((repo / LOGS_DIR / role).glob("*.json"))


def test_logs_and_traces_are_written_and_redacted(repo: Path, script: Path) -> None:
    worktree = add_worktree(repo, "T-1")
    base = GitRepo(worktree).head_sha()
    clock = StepClock()
    backend, _ = recording(repo, script, clock)
    assert backend.name == "scripted"
    request = make_request(
        workdir=worktree,
        base=base,
        inputs={
            "title": "Add greeting",
            "description": f"use the key {FAKE_KEY} to call the API",
            "env": {"ANTHROPIC_API_KEY": FAKE_KEY, "GITHUB_TOKEN": "ghp_" + "q" * 36},
            "note": f"leaked {ENV_SECRET}",
        },
    )
    result = backend.run(request)
    assert result.ok and not result.replayed
    assert result.used == "5.2K"
    [log] = log_files(repo, "implementer")
    assert log.name == "20260105T093000.123Z.json"
    assert result.transcript == log.relative_to(repo).as_posix()
    record = json.loads(log.read_text())
    assert set(record) >= {"format", "call", "backend", "model", "timing", "request", "result", "usage", "cost_usd"}
    assert record["backend"] == "scripted" and record["model"] == "scripted"
    assert record["call"]["run_id"] == RUN_ID and record["call"]["replay_key"] == request.replay_key()
    assert record["request"]["system"] == "You are the implementer."
    assert record["request"]["inputs"]["env"]["ANTHROPIC_API_KEY"] == "[REDACTED]"
    assert record["result"]["commit_sha"] == result.commit_sha
    assert record["usage"]["input_tokens"] == 4000 and record["cost_usd"] == pytest.approx(result.cost_usd)
    assert record["error"] is None
    assert record["transcript"]["messages"][0]["role"] == "user"
    trace_file = repo / TRACES_DIR / f"{RUN_ID}.jsonl"
    [line] = trace_file.read_text().splitlines()
    trace = json.loads(line)
    assert (
        trace["log"] == result.transcript and trace["status"] == "success" and trace["commit_sha"] == result.commit_sha
    )

    backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", inputs={"secret_note": FAKE_KEY}))
    written = [p for p in all_files(repo) if ".git" not in p.relative_to(repo).parts]
    assert any(p.is_relative_to(repo / REPLAY_DIR) for p in written)
    for path in written + all_files(worktree):
        data = path.read_bytes()
        assert FAKE_KEY.encode() not in data, path
        assert ENV_SECRET.encode() not in data, path
        assert b"ghp_qqqq" not in data, path
    assert GitRepo(repo).is_clean()  # logs, traces and replay entries are all gitignored


def test_log_names_are_unique_within_one_millisecond(repo: Path, script: Path) -> None:
    clock = StepClock()
    backend, _ = recording(repo, script, clock)
    for attempt in (1, 2, 3):
        backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", attempt=attempt))
    names = [p.name for p in log_files(repo, "reviewer")]
    assert sorted(names) == sorted(
        ["20260105T093000.123Z.json", "20260105T093000.123Z-2.json", "20260105T093000.123Z-3.json"]
    )
    assert len((repo / TRACES_DIR / f"{RUN_ID}.jsonl").read_text().splitlines()) == 3


def test_keep_traces_off_writes_logs_only(repo: Path, script: Path) -> None:
    backend, _ = recording(repo, script, keep_traces=False)
    backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing"))
    assert log_files(repo, "reviewer")
    assert not (repo / TRACES_DIR).exists()


def test_second_identical_call_is_replayed_and_restores_the_worktree(repo: Path, script: Path) -> None:
    worktree = add_worktree(repo, "T-1")
    wt = GitRepo(worktree)
    base = wt.head_sha()
    clock = StepClock()
    backend, counting = recording(repo, script, clock)
    first = backend.run(make_request(workdir=worktree, base=base))
    assert first.ok and first.commit_sha is not None

    # Move the worktree elsewhere: a later commit on the branch, plus uncommitted work.
    (worktree / "later.txt").write_text("later\n")
    wt.commit_all("later work")
    (worktree / "src" / "greeting.py").write_text("GREETING = 'uncommitted edit'\n")
    (worktree / "scratch.txt").write_text("untracked\n")
    clock.advance(5)

    again = backend.run(make_request(workdir=worktree, base=base))
    assert again.replayed
    assert len(counting.calls) == 1  # the inner backend was not called again
    assert counting.inner.calls_for(AgentRole.IMPLEMENTER, "T-1", "implementing") == 1  # no step consumed
    assert again.commit_sha == first.commit_sha and again.notes == first.notes and again.usage == first.usage
    assert again.transcript == first.transcript  # the original call's log
    assert wt.head_sha() == first.commit_sha and wt.is_clean() and wt.branch_of() == "conveyor/t-1"
    assert (worktree / "src" / "greeting.py").read_text() == "GREETING = 'hello'\n"
    # nothing was lost: the uncommitted work is on a rescue branch
    rescue = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/conveyor/rescue/").split()
    assert len(rescue) == 1
    assert git(repo, "show", f"{rescue[0]}:scratch.txt") == "untracked\n"
    assert git(repo, "show", f"{rescue[0]}:src/greeting.py") == "GREETING = 'uncommitted edit'\n"
    replay_logs = [json.loads(p.read_text()) for p in log_files(repo, "implementer")]
    assert sorted(r["result"]["replayed"] for r in replay_logs) == [False, True]


@pytest.mark.parametrize(
    "change",
    [
        {"inputs": {"title": "Add greeting", "description": "say hello LOUDER"}},
        {"attempt": 2},
        {"base": "later"},
    ],
    ids=["ticket-text", "attempt", "base-commit"],
)
def test_a_changed_input_makes_a_new_call(repo: Path, script: Path, change: dict[str, Any]) -> None:
    worktree = add_worktree(repo, "T-1")
    wt = GitRepo(worktree)
    base = wt.head_sha()
    backend, counting = recording(repo, script)
    first = backend.run(make_request(workdir=worktree, base=base))
    assert first.ok
    kwargs: dict[str, Any] = {"workdir": worktree, "base": base, **change}
    if change.get("base") == "later":
        kwargs["base"] = first.commit_sha
    second = backend.run(make_request(**kwargs))
    assert not second.replayed
    assert len(counting.calls) == 2
    assert second.ok and second.notes == "second version" and second.commit_sha != first.commit_sha


def test_empty_diff_turns_success_into_failure_and_is_not_stored(repo: Path, script: Path) -> None:
    worktree = add_worktree(repo, "T-EMPTY")
    base = GitRepo(worktree).head_sha()
    backend, counting = recording(repo, script)
    request = make_request(ticket="T-EMPTY", workdir=worktree, base=base)
    result = backend.run(request)
    assert result.status is WorkerStatus.FAILED and result.error_kind is ErrorKind.EMPTY_DIFF
    assert "empty diff" in result.notes and "nothing to do" in result.notes
    assert ReplayStore(repo).lookup(request) is None
    assert not backend.run(request).replayed and len(counting.calls) == 2
    [log, *_] = log_files(repo, "implementer")
    assert json.loads(log.read_text())["error"]["kind"] == "empty_diff"


def test_a_transient_failure_is_retried_not_replayed(repo: Path, script: Path) -> None:
    worktree = add_worktree(repo, "T-FLAKY")
    base = GitRepo(worktree).head_sha()
    backend, counting = recording(repo, script)
    request = make_request(ticket="T-FLAKY", workdir=worktree, base=base)
    assert backend.run(request).error_kind is ErrorKind.OVERLOADED
    retried = backend.run(request)
    assert retried.ok and not retried.replayed
    assert backend.run(request).replayed
    assert len(counting.calls) == 2


def test_judgment_calls_replay_without_git(repo: Path, script: Path) -> None:
    backend, counting = recording(repo, script)
    request = make_request(role=AgentRole.REVIEWER, stage="reviewing", ticket="T-1")
    first = backend.run(request)
    second = backend.run(request)
    assert second.replayed and second.output == first.output == {"decision": "approve"}
    assert len(counting.calls) == 1


def test_a_vanished_implementer_commit_is_a_miss(repo: Path, script: Path) -> None:
    worktree = add_worktree(repo, "T-1")
    request = make_request(workdir=worktree, base=GitRepo(worktree).head_sha())
    store = ReplayStore(repo)
    result = AgentResult(task_id="T-1", status=WorkerStatus.SUCCESS, backend="scripted", commit_sha="e" * 40)
    entry = store.store(request, result, None, commit_sha="e" * 40, branch="conveyor/t-1")
    assert entry.branch == "conveyor/t-1"
    assert store.lookup(request) is None
    real = store.store(request, result.model_copy(update={"commit_sha": None}), None)
    assert real.commit_sha == GitRepo(worktree).head_sha() and real.branch == "conveyor/t-1"
    assert store.lookup(request) is not None
    store.path_for(request).write_text("{broken")
    with pytest.raises(InputError, match=r"\.conveyor/replay/"):
        store.lookup(request)


class RaisingBackend:
    name = "raising"

    def run(self, request: AgentRequest) -> AgentResult:
        raise RuntimeError(f"boom with {FAKE_KEY}")


def test_an_exception_is_logged_and_reraised(repo: Path) -> None:
    backend = RecordingBackend(RaisingBackend(), repo_root=repo, clock=StepClock(), known_secrets=[])
    with pytest.raises(RuntimeError, match="boom"):
        backend.run(make_request(role=AgentRole.PLANNER, ticket=None, stage="bootstrap"))
    [log] = log_files(repo, "planner")
    record = json.loads(log.read_text())
    assert record["result"] is None and "RuntimeError: boom" in record["extra"]["exception"]
    assert FAKE_KEY not in log.read_text()


class FileTranscriptBackend:
    """Hands its transcript to the logger as a JSON-lines file named in AgentResult.transcript."""

    name = "file-transcript"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def run(self, request: AgentRequest) -> AgentResult:
        path = self.directory / "transcript.jsonl"
        path.write_text(
            json.dumps({"role": "user", "content": "hi"}) + "\n" + json.dumps({"role": "assistant", "content": "yo"})
        )
        return AgentResult(
            task_id="planner",
            status=WorkerStatus.SUCCESS,
            backend=self.name,
            model="m",
            text="yo",
            usage=Usage(input_tokens=800, output_tokens=0),
            transcript=str(path),
        )


def test_a_transcript_file_is_embedded_in_the_log(repo: Path, tmp_path: Path) -> None:
    backend = RecordingBackend(FileTranscriptBackend(tmp_path), repo_root=repo, clock=StepClock(), known_secrets=[])
    result = backend.run(make_request(role=AgentRole.PLANNER, ticket=None, stage="bootstrap"))
    assert result.transcript is not None and result.transcript.startswith("automations/logs/planner/")
    assert result.used == "800" and result.duration_s >= 0
    record = json.loads((repo / result.transcript).read_text())
    assert [m["content"] for m in record["transcript"]["messages"]] == ["hi", "yo"]
    assert record["transcript"]["source"] == str(tmp_path / "transcript.jsonl")


CHILD = """
import os, signal, sys
from pathlib import Path
from conveyor.adapters.agents.recording import RecordingBackend
from conveyor.adapters.agents.replay import ReplayStore
from conveyor.adapters.agents.scripted import ScriptedBackend
from conveyor.domain.agent import AgentRequest

repo, script, state, request_json = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
request = AgentRequest.model_validate_json(request_json)
inner = ScriptedBackend(script, repo_root=repo, state_path=state)
backend = RecordingBackend(inner, repo_root=repo, replay=ReplayStore(repo, known_secrets=[]), known_secrets=[])
result = backend.run(request)
print(result.commit_sha, flush=True)
(Path(request.workdir) / "crash-leftover.txt").write_text("written after the implementer, before the kill")
os.kill(os.getpid(), signal.SIGKILL)  # dies before "the reviewer" runs
print("unreachable", flush=True)
"""


def test_a_killed_run_replays_the_implementer_without_a_call(repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "one-step.yaml"
    script.write_text(
        "entries:\n"
        "  - role: implementer\n"
        "    ticket: T-1\n"
        "    steps:\n"  # one step, no repeat_last: a second real call would be a SCRIPT error
        '      - write: {path: feature.py, content: "FEATURE = True\\n"}\n'
    )
    state = tmp_path / "scripted-state.json"
    worktree = add_worktree(repo, "T-1")
    base = GitRepo(worktree).head_sha()
    request = make_request(workdir=worktree, base=base)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(repo), str(script), str(state), request.model_dump_json()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    recorded = child.stdout.split()[0]
    assert "unreachable" not in child.stdout
    assert GitRepo(worktree).commit_exists(recorded)

    counting = CountingBackend(ScriptedBackend(script, repo_root=repo, state_path=state))
    backend = RecordingBackend(counting, repo_root=repo, replay=ReplayStore(repo), known_secrets=[])
    result = backend.run(request)
    assert result.replayed and result.ok and result.commit_sha == recorded
    assert counting.calls == []  # zero implementer requests
    wt = GitRepo(worktree)
    assert wt.head_sha() == recorded and wt.is_clean() and (worktree / "feature.py").read_text() == "FEATURE = True\n"
    assert not (worktree / "crash-leftover.txt").exists()  # rescued, not lost:
    rescue = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/conveyor/rescue/").split()
    assert git(repo, "show", f"{rescue[0]}:crash-leftover.txt").startswith("written after")
    # and the proof is sound: a real call now would have failed (the script's only step is used up; another
    # request, since the very same one would get its first answer again from a resumed scripted backend)
    other = request.model_copy(update={"inputs": {**request.inputs, "round": 2}})
    assert counting.inner.run(other).error_kind is ErrorKind.SCRIPT
