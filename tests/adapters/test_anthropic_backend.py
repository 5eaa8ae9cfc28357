"""The anthropic backend through the real SDK against the local stub server: judgment calls, the implementer's
tool loop, prompt caching, faults, limits. No test reaches the internet."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.adapters.agents.anthropic_backend import AnthropicBackend
from conveyor.adapters.sandbox.local import LocalSandbox
from conveyor.domain.agent import AgentRequest, AgentRole, ContextItem, ErrorKind, Limits, ToolName, WorkerStatus
from conveyor.domain.models import DEFAULT_MODELS, ModelTable
from conveyor.domain.ticket import ModelTier
from tests.conftest import git
from tests.support.anthropic_stub import AnthropicStub, Fault, ManualClock, Reply

MODEL = DEFAULT_MODELS[ModelTier.NORMAL].model
SCHEMA = {
    "type": "object",
    "properties": {"decision": {"enum": ["approve", "request-changes"]}, "comments": {"type": "string"}},
    "required": ["decision"],
    "additionalProperties": False,
}


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub(clock=ManualClock()) as server:
        server.set_min_cacheable_tokens(MODEL, 256)
        yield server


def backend(
    stub: AnthropicStub, *, models: ModelTable | None = None, timeout_s: float = 10, retries: int = 2
) -> AnthropicBackend:
    table = models or ModelTable(
        tiers={ModelTier.NORMAL: DEFAULT_MODELS[ModelTier.NORMAL].model_copy(update={"min_cacheable_tokens": 256})}
    )
    return AnthropicBackend(
        api_key="sk-ant-test-key-000000",
        base_url=stub.url,
        models=table,
        sandbox=LocalSandbox(),
        allowed_commands=[["git", "status"]],
        max_retries=retries,
        timeout_s=timeout_s,
    )


def judgment(**kw: Any) -> AgentRequest:
    base: dict[str, Any] = {
        "role": AgentRole.REVIEWER,
        "run_id": "RUN-20261121-1000",
        "ticket_id": "NA-SEC-001",
        "stage": "reviewing",
        "prompt_version": "v1",
        "system": "You review code.",
        "inputs": {"messages": [{"role": "user", "content": "Review this diff: +x = 1"}]},
    }
    return AgentRequest.model_validate(base | kw)


# -- judgment calls ---------------------------------------------------------------------------------------------


def test_text_call_reports_usage_cost_and_model(stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text("looks fine"))
    result = backend(stub).run(judgment())
    assert result.ok and result.text == "looks fine" and result.backend == "anthropic" and result.model == MODEL
    assert result.usage.requests == 1 and result.usage.output_tokens > 0 and result.cost_usd > 0
    body = stub.message_requests()[0].body
    assert body["system"][0]["text"] == "You review code." and body["model"] == MODEL


def test_typed_output_is_validated(stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text('```json\n{"decision": "approve", "comments": "ok"}\n```'))
    result = backend(stub).run(judgment(output_schema=SCHEMA))
    assert result.ok and result.output == {"decision": "approve", "comments": "ok"}


def test_malformed_output_gets_one_repair_round_with_the_error(stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text('{"decision": "maybe"}'), Reply.text('{"decision": "request-changes"}'))
    result = backend(stub).run(judgment(output_schema=SCHEMA))
    assert result.ok and result.output == {"decision": "request-changes"}
    requests = stub.message_requests()
    assert len(requests) == 2
    repair = requests[1].body["messages"][-1]["content"]
    assert "decision" in repair and "maybe" in repair  # the validation error travels back to the model


def test_malformed_twice_is_a_clean_failure(stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text("not json"), Reply.text('{"decision": 3}'))
    result = backend(stub).run(judgment(output_schema=SCHEMA))
    assert result.status is WorkerStatus.FAILED and result.error_kind is ErrorKind.MALFORMED_OUTPUT
    assert len(stub.message_requests()) == 2 and "decision" in result.error_detail


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.status(429), ErrorKind.RATE_LIMITED),
        (Fault.status(529), ErrorKind.OVERLOADED),
        (Fault.status(500), ErrorKind.SERVER_ERROR),
    ],
)
def test_transient_errors_are_retried_by_the_sdk(stub: AnthropicStub, fault: Fault, kind: ErrorKind) -> None:
    stub.enqueue(fault, fault, Reply.text("ok"))
    assert backend(stub, retries=2).run(judgment()).text == "ok"
    assert len(stub.message_requests()) == 3
    stub.enqueue(fault, fault, fault)
    failed = backend(stub, retries=2).run(judgment())  # persistent: an error kind, not an exception
    assert failed.status is WorkerStatus.FAILED and failed.error_kind is kind


def test_a_hanging_server_times_out_and_never_hangs(stub: AnthropicStub) -> None:
    stub.enqueue(Fault.hang())
    result = backend(stub, timeout_s=0.5, retries=0).run(judgment())
    assert result.error_kind is ErrorKind.TIMEOUT


def test_a_slow_answer_within_the_timeout_succeeds(stub: AnthropicStub) -> None:
    stub.enqueue(Fault.delay(0.3, then=Reply.text("slow but fine")))
    assert backend(stub, timeout_s=5).run(judgment()).text == "slow but fine"


# -- the implementer's tool loop --------------------------------------------------------------------------------


@pytest.fixture
def worktree(scratch_repo: Path) -> Path:
    (scratch_repo / "app.py").write_text("def greet():\n    return 'hi'\n")
    git(scratch_repo, "add", "app.py")
    git(scratch_repo, "commit", "-q", "-m", "app")
    return scratch_repo


def implementer(workdir: Path, **kw: Any) -> AgentRequest:
    base: dict[str, Any] = {
        "role": AgentRole.IMPLEMENTER,
        "run_id": "RUN-20261121-1000",
        "ticket_id": "NA-CQ-001",
        "stage": "implementing",
        "prompt_version": "impl-1",
        "base_commit": git(workdir, "rev-parse", "HEAD").strip(),
        "inputs": {
            "ticket": {
                "title": "Greet politely",
                "acceptance_criteria": ["greet() returns 'hello'"],
                "touch_set": ["app.py"],
            },
            "quality_gates": [["git", "status"]],
        },
        "context": (ContextItem(kind="playbook", name="style", text="Write small functions. " * 200),),
        "tools": tuple(ToolName),
        "workdir": str(workdir),
    }
    return AgentRequest.model_validate(base | kw)


def scripted_turns(*replies: Reply) -> Callable[[dict[str, Any]], Reply]:
    """Answer by turn number (assistant messages so far), so retries and condensation stay in step."""

    def handler(body: dict[str, Any]) -> Reply:
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        return replies[min(turn, len(replies) - 1)]

    return handler


FIX = Reply.tool_use("edit_file", {"path": "app.py", "old": "'hi'", "new": "'hello'"})
FINISH = Reply.tool_use("finish", {"status": "success", "notes": "greet says hello", "commit_message": "fix: greet"})


def test_implementer_edits_commits_and_reports(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_handler(scripted_turns(Reply.tool_use("read_file", {"path": "app.py"}), FIX, FINISH))
    request = implementer(worktree)
    result = backend(stub).run(request)
    assert result.ok, result.error_detail
    assert result.commit_sha and result.commit_sha != request.base_commit
    assert git(worktree, "log", "-1", "--format=%s %an").strip() == "fix: greet Conveyor"
    assert (worktree / "app.py").read_text() == "def greet():\n    return 'hello'\n"
    assert result.notes.startswith("greet says hello") and result.usage.requests == 3 and result.used


def test_prompt_caching_breakpoints_and_reads(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_handler(
        scripted_turns(Reply.tool_use("read_file", {"path": "app.py"}), Reply.tool_use("list_files", {}), FIX, FINISH)
    )
    result = backend(stub).run(implementer(worktree))
    assert result.ok
    requests = stub.message_requests()
    for request in requests:
        body = request.body
        marks = [t for t in body["tools"] if "cache_control" in t]
        marks += [b for b in body["system"] if "cache_control" in b]
        message_marks = [b for m in body["messages"] for b in m["content"] if "cache_control" in b]
        assert len(marks) == 2 and len(message_marks) == 1  # tools, system, newest message: 3 of at most 4
        assert "cache_control" in body["messages"][-1]["content"][-1]
    usages = [r.usage or {} for r in requests]
    assert usages[0]["cache_read_input_tokens"] == 0 and usages[0]["cache_creation_input_tokens"] > 0
    for earlier, later in itertools.pairwise(usages):
        # each request reads everything the previous one wrote
        assert (
            later["cache_read_input_tokens"]
            >= earlier["cache_read_input_tokens"] + earlier["cache_creation_input_tokens"]
        )
    assert result.usage.cache_read_share > 0.5
    assert "read nothing from the cache" not in result.notes


def test_repeated_tool_call_is_stuck(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_handler(lambda body: Reply.tool_use("read_file", {"path": "app.py"}))
    result = backend(stub).run(implementer(worktree))
    assert result.error_kind is ErrorKind.STUCK and "repeated 3 times" in result.error_detail
    assert len(stub.message_requests()) == 3


def test_turns_without_progress_are_stuck(stub: AnthropicStub, worktree: Path) -> None:
    paths = iter(["nope1.py", "nope2.py", "nope3.py", "nope4.py", "nope5.py"])
    stub.set_handler(lambda body: Reply.tool_use("read_file", {"path": next(paths)}))
    result = backend(stub).run(implementer(worktree, limits=Limits(idle_turns=3)))
    assert result.error_kind is ErrorKind.STUCK and "without progress" in result.error_detail


def test_turn_token_and_budget_limits(stub: AnthropicStub, worktree: Path) -> None:
    reads = iter(range(100))
    stub.set_handler(lambda body: Reply.tool_use("search", {"pattern": f"x{next(reads)}"}))
    assert backend(stub).run(implementer(worktree, limits=Limits(max_turns=2))).error_kind is ErrorKind.TURN_LIMIT
    assert backend(stub).run(implementer(worktree, limits=Limits(max_tokens=10))).error_kind is ErrorKind.TOKEN_LIMIT
    assert backend(stub).run(implementer(worktree, limits=Limits(max_usd=0.000001))).error_kind is ErrorKind.BUDGET


def test_malformed_tool_input_is_refused_and_the_model_recovers(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_handler(scripted_turns(Reply.tool_use_raw("edit_file", '{"path": 7}'), FIX, FINISH))
    result = backend(stub).run(implementer(worktree))
    assert result.ok
    second = stub.message_requests()[1].body["messages"][-1]["content"]
    assert second[0]["type"] == "tool_result" and second[0]["is_error"] is True


def test_two_truncated_answers_fail_cleanly(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_handler(lambda body: Reply.max_tokens("I will now wri"))
    result = backend(stub).run(implementer(worktree))
    assert result.error_kind is ErrorKind.MAX_TOKENS and len(stub.message_requests()) == 2


def test_stopping_without_finish_is_nudged_once(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_handler(lambda body: Reply.text("I think I am done."))
    result = backend(stub).run(implementer(worktree))
    assert result.error_kind is ErrorKind.STUCK and len(stub.message_requests()) == 2
    assert "finish" in stub.message_requests()[1].body["messages"][-1]["content"][-1]["text"]


def test_long_conversations_are_condensed_and_go_on(stub: AnthropicStub, worktree: Path) -> None:
    small = DEFAULT_MODELS[ModelTier.NORMAL].model_copy(update={"context_tokens": 2000, "min_cacheable_tokens": 256})
    stub.enqueue(Reply.tool_use("read_file", {"path": "app.py"}), FIX, FINISH)  # in order, whatever the history
    result = backend(stub, models=ModelTable(tiers={ModelTier.NORMAL: small})).run(implementer(worktree))
    assert result.ok and "condensed" in result.notes
    later = stub.message_requests()[1].body["messages"]
    assert len(later) == 1 and "Progress so far" in later[0]["content"][0]["text"]


def test_commands_run_only_from_the_allow_list(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_handler(
        scripted_turns(
            Reply.tool_use("run_command", {"argv": ["sh", "-c", "touch pwned"]}),
            Reply.tool_use("run_command", {"argv": ["git", "status"]}),
            FIX,
            FINISH,
        )
    )
    result = backend(stub).run(implementer(worktree))
    assert result.ok and not (worktree / "pwned").exists()
    refused = stub.message_requests()[1].body["messages"][-1]["content"][0]
    assert refused["is_error"] is True and "refused" in refused["content"]


def test_a_long_prefix_that_was_not_cached_is_warned_about(stub: AnthropicStub, worktree: Path) -> None:
    stub.set_min_cacheable_tokens(MODEL, 1_000_000)  # the server caches nothing, silently, as the real API does
    stub.set_handler(scripted_turns(Reply.tool_use("read_file", {"path": "app.py"}), FIX, FINISH))
    result = backend(stub).run(implementer(worktree))
    assert result.ok
    assert result.usage.cache_read_tokens == 0 and "read nothing from the cache" in result.notes
