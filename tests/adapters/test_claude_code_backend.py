"""The claude-code backend: the bundled Claude Code CLI (claude-agent-sdk) driven offline against the local stub.

Three layers:

- always: the backend without the extra (``backend_unavailable`` with the install command), and the pure parts
  (tool policy, environment scrubbing, result JSON, error mapping), which need no SDK;
- with the claude-code extra: the real CLI in a scratch git repository, with ANTHROPIC_BASE_URL pointing at the
  stub on 127.0.0.1 and a fake key. The CLI's own requests (its system prompt, its tool definitions) are answered
  by a handler that plays the model: a Write tool call, then the final text with the result JSON;
- Bash through the CLI also needs Claude Code's command sandbox (bwrap and socat): skipped without them.

With CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 (set by the backend) the CLI sends nothing but POST
/v1/messages?beta=true to the stub: no count_tokens, no /v1/models, no OAuth, no telemetry.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conveyor.adapters.agents.claude_code import (
    BACKEND,
    ClaudeCodeBackend,
    ToolPolicy,
    claude_tools,
    cli_environment,
    command_sandbox_missing,
    error_kind_of_result,
    parse_finish,
    sdk_available,
)
from conveyor.adapters.agents.claude_code_stubs import SCRUB_STUBS, existing_stubs, remove_stubs, scrub_mode
from conveyor.adapters.agents.implementer_prompt import IMPLEMENTER_SYSTEM
from conveyor.adapters.agents.tools_paths import RefusedError
from conveyor.domain.agent import (
    IMPLEMENTER_TOOLS,
    AgentRequest,
    AgentResult,
    AgentRole,
    ErrorKind,
    Limits,
    ToolName,
    WorkerStatus,
)
from tests.conftest import git
from tests.support.anthropic_stub import AnthropicStub, Fault, Reply

FAKE_KEY = "sk-ant-stub-not-a-real-key"
MODEL = "claude-sonnet-4-6"
NO_SDK_REASON = (
    "claude-agent-sdk (the claude-code extra, which bundles the Claude Code CLI) is not installed: "
    "run `uv sync --extra claude-code` to test the CLI against the stub"
)
needs_cli = pytest.mark.skipif(not sdk_available(), reason=NO_SDK_REASON)
needs_sandbox = pytest.mark.skipif(
    bool(command_sandbox_missing()),
    reason="Claude Code runs Bash in its own sandbox, which needs bwrap and socat (apt-get install bubblewrap socat); "
    f"missing: {', '.join(command_sandbox_missing())}",
)


def implementer_request(workdir: Path, **limits: Any) -> AgentRequest:
    return AgentRequest(
        role=AgentRole.IMPLEMENTER,
        run_id="run-1",
        ticket_id="T-001",
        stage="implementing",
        prompt_version="implementer/1",
        inputs={
            "ticket": {
                "title": "Add hello.py",
                "description": "Create hello.py printing hello.",
                "acceptance_criteria": ["hello.py exists"],
            },
            "branch": "ticket/T-001",
        },
        tools=IMPLEMENTER_TOOLS,
        workdir=str(workdir),
        limits=Limits(**limits),
    )


# --- always: no extra needed -------------------------------------------------------------------------------


def test_without_the_extra_the_backend_is_unavailable_and_says_how_to_install(
    scratch_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)  # what a missing package looks like to import
    backend = ClaudeCodeBackend(api_key=FAKE_KEY)
    result = backend.run(implementer_request(scratch_repo))
    assert backend.name == BACKEND == result.backend == "claude-code"
    assert result.status is WorkerStatus.FAILED
    assert result.error_kind is ErrorKind.BACKEND_UNAVAILABLE
    assert "uv sync --extra claude-code" in result.error_detail
    assert result.commit_sha is None
    assert not sdk_available()


def test_tool_map_follows_the_request_and_bash_needs_an_allow_list() -> None:
    request = implementer_request(Path("/tmp"))
    assert claude_tools(request, commands_allowed=True) == ["Read", "Glob", "Grep", "Write", "Edit", "Bash"]
    assert claude_tools(request, commands_allowed=False) == ["Read", "Glob", "Grep", "Write", "Edit"]
    reader = request.model_copy(update={"tools": (ToolName.READ_FILE, ToolName.FINISH)})
    assert claude_tools(reader, commands_allowed=True) == ["Read"]


@pytest.fixture
def policy(tmp_path: Path) -> ToolPolicy:
    root = tmp_path / "wt"
    (root / "src").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    return ToolPolicy(
        root,
        tools=["Read", "Glob", "Grep", "Write", "Edit", "Bash"],
        allowed_commands=[["pytest"], ["printenv"], ["python", "-m", "pytest"]],
        command_timeout_s=60,
    )


@pytest.mark.parametrize(
    ("tool", "tool_input", "why"),
    [
        ("Read", {"file_path": "{outside}/secret.txt"}, "outside the worktree"),
        ("Read", {"file_path": "{root}/../secret.txt"}, "outside the worktree"),
        ("Read", {"file_path": "../secret.txt"}, "leads out"),
        ("Read", {"file_path": "~/.ssh/id_rsa"}, "home directory"),
        ("Read", {"file_path": "{root}/.git/config"}, ".git"),
        ("Read", {"file_path": "{root}/link"}, "symlink"),
        ("Read", {"file_path": "/dev/zero"}, "outside the worktree"),
        ("Write", {"file_path": "{outside}/new.txt", "content": "x"}, "outside the worktree"),
        ("Write", {"file_path": "{root}/.git/hooks/pre-commit", "content": "x"}, ".git"),
        ("Edit", {"file_path": "{root}/link", "old_string": "a", "new_string": "b"}, "symlink"),
        ("Glob", {"pattern": "../**/*.txt"}, "'..'"),
        ("Glob", {"pattern": "**/.git/**"}, ".git"),
        ("Glob", {"pattern": "*", "path": "{outside}"}, "outside the worktree"),
        ("Grep", {"pattern": "secret", "path": "{outside}"}, "outside the worktree"),
        ("Grep", {"pattern": "x", "glob": "{.git,src}/*"}, ".git"),
        ("Bash", {"command": "rm -rf {root}"}, "not allowed"),
        ("Bash", {"command": "cat {outside}/secret.txt"}, "not allowed"),
        ("Bash", {"command": "pytest {outside}/secret.txt"}, "absolute"),
        ("Bash", {"command": "pytest ../secret.txt"}, "leads out"),
        ("Bash", {"command": "python -c 'import os'"}, "not allowed"),
        ("Bash", {"command": "pytest -q 'unbalanced"}, "cannot be split"),
        ("Bash", {"command": "pytest", "run_in_background": True}, "background"),
        ("WebFetch", {"url": "https://example.com"}, "not available"),
        ("Task", {"prompt": "do it"}, "not available"),
    ],
)
def test_policy_refuses_what_conveyors_dispatcher_refuses(
    policy: ToolPolicy, tmp_path: Path, tool: str, tool_input: dict[str, Any], why: str
) -> None:
    def fill(value: object) -> object:
        if not isinstance(value, str):
            return value
        return value.replace("{root}", str(policy.workdir)).replace("{outside}", str(tmp_path))

    filled = {key: fill(value) for key, value in tool_input.items()}
    with pytest.raises(RefusedError, match=why.replace(".", r"\.").replace("(", r"\(")):
        policy.check(tool, filled)


def test_policy_allows_the_worktree_and_requotes_commands(policy: ToolPolicy) -> None:
    root = str(policy.workdir)
    assert policy.check("Read", {"file_path": f"{root}/src/a.py"}) == {"file_path": f"{root}/src/a.py"}
    assert policy.check("Write", {"file_path": f"{root}/new/b.py", "content": "y"})["content"] == "y"
    assert policy.check("Edit", {"file_path": "src/a.py", "old_string": "1", "new_string": "2"})
    assert policy.check("Glob", {"pattern": "**/*.py", "path": root})
    assert policy.check("Grep", {"pattern": "x", "path": f"{root}/src/a.py", "glob": "*.py"})
    assert policy.check("Read", {"file_path": f"{root}/.gitignore"})  # .gitignore is not .git
    # The shell never sees an operator: each argv element is quoted back, so `&&` and `$(...)` are plain text.
    checked = policy.check("Bash", {"command": "pytest -q && touch pwned $(id)", "timeout": 600_000})
    assert checked["command"] == "pytest -q '&&' touch pwned '$(id)'"
    assert checked["timeout"] == 60_000  # capped at command_timeout_s
    assert "run_in_background" not in checked and "dangerouslyDisableSandbox" not in checked
    assert policy.check("Bash", {"command": "python -m pytest tests/"})["command"] == "python -m pytest tests/"


def test_environment_is_scrubbed_and_never_uses_the_users_home(tmp_path: Path) -> None:
    inherited = {
        "PATH": "/usr/bin",
        "LC_ALL": "C.UTF-8",
        "GITHUB_TOKEN": "ghp_secret",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "ANTHROPIC_AUTH_TOKEN": "oauth",
        "HOME": "/root",
        "NO_PROXY": "corp.example",
    }
    env = cli_environment(
        api_key=FAKE_KEY,
        base_url="http://127.0.0.1:1",
        home=tmp_path,
        max_retries=2,
        timeout_s=30,
        isolate_commands=True,
        inherited=inherited,
    )
    assert env["GITHUB_TOKEN"] == env["AWS_SECRET_ACCESS_KEY"] == env["ANTHROPIC_AUTH_TOKEN"] == ""
    assert "PATH" not in env and "LC_ALL" not in env  # kept as inherited
    assert env["HOME"] == str(tmp_path) and env["CLAUDE_CONFIG_DIR"] == str(tmp_path / ".claude")
    assert env["ANTHROPIC_API_KEY"] == FAKE_KEY and env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1"
    for flag in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER"):
        assert env[flag] == "1"
    assert env["CLAUDE_CODE_SUBPROCESS_ENV_SCRUB"] == "1"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "2" and env["API_TIMEOUT_MS"] == "30000"
    assert env["NO_PROXY"] == "corp.example,127.0.0.1,localhost,::1"


@pytest.fixture
def worktree(scratch_repo: Path) -> Path:
    """A linked worktree of ``scratch_repo`` on its own branch, as Conveyor lays out tickets (its .git is a file)."""
    path = scratch_repo.parent / "worktree"
    git(scratch_repo, "worktree", "add", "-q", "-b", "ticket/T-001", str(path))
    assert (path / ".git").is_file()
    return path


def test_scrub_mode_only_when_the_agent_can_run_a_command() -> None:
    assert scrub_mode(["Read", "Write", "Bash"], isolate_commands=True)
    assert not scrub_mode(["Read", "Glob", "Grep", "Write", "Edit"], isolate_commands=True)  # nothing to isolate
    assert not scrub_mode([], isolate_commands=True)  # judgment calls
    assert not scrub_mode(["Bash"], isolate_commands=False)


def test_only_new_empty_untracked_stubs_the_agent_did_not_write_are_removed(worktree: Path) -> None:
    """The cleanup after a scrub-mode session: every condition keeps a file on its own; nothing else is touched."""
    (worktree / ".gitmodules").write_text("")
    git(worktree, "add", ".gitmodules")
    git(worktree, "commit", "-q", "-m", "tracked, empty")
    (worktree / ".gitmodules").unlink()  # tracked but missing before the session
    (worktree / "yarn.lock").write_text("")  # there before the session
    existed = existing_stubs(worktree)
    assert existed == {"yarn.lock"}
    # what the session leaves: the CLI's stubs, and files that only look like them
    for name in SCRUB_STUBS:
        if not (worktree / name).exists():
            (worktree / name).write_text("")
    (worktree / "package.json").write_text("{}\n")  # not empty
    (worktree / ".npmrc").unlink()
    (worktree / ".npmrc").symlink_to(worktree / "yarn.lock")  # a symlink to an empty file
    (worktree / ".yarnrc").unlink()
    (worktree / ".yarnrc").mkdir()  # a directory
    (worktree / "src").mkdir()
    for other in ("empty.txt", "src/__init__.py", "src/package.json"):  # empty, new, untracked, but not a stub
        (worktree / other).write_text("")

    removed = remove_stubs(worktree, existed=existed, written={".env", "src/x.py"})  # .env: the agent's Write

    kept = {".gitmodules", "yarn.lock", ".env", "package.json", ".npmrc", ".yarnrc"}
    assert removed == [name for name in SCRUB_STUBS if name not in kept]
    assert not any((worktree / name).exists() for name in removed)
    assert all(os.path.lexists(worktree / name) for name in kept)
    assert (worktree / "package.json").read_text() == "{}\n" and (worktree / ".yarnrc").is_dir()
    assert all((worktree / other).is_file() for other in ("empty.txt", "src/__init__.py", "src/package.json"))


def test_stubs_are_kept_when_git_cannot_say_what_is_tracked(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("")  # not a git checkout: git ls-files fails
    assert remove_stubs(tmp_path, existed=frozenset(), written=()) == []
    assert (tmp_path / "package.json").is_file()


def test_result_json_is_read_from_the_end_of_the_final_message() -> None:
    assert parse_finish('Done.\n{"status": "success", "notes": "n", "commit_message": "m"}') == {
        "status": "success",
        "notes": "n",
        "commit_message": "m",
    }
    fenced = 'x\n```json\n{"status": "escalate", "notes": "ask"}\n```'
    assert parse_finish(fenced) == {"status": "escalate", "notes": "ask"}
    assert parse_finish("no json here") is None
    assert parse_finish('{"not": "a result"}') is None


@pytest.mark.parametrize(
    ("fields", "last_error", "kind"),
    [
        ({"subtype": "error_max_turns"}, None, ErrorKind.TURN_LIMIT),
        ({"subtype": "error_max_budget_usd"}, None, ErrorKind.BUDGET),
        ({"subtype": "success", "terminal_reason": "api_error", "api_error_status": 500}, None, ErrorKind.SERVER_ERROR),
        ({"subtype": "success", "terminal_reason": "api_error", "api_error_status": 529}, None, ErrorKind.OVERLOADED),
        ({"subtype": "success", "terminal_reason": "api_error", "api_error_status": 429}, None, ErrorKind.RATE_LIMITED),
        ({"subtype": "success", "terminal_reason": "api_error", "api_error_status": 401}, None, ErrorKind.AUTH),
        ({"subtype": "success", "terminal_reason": "api_error", "api_error_status": 400}, None, ErrorKind.BAD_REQUEST),
        (
            {"subtype": "success", "terminal_reason": "api_error", "result": "Request timed out."},
            "server_error",
            ErrorKind.TIMEOUT,
        ),
        ({"subtype": "success", "terminal_reason": "api_error", "result": "fetch failed"}, None, ErrorKind.CONNECTION),
        ({"subtype": "error_during_execution"}, None, ErrorKind.SERVER_ERROR),
    ],
)
def test_result_errors_map_to_error_kinds(fields: dict[str, Any], last_error: str | None, kind: ErrorKind) -> None:
    assert error_kind_of_result(SimpleNamespace(**fields), last_error) is kind


# --- the real CLI against the stub ------------------------------------------------------------------------

Step = Callable[[dict[str, Any]], Reply | Fault]


class CLIModel:
    """Plays the model for the CLI: step n answers the request whose history holds n assistant messages.

    Requests without tools (the CLI's session-title request, sent only when non-essential traffic is allowed)
    get a short text.
    """

    def __init__(self, *steps: Reply | Fault | Step) -> None:
        self.steps = steps
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Reply | Fault:
        self.bodies.append(body)
        if not body.get("tools"):
            return Reply.text("Session title")
        index = sum(1 for message in body["messages"] if message["role"] == "assistant")
        if index >= len(self.steps):
            return Reply.text('Nothing left to do.\n{"status": "failed", "notes": "script ran out"}')
        step = self.steps[index]
        return step if isinstance(step, Reply | Fault) else step(body)

    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool_result block the CLI sent back (in the last request, which holds the whole history)."""
        if not self.bodies:
            return []
        blocks = [b for m in self.bodies[-1]["messages"] if isinstance(m["content"], list) for b in m["content"]]
        return [b for b in blocks if b.get("type") == "tool_result"]


def result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content)
    return str(content)


class ProxyTrap:
    """An HTTP(S) proxy on 127.0.0.1 that answers 403 and records what it was asked (``CONNECT host:443``).

    Set as HTTPS_PROXY/HTTP_PROXY (which the backend passes through), it catches any request the CLI makes to
    a host other than the stub (NO_PROXY covers loopback). Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC the
    CLI asks it for ``CONNECT api.anthropic.com:443`` (checked in a network namespace with only loopback).
    """

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.seen.append(conn.recv(4096).split(b"\r\n")[0].decode(errors="replace"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError as exc:
                    self.seen.append(f"(unreadable: {exc})")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def proxy_trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyTrap]:
    trap = ProxyTrap()
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, trap.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    yield trap
    trap.close()


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub(hang_limit=20.0) as server:
        yield server


def backend_for(stub: AnthropicStub, **kwargs: Any) -> ClaudeCodeBackend:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout_s", 20.0)
    kwargs.setdefault("wall_clock_s", 60.0)
    return ClaudeCodeBackend(api_key=FAKE_KEY, base_url=stub.url, **kwargs)


@needs_cli
def test_contract_the_cli_creates_a_file_against_the_stub_and_the_backend_commits_it(
    stub: AnthropicStub, scratch_repo: Path, proxy_trap: ProxyTrap
) -> None:
    base = git(scratch_repo, "rev-parse", "HEAD").strip()
    model = CLIModel(
        Reply.tool_use("Write", {"file_path": str(scratch_repo / "hello.py"), "content": "print('hello')\n"}),
        Reply.text(
            'Created hello.py.\n{"status": "success", "notes": "added hello.py", "commit_message": "T-001: hello"}'
        ),
    )
    stub.set_handler(model)
    backend = backend_for(stub)
    request = implementer_request(scratch_repo)

    result = backend.run(request)

    assert result.ok, (result.error_kind, result.error_detail)
    assert result.status is WorkerStatus.SUCCESS and result.backend == "claude-code"
    assert result.commit_sha is not None and result.commit_sha != base
    assert result.commit_sha == git(scratch_repo, "rev-parse", "HEAD").strip()
    assert git(scratch_repo, "show", "-s", "--format=%an <%ae>|%s", "HEAD").strip() == (
        "Conveyor <conveyor@localhost>|T-001: hello"
    )
    assert git(scratch_repo, "show", "--name-only", "--format=", "HEAD").split() == ["hello.py"]
    assert git(scratch_repo, "status", "--porcelain", "--untracked-files=all") == ""  # the CLI left nothing else
    assert (scratch_repo / "hello.py").read_text() == "print('hello')\n"
    assert result.notes == "added hello.py"
    # usage and cost: the stub's figures (cache writes and reads included), priced by Conveyor's table
    assert result.usage.requests == 2
    assert result.usage.output_tokens > 0 and result.usage.total_input > 0
    assert result.usage.cache_write_tokens > 0 and result.usage.cache_read_tokens > 0
    assert result.cost_usd > 0 and result.model == MODEL and result.used
    # what the CLI sent: only the Messages API, on loopback, with our system prompt, task and tool list
    assert {(r.method, r.path, r.query) for r in stub.requests} == {("POST", "/v1/messages", "beta=true")}
    assert proxy_trap.seen == []  # and nothing for any other host
    first = model.bodies[0]
    system = "".join(block["text"] for block in first["system"])
    assert IMPLEMENTER_SYSTEM.splitlines()[0] in system and "Working in Claude Code" in system
    assert sorted(tool["name"] for tool in first["tools"]) == ["Edit", "Glob", "Grep", "Read", "Write"]
    assert first["model"] == MODEL
    assert "## Task Assignment: T-001" in json.dumps(first["messages"][0])
    transcript = backend.pop_transcript(request)
    assert transcript is not None and transcript[-1]["role"] == "result"
    assert backend.pop_transcript(request) is None


@needs_cli
@pytest.mark.parametrize("changes", [True, False], ids=["change", "no-op"])
def test_in_a_linked_worktree_the_commit_holds_only_the_agents_change(
    stub: AnthropicStub, worktree: Path, changes: bool
) -> None:
    """Regression: a session without Bash left the CLI's 17 sandbox stubs (package.json, .env*, yarn.lock, ...) in
    a linked worktree, and the backend committed them, even for a no-op. Without Bash the CLI is not in scrub mode,
    so it makes none."""
    base = git(worktree, "rev-parse", "HEAD").strip()
    write = Reply.tool_use("Write", {"file_path": str(worktree / "hello.py"), "content": "print('hello')\n"})
    steps = [write] if changes else []
    stub.set_handler(CLIModel(*steps, Reply.text('{"status": "success", "notes": "ok"}')))

    result = backend_for(stub).run(implementer_request(worktree))

    assert result.ok, (result.error_kind, result.error_detail)
    assert git(worktree, "status", "--porcelain", "--untracked-files=all", "--ignored") == ""
    assert not existing_stubs(worktree)
    if changes:
        assert result.commit_sha == git(worktree, "rev-parse", "HEAD").strip() != base
        assert git(worktree, "show", "--name-only", "--format=", "HEAD").split() == ["hello.py"]
    else:
        assert result.commit_sha == base  # no commit: RecordingBackend makes this an empty diff


@needs_cli
@needs_sandbox
def test_with_bash_the_sandbox_stubs_are_removed_from_a_linked_worktree_and_nothing_else(
    stub: AnthropicStub, worktree: Path
) -> None:
    """With Bash the CLI runs in scrub mode and makes its stubs (the sandbox needs them while it runs); the backend
    removes those it made and keeps what was there before (yarn.lock) and what the agent wrote (an empty .env)."""
    (worktree / "yarn.lock").write_text("")
    model = CLIModel(
        Reply.tool_use("Bash", {"command": "printenv HOME", "description": "allowed"}),
        Reply.tool_use("Write", {"file_path": str(worktree / ".env"), "content": ""}),
        Reply.tool_use("Write", {"file_path": str(worktree / "out.txt"), "content": "x\n"}),
        Reply.text('{"status": "success", "notes": "ok", "commit_message": "out"}'),
    )
    stub.set_handler(model)
    backend = backend_for(stub, allowed_commands=[["printenv"]])
    request = implementer_request(worktree)

    result = backend.run(request)

    assert result.ok, (result.error_kind, result.error_detail)
    assert "refused" not in result_text(model.tool_results()[0])  # the command ran, in the sandbox
    committed = git(worktree, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == [".env", "out.txt", "yarn.lock"]
    assert git(worktree, "status", "--porcelain", "--untracked-files=all") == ""
    assert existing_stubs(worktree) == {".env", "yarn.lock"}
    transcript = backend.pop_transcript(request) or []
    removed = [entry["removed_sandbox_stubs"] for entry in transcript if entry["role"] == "conveyor"]
    assert len(removed) == 1 and removed[0] and set(removed[0]) <= set(SCRUB_STUBS) - {".env", "yarn.lock"}


@needs_cli
def test_refused_file_calls_never_touch_the_disk_and_the_model_is_told_why(
    stub: AnthropicStub, scratch_repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    hook = scratch_repo / ".git" / "hooks" / "post-commit"
    model = CLIModel(
        Reply.tool_use("Write", {"file_path": str(outside), "content": "escaped"}),
        Reply.tool_use("Write", {"file_path": str(hook), "content": "#!/bin/sh\ntouch /tmp/pwned\n"}),
        Reply.tool_use("Read", {"file_path": str(scratch_repo / ".git" / "config")}),
        Reply.tool_use("Write", {"file_path": "notes.md", "content": "inside\n"}),
        Reply.text('{"status": "success", "notes": "ok", "commit_message": "notes"}'),
    )
    stub.set_handler(model)

    result = backend_for(stub).run(implementer_request(scratch_repo))

    assert result.ok, (result.error_kind, result.error_detail)
    assert not outside.exists() and not hook.exists()
    results = model.tool_results()
    assert len(results) == 4
    assert all("refused by Conveyor" in result_text(block) for block in results[:3])
    assert "outside the worktree" in result_text(results[0]) and ".git" in result_text(results[1])
    assert "refused by Conveyor" not in result_text(results[3])
    assert git(scratch_repo, "show", "--name-only", "--format=", "HEAD").split() == ["notes.md"]
    assert "refused tool calls" in result.notes


@needs_cli
@needs_sandbox
def test_bash_runs_only_allowed_argv_without_a_shell_and_without_the_api_key(
    stub: AnthropicStub, scratch_repo: Path
) -> None:
    model = CLIModel(
        Reply.tool_use("Bash", {"command": "touch pwned", "description": "not on the allow-list"}),
        Reply.tool_use("Bash", {"command": "printenv HOME ANTHROPIC_API_KEY; touch pwned2", "description": "env"}),
        Reply.tool_use("Write", {"file_path": "out.txt", "content": "x\n"}),
        Reply.text('{"status": "success", "notes": "ok"}'),
    )
    stub.set_handler(model)

    result = backend_for(stub, allowed_commands=[["printenv"]]).run(implementer_request(scratch_repo))

    assert result.ok, (result.error_kind, result.error_detail)
    assert "Bash" in {tool["name"] for tool in model.bodies[0]["tools"]}
    assert not (scratch_repo / "pwned").exists() and not (scratch_repo / "pwned2").exists()
    refused, ran = model.tool_results()[:2]
    assert "refused by Conveyor" in result_text(refused) and "not allowed" in result_text(refused)
    assert "refused" not in result_text(ran)
    assert "conveyor-claude-code-" in result_text(ran)  # it ran: printenv printed the CLI's temporary HOME...
    assert FAKE_KEY not in json.dumps(model.bodies[-1]["messages"])  # ...but not the key, which it never got


@needs_cli
def test_persistent_500_ends_with_server_error_without_hanging(stub: AnthropicStub, scratch_repo: Path) -> None:
    stub.set_handler(CLIModel(Fault.status(500), Fault.status(500), Fault.status(500)))
    started = time.monotonic()

    result = backend_for(stub, max_retries=1).run(implementer_request(scratch_repo))

    assert time.monotonic() - started < 30
    assert result.status is WorkerStatus.FAILED and result.error_kind is ErrorKind.SERVER_ERROR
    assert "500" in result.error_detail
    assert len(stub.message_requests()) == 2  # the first try and the CLI's one retry
    assert result.commit_sha is None and result.backend == "claude-code"


@needs_cli
def test_bad_key_is_auth(stub: AnthropicStub, scratch_repo: Path) -> None:
    stub.set_handler(lambda body: Fault.status(401, message="invalid x-api-key"))
    result = backend_for(stub).run(implementer_request(scratch_repo))
    assert result.error_kind is ErrorKind.AUTH


@needs_cli
def test_max_turns_is_turn_limit(stub: AnthropicStub, scratch_repo: Path) -> None:
    def write_another(body: dict[str, Any]) -> Reply:
        n = sum(1 for message in body["messages"] if message["role"] == "assistant")
        return Reply.tool_use("Write", {"file_path": f"f{n}.txt", "content": f"{n}\n"})

    stub.set_handler(CLIModel(*[write_another] * 10))
    result = backend_for(stub).run(implementer_request(scratch_repo, max_turns=2))
    assert result.error_kind is ErrorKind.TURN_LIMIT
    assert len(stub.message_requests()) == 2
    assert result.usage.requests == 2 and result.cost_usd > 0


@needs_cli
def test_usd_limit_is_budget(stub: AnthropicStub, scratch_repo: Path) -> None:
    stub.set_handler(
        CLIModel(*[Reply.tool_use("Write", {"file_path": f"f{n}.txt", "content": "x"}) for n in range(10)])
    )
    result = backend_for(stub).run(implementer_request(scratch_repo, max_usd=0.0001))
    assert result.error_kind is ErrorKind.BUDGET
    assert len(stub.message_requests()) < 10


@needs_cli
def test_the_same_tool_call_repeated_is_stuck(stub: AnthropicStub, scratch_repo: Path) -> None:
    stub.set_handler(lambda body: Reply.tool_use("Read", {"file_path": "README.md"}))
    result = backend_for(stub).run(implementer_request(scratch_repo, stuck_repeats=3))
    assert result.error_kind is ErrorKind.STUCK
    assert len(stub.message_requests()) == 3


@needs_cli
@pytest.mark.slow
def test_a_hanging_api_ends_at_the_wall_clock(stub: AnthropicStub, scratch_repo: Path) -> None:
    stub.set_handler(lambda body: Fault.hang())
    started = time.monotonic()
    result = backend_for(stub, timeout_s=60.0).run(implementer_request(scratch_repo, wall_clock_s=2.0))
    elapsed = time.monotonic() - started
    assert result.error_kind is ErrorKind.WALL_CLOCK
    assert 2.0 <= elapsed < 20  # the SDK gives the CLI 5 s to exit after stdin closes, then terminates it


@needs_cli
def test_missing_cli_is_backend_unavailable(stub: AnthropicStub, scratch_repo: Path, tmp_path: Path) -> None:
    backend = backend_for(stub, cli_path=tmp_path / "no-such-claude")
    result = backend.run(implementer_request(scratch_repo))
    assert result.error_kind is ErrorKind.BACKEND_UNAVAILABLE
    assert stub.requests == []


@needs_cli
def test_judgment_call_returns_the_typed_output_after_one_repair(stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text("I approve."), Reply.text('{"verdict": "approve"}'))
    schema = {"type": "object", "properties": {"verdict": {"type": "string"}}, "required": ["verdict"]}
    request = AgentRequest(
        role=AgentRole.REVIEWER,
        run_id="run-1",
        ticket_id="T-001",
        stage="reviewing",
        prompt_version="reviewer/1",
        system="You review diffs.",
        inputs={"diff": "+print('hello')"},
        output_schema=schema,
    )
    result = backend_for(stub).run(request)
    assert result.ok, (result.error_kind, result.error_detail)
    assert result.output == {"verdict": "approve"}
    assert len(stub.message_requests()) == 2 and result.usage.requests == 2
    assert "Your answer could not be used" in json.dumps(stub.message_requests()[1].body["messages"])
    assert all(not r.body.get("tools") for r in stub.message_requests())


@needs_cli
def test_run_works_from_inside_a_running_event_loop(stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text("pong"))
    request = AgentRequest(role=AgentRole.RESEARCH, run_id="r", stage="research", prompt_version="1", inputs={"q": 1})
    backend = backend_for(stub)

    async def caller() -> AgentResult:
        return backend.run(request)  # a sync call from async code: the CLI session runs in a worker thread

    result = asyncio.run(caller())
    assert result.ok and result.text == "pong"
