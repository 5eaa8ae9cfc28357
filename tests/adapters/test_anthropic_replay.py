"""Replay through the assembled backend (RecordingBackend over AnthropicBackend, as `agent_backend` builds it):
a process killed between the implementer and the reviewer does not pay for the implementer again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.agent import AgentRequest, AgentRole, ErrorKind, ToolName, WorkerStatus
from conveyor.services.agents import agent_backend, backend_name
from conveyor.settings import load_settings
from tests.conftest import git
from tests.support.anthropic_stub import AnthropicStub, Reply

CHILD = r"""
import json, os, signal, sys
from pathlib import Path
from conveyor.domain.agent import AgentRequest
from conveyor.services.agents import agent_backend
from conveyor.settings import load_settings
repo = Path(sys.argv[1])
request = AgentRequest.model_validate_json(Path(sys.argv[2]).read_text())
backend = agent_backend(repo, load_settings(repo))
result = backend.run(request)
print(json.dumps(result.model_dump(mode="json")), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies before the reviewer would run
"""


def handler(body: dict[str, Any]) -> Reply:
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if turn == 0:
        return Reply.tool_use("write_file", {"path": "feature.py", "content": "VALUE = 42\n"})
    return Reply.tool_use("finish", {"status": "success", "notes": "added VALUE", "commit_message": "feat: VALUE"})


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as server:
        server.set_handler(handler)
        yield server


@pytest.fixture
def repo(scratch_repo: Path, stub: AnthropicStub, monkeypatch: pytest.MonkeyPatch) -> Path:
    (scratch_repo / "automations").mkdir()
    (scratch_repo / "automations/build-spec.yaml").write_text("agents:\n  backend: anthropic\n  sandbox: none\n")
    (scratch_repo / ".gitignore").write_text(".conveyor/\nautomations/logs/\nautomations/memory/replay/\n")
    git(scratch_repo, "add", "-A")
    git(scratch_repo, "commit", "-q", "-m", "conveyor files")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.url)
    return scratch_repo


def request_for(repo: Path, **kw: Any) -> AgentRequest:
    base: dict[str, Any] = {
        "role": AgentRole.IMPLEMENTER,
        "run_id": "RUN-20261121-1200",
        "ticket_id": "NA-FEAT-001",
        "stage": "implementing",
        "prompt_version": "impl-1",
        "base_commit": git(repo, "rev-parse", "HEAD").strip(),
        "inputs": {"ticket": {"title": "Add VALUE"}},
        "tools": tuple(ToolName),
        "workdir": str(repo),
    }
    return AgentRequest.model_validate(base | kw)


@pytest.mark.slow
def test_rerun_after_a_kill_sends_no_implementer_request(repo: Path, stub: AnthropicStub, tmp_path: Path) -> None:
    assert backend_name(load_settings(repo)) == "anthropic"
    request = request_for(repo)
    request_file = tmp_path / "request.json"
    request_file.write_text(request.model_dump_json())
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(repo), str(request_file)],
        check=False,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert child.returncode == -9, child.stderr  # SIGKILLed after the implementer
    first = json.loads(child.stdout)
    assert first["status"] == "success" and first["commit_sha"]
    sent = len(stub.message_requests())
    assert sent == 2

    git(repo, "reset", "-q", "--hard", request.base_commit or "")  # the worktree lost the work meanwhile
    backend = agent_backend(repo, load_settings(repo))
    assert backend is not None
    again = backend.run(request)
    assert again.replayed and again.commit_sha == first["commit_sha"]
    assert len(stub.message_requests()) == sent  # zero implementer requests
    assert git(repo, "rev-parse", "HEAD").strip() == first["commit_sha"]
    assert (repo / "feature.py").read_text() == "VALUE = 42\n"

    changed_ticket = request_for(repo, base_commit=request.base_commit, inputs={"ticket": {"title": "Add VALUE twice"}})
    assert not backend.run(changed_ticket).replayed
    assert len(stub.message_requests()) > sent
    sent = len(stub.message_requests())
    next_attempt = request_for(repo, base_commit=request.base_commit, attempt=2)
    assert not backend.run(next_attempt).replayed
    assert len(stub.message_requests()) > sent


def test_success_without_a_change_is_a_failure(repo: Path, stub: AnthropicStub) -> None:
    stub.set_handler(lambda body: Reply.tool_use("finish", {"status": "success", "notes": "nothing to do"}))
    backend = agent_backend(repo, load_settings(repo))
    assert backend is not None
    result = backend.run(request_for(repo))
    assert result.status is WorkerStatus.FAILED and result.error_kind is ErrorKind.EMPTY_DIFF


def test_logs_never_hold_the_api_key(repo: Path, stub: AnthropicStub) -> None:
    backend = agent_backend(repo, load_settings(repo))
    assert backend is not None
    assert backend.run(request_for(repo)).ok
    written = [p for p in (repo / "automations").rglob("*") if p.is_file()]
    written += [p for p in (repo / ".conveyor").rglob("*") if p.is_file()]
    assert any("logs" in p.parts for p in written)
    for path in written:
        assert "sk-ant-test-0123456789abcdef" not in path.read_text(errors="replace"), path
