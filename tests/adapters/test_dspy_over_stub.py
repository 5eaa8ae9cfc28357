"""DSPy's LM path end to end over the real anthropic SDK: role program → ConveyorLM → the backend
``agent_backend`` assembles (RecordingBackend over AnthropicBackend) → HTTP → the local stub server.

Plumbing only: the role's prompt and inputs reach the wire, a ChatAdapter-format answer comes back as the typed
output, the repair round sends the validation error, and usage, cost, logs and replay apply to DSPy calls too.
Planning and review quality needs a real model and is untested here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.adapters.agents.prompts import default_prompt
from conveyor.adapters.agents.roles import planner, reviewer
from conveyor.adapters.agents.roles.base import REPAIR_FIELD, RoleCall
from conveyor.domain.agent import AgentRole, ErrorKind
from conveyor.domain.models import DEFAULT_MODELS
from conveyor.domain.roles import Plan, ReviewDecision, ReviewVerdict, RoleOutputError
from conveyor.domain.ticket import ModelTier
from conveyor.ports import AgentBackend
from conveyor.services.agents import agent_backend
from conveyor.settings import load_settings
from tests.support.anthropic_stub import AnthropicStub, ManualClock, RecordedRequest, Reply
from tests.support.role_answers import DIFF, PRD, TICKET, chat_answer, todo_plan

RUN_ID = "RUN-20260301-1000"
PLAN = todo_plan()
VERDICT: dict[str, Any] = {
    "decision": "request-changes",
    "findings": [{"severity": "blocker", "title": "No test", "file": "src/app/health.py", "line": 1}],
    "security_findings": [],
    "comments": "Add a test.",
}


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub(clock=ManualClock()) as server:
        yield server


@pytest.fixture
def repo(tmp_path: Path, stub: AnthropicStub, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose build-spec selects the anthropic backend; the SDK is pointed at the stub."""
    root = tmp_path / "repo"
    (root / "automations").mkdir(parents=True)
    spec = {"agents": {"backend": "anthropic", "sandbox": "none"}}
    (root / "automations" / "build-spec.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-dspy-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.url)
    return root


def assembled(repo: Path) -> AgentBackend:
    backend = agent_backend(repo, load_settings(repo))
    assert backend is not None and backend.name == "anthropic"
    return backend


def role_call(repo: Path) -> RoleCall:
    return RoleCall(backend=assembled(repo), run_id=RUN_ID, repo_root=repo)


def system_text(request: RecordedRequest) -> str:
    system = request.body.get("system", [])
    return system if isinstance(system, str) else "\n".join(block["text"] for block in system)


def user_texts(request: RecordedRequest) -> list[str]:
    texts = []
    for message in request.body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        texts.append(content if isinstance(content, str) else "\n".join(b["text"] for b in content))
    return texts


def prompt_lines(role: AgentRole) -> list[str]:
    return [line.strip() for line in default_prompt(role).text.splitlines() if line.strip()]


def test_reviewer_over_the_stub_returns_a_typed_verdict(repo: Path, stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text(chat_answer(verdict=VERDICT)))

    outcome = reviewer.run(role_call(repo), ticket=TICKET, diff=DIFF)

    assert isinstance(outcome.output, ReviewVerdict)
    assert outcome.output.decision is ReviewDecision.REQUEST_CHANGES and outcome.output.blockers == 1
    assert (outcome.calls, outcome.repaired) == (1, False)
    [sent] = stub.message_requests()
    system = system_text(sent)
    assert all(line in system for line in prompt_lines(AgentRole.REVIEWER))  # the whole reviewer prompt
    [user] = user_texts(sent)
    assert DIFF.strip() in user and TICKET.id in user and "GET /health returns 200" in user
    assert sent.body["model"] == DEFAULT_MODELS[ModelTier.NORMAL].model  # the reviewer's default tier
    # what every agent call gets: usage and cost from the wire, and a log of the call
    last = outcome.last_result
    assert last is not None and last.backend == "anthropic" and last.usage.requests == 1
    assert outcome.usage.output_tokens == (sent.usage or {})["output_tokens"] and outcome.cost_usd > 0
    assert last.transcript is not None and (repo / last.transcript).is_file()
    assert Path(last.transcript).parent.as_posix() == "automations/logs/reviewer"


def test_reviewer_repair_round_over_the_stub_carries_the_validation_error(repo: Path, stub: AnthropicStub) -> None:
    stub.enqueue(
        Reply.text(chat_answer(verdict={**VERDICT, "decision": "UNIQUE-BAD-DECISION"})),
        Reply.text(chat_answer(verdict=VERDICT)),
    )

    outcome = reviewer.run(role_call(repo), ticket=TICKET, diff=DIFF)

    assert outcome.repaired and outcome.calls == 2 and isinstance(outcome.output, ReviewVerdict)
    first, second = stub.message_requests()
    assert REPAIR_FIELD not in user_texts(first)[-1]
    repair = user_texts(second)[-1].split(f"[[ ## {REPAIR_FIELD} ## ]]", 1)[1]
    assert "decision" in repair and "UNIQUE-BAD-DECISION" in repair  # the validation error travels back
    assert DIFF.strip() in user_texts(second)[-1]  # with the original inputs


def test_two_malformed_answers_over_the_stub_fail_cleanly(repo: Path, stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text("I would approve this."), Reply.text(chat_answer(verdict={"decision": "maybe"})))

    with pytest.raises(RoleOutputError) as raised:
        reviewer.run(role_call(repo), ticket=TICKET, diff=DIFF)

    assert raised.value.error_kind is ErrorKind.MALFORMED_OUTPUT and raised.value.calls == 2
    assert raised.value.result.backend == "anthropic"
    assert len(stub.message_requests()) == 2


def test_a_repeated_review_is_replayed_without_a_request(repo: Path, stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text(chat_answer(verdict=VERDICT)))
    first = reviewer.run(role_call(repo), ticket=TICKET, diff=DIFF)

    again = reviewer.run(role_call(repo), ticket=TICKET, diff=DIFF)  # a re-run, assembled again

    assert again.output == first.output and again.last_result is not None and again.last_result.replayed
    assert len(stub.message_requests()) == 1


def test_planner_over_the_stub_returns_a_typed_plan(repo: Path, stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text(chat_answer(plan=PLAN)))

    outcome = planner.run(role_call(repo), spec=PRD)

    assert isinstance(outcome.output, Plan)
    assert [t.id_hint for t in outcome.output.tickets] == ["CORE-001", "AUTH-001"]
    assert outcome.output.resolve(outcome.output.tickets[1]) == [outcome.output.tickets[0]]
    [sent] = stub.message_requests()
    assert all(line in system_text(sent) for line in prompt_lines(AgentRole.PLANNER))
    assert PRD.strip() in user_texts(sent)[-1]
    assert sent.body["model"] == DEFAULT_MODELS[ModelTier.COMPLEX].model  # the planner's default tier


def test_planner_repair_round_over_the_stub(repo: Path, stub: AnthropicStub) -> None:
    missing = {"tickets": [{k: v for k, v in PLAN["tickets"][0].items() if k != "acceptance_criteria"}]}
    stub.enqueue(Reply.text(chat_answer(plan=missing)), Reply.text(chat_answer(plan=PLAN)))

    outcome = planner.run(role_call(repo), spec=PRD)

    assert outcome.repaired and len(outcome.output.tickets) == 2
    first, second = stub.message_requests()
    repair = user_texts(second)[-1].split(f"[[ ## {REPAIR_FIELD} ## ]]", 1)[1]
    assert "acceptance_criteria" in repair
    assert PRD.strip() in user_texts(first)[-1] and PRD.strip() in user_texts(second)[-1]
