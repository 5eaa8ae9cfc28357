"""The execution loop with the anthropic backend: the real SDK against the local stub server (issue 5 "Done when").

The stub plays the model: the implementer's tool-use turns (read, edit, run the tests, finish) and the judgment
roles' answers in DSPy's chat format. This checks plumbing — the ticket reaches the implementer, its tool calls
change the worktree, the reviewer sees the diff and its request-changes verdict sends the ticket back with the
finding, the loop's own QA gate runs, the merge lands — not the quality of a model's work, which needs a real model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.services.backlog_loader import load_backlog
from tests.conftest import git
from tests.flows.loop_support import run_loop
from tests.support.anthropic_stub import AnthropicStub, ManualClock, Reply
from tests.support.role_answers import chat_answer

# fmt: off
TASKS = """# Tasks

| id | status | description | issue | repo | branch | depends_on | blocks | agent | started_at | completed_at | estimate | used | notes |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| GR-FEAT-001 | todo | Greet politely: greet() returns 'hello' | | | | | | | | | 4K | | |
"""  # noqa: E501
# fmt: on
SPEC = """project: greeter
task_prefix: GR
workers: 1
budget:
  cap_usd: 5.0
quality_gates:
  - name: tests
    argv: ["python", "-m", "pytest", "-q"]
    timeout_s: 120
agents:
  backend: anthropic
  sandbox: none
  allowed_commands: [["python", "-m", "pytest"]]
"""


def _text(body: dict[str, Any]) -> str:
    parts = [json.dumps(body.get("system", ""))]
    for message in body.get("messages", []):
        parts.append(json.dumps(message.get("content", "")))
    return "\n".join(parts)


def _handler(seen: dict[str, list[str]]) -> Callable[[dict[str, Any]], Reply]:
    """Answer by role (implementer requests carry tools; role prompts name their output field) and turn."""

    def handler(body: dict[str, Any]) -> Reply:
        text = _text(body)
        if body.get("tools"):
            turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
            round_ = len(seen.setdefault("implementer", []))
            if turn == 0:
                seen["implementer"].append(text)
                return Reply.tool_use("read_file", {"path": "greet.py"})
            if round_ == 1 and turn == 1:
                return Reply.tool_use("edit_file", {"path": "greet.py", "old": "'hi'", "new": "'hello'"})
            if round_ == 2 and turn == 1:
                return Reply.tool_use(
                    "write_file",
                    {"path": "test_greet.py", "content": "from greet import greet\n\n\ndef test_greet():\n"
                     "    assert greet() == 'hello'\n"},
                )  # fmt: skip
            if turn == 2:
                return Reply.tool_use("run_command", {"argv": ["python", "-m", "pytest", "-q"]})
            return Reply.tool_use(
                "finish", {"status": "success", "notes": "greet says hello", "commit_message": "greet"}
            )
        if "[[ ## verdict ## ]]" in text:
            reviews = seen.setdefault("reviewer", [])
            reviews.append(text)
            if len(reviews) == 1:
                verdict = {
                    "decision": "request-changes",
                    "findings": [{"severity": "blocker", "title": "no test for greet", "file": "greet.py"}],
                }
            else:
                verdict = {"decision": "approve"}
            return Reply.text(chat_answer(verdict=verdict))
        if "doc_updates" in text:
            seen.setdefault("steward", []).append(text)
            answer = {"updates": [], "checklist_complete": True, "waiver": "internal change"}
            return Reply.text(chat_answer(doc_updates=answer))
        seen.setdefault("other", []).append(text)
        return Reply.text(chat_answer(triage={"failure_summary": "unexpected", "next_action": "fix"}))

    return handler


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub(clock=ManualClock()) as server:
        yield server


@pytest.fixture
def greeter(scratch_repo: Path) -> Path:
    (scratch_repo / "docs").mkdir(exist_ok=True)
    (scratch_repo / "automations").mkdir(exist_ok=True)
    (scratch_repo / "docs/TASKS.md").write_text(TASKS)
    (scratch_repo / "automations/build-spec.yaml").write_text(SPEC)
    (scratch_repo / "greet.py").write_text("def greet():\n    return 'hi'\n")
    (scratch_repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    git(scratch_repo, "add", "-A")
    git(scratch_repo, "commit", "-qm", "greeter")
    return scratch_repo


def test_anthropic_backend_delivers_a_ticket_through_review_and_qa(
    greeter: Path, stub: AnthropicStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-loop-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.url)
    seen: dict[str, list[str]] = {}
    stub.set_handler(_handler(seen))
    result = run_loop(greeter)
    assert result["stopped"] == "", result["report"]
    assert [t.state.value for t in load_backlog(greeter).backlog] == ["done"]
    assert "Greet politely" in seen["implementer"][0]  # the ticket reached the implementer
    assert len(seen["implementer"]) == 2  # sent back once by the review
    assert "no test for greet" in seen["implementer"][1]  # with the reviewer's finding
    assert "-    return 'hi'" in seen["reviewer"][0] and "+    return 'hello'" in seen["reviewer"][0]
    assert (greeter / "greet.py").read_text() == "def greet():\n    return 'hello'\n"
    assert (greeter / "test_greet.py").is_file()
    squash = git(greeter, "log", "-1", "--format=%H", "-E", "--grep=^Conveyor-Ticket: GR-FEAT-001$", "main").strip()
    assert squash
    state = json.loads((greeter / "automations/run-state.json").read_text())
    assert state["tickets"]["GR-FEAT-001"]["stage"]["iterations"] == 1
    assert state["budget"]["used_usd"] > 0  # the stub's usage was priced and booked
