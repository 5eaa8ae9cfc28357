"""ConveyorLM: every DSPy LM call becomes exactly one AgentRequest answered by an AgentBackend.

These tests check plumbing (what reaches the backend, what comes back to DSPy, cache and retries off,
errors, bounded history), not the quality of any model's answers: that needs a real model and is untested.
The backend here is a real, tiny implementation of the AgentBackend port that answers from a list of
scripted results and records the requests it got.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import dspy  # type: ignore[import-untyped]
import pytest
from dspy.clients import base_lm  # type: ignore[import-untyped]
from dspy.lm15 import Message, Request  # type: ignore[import-untyped]

from conveyor.adapters.agents.dspy_lm import (
    AgentCallError,
    CallBinding,
    ConveyorLM,
    UnboundLMError,
    agent_request_from,
)
from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole, ErrorKind, Usage, WorkerStatus
from conveyor.domain.ticket import ModelTier

RUN_ID = "RUN-20250102-0304"


def chat_answer(**fields: str) -> str:
    """A completion in ChatAdapter's format."""
    body = "\n\n".join(f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items())
    return f"{body}\n\n[[ ## completed ## ]]"


class ListBackend:
    """An AgentBackend that answers each request with the next scripted text or result and keeps the requests."""

    def __init__(self, answers: Iterable[str | AgentResult], *, name: str = "list") -> None:
        self.answers = list(answers)
        self.requests: list[AgentRequest] = []
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def run(self, request: AgentRequest) -> AgentResult:
        self.requests.append(request)
        if not self.answers:
            return AgentResult(
                task_id=request.ticket_id or request.role.value,
                status=WorkerStatus.FAILED,
                backend=self.name,
                error_kind=ErrorKind.SCRIPT,
                error_detail="no answer left",
            )
        answer = self.answers.pop(0)
        if isinstance(answer, AgentResult):
            return answer
        return AgentResult(
            task_id=request.ticket_id or request.role.value,
            status=WorkerStatus.SUCCESS,
            text=answer,
            backend=self.name,
            model="test-model",
            usage=Usage(input_tokens=100, cache_read_tokens=40, cache_write_tokens=10, output_tokens=20, requests=1),
            cost_usd=0.002,
        )


def message_texts(request: AgentRequest) -> list[str]:
    return ["\n".join(block["text"] for block in m["content"]) for m in request.inputs["messages"]]


def bound_lm(backend: ListBackend, **changes: Any) -> ConveyorLM:
    fields: dict[str, Any] = {
        "role": AgentRole.REVIEWER,
        "run_id": RUN_ID,
        "ticket_id": "APP-FEAT-001",
        "stage": "reviewing",
        "attempt": 2,
        "tier": ModelTier.COMPLEX,
        "prompt_version": "abc123def456",
        "base_commit": "0123abcd",
    }
    fields.update(changes)
    return ConveyorLM(backend).bind(**fields)


class QA(dspy.Signature):  # type: ignore[misc]
    """Answer the question in one word."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


def chat_adapter() -> Any:
    return dspy.ChatAdapter(use_json_adapter_fallback=False)


def test_each_dspy_call_is_one_agent_request_carrying_the_binding() -> None:
    backend = ListBackend([chat_answer(answer="blue"), chat_answer(answer="green")])
    lm = bound_lm(backend)
    predict = dspy.Predict(QA)
    with dspy.context(lm=lm, adapter=chat_adapter()):
        first = predict(question="What colour is the sky?")
        second = predict(question="What colour is grass?")

    assert (first.answer, second.answer) == ("blue", "green")
    assert len(backend.requests) == 2
    for request in backend.requests:
        assert request.role is AgentRole.REVIEWER
        assert request.run_id == RUN_ID
        assert request.ticket_id == "APP-FEAT-001"
        assert request.stage == "reviewing"
        assert request.attempt == 2
        assert request.tier is ModelTier.COMPLEX
        assert request.prompt_version == "abc123def456"
        assert request.base_commit == "0123abcd"
        assert request.output_schema is None
        assert request.tools == ()
    # the adapter's system message (with the signature's instructions) is the request's system prompt
    request = backend.requests[0]
    assert "Answer the question in one word." in request.system
    assert "`question`" in request.system
    messages = request.inputs["messages"]
    assert [m["role"] for m in messages] == ["user"]
    assert all(m["role"] != "system" for m in messages)
    assert "What colour is the sky?" in message_texts(request)[0]
    assert "What colour is grass?" in message_texts(backend.requests[1])[0]
    assert lm.calls == 2


def test_dspy_cache_and_retries_are_off() -> None:
    backend = ListBackend([chat_answer(answer="blue"), chat_answer(answer="blue")])
    lm = bound_lm(backend)
    assert lm.cache is False
    assert lm.num_retries == 0
    predict = dspy.Predict(QA)
    with dspy.context(lm=lm, adapter=chat_adapter()):
        predict(question="same question")
        predict(question="same question")
    assert len(backend.requests) == 2
    assert backend.requests[0].input_hash() == backend.requests[1].input_hash()


def test_an_error_result_raises_agent_call_error_after_one_request() -> None:
    failure = AgentResult(
        task_id="APP-FEAT-001",
        status=WorkerStatus.FAILED,
        backend="list",
        error_kind=ErrorKind.OVERLOADED,
        error_detail="529 after the SDK's retries",
    )
    backend = ListBackend([failure])
    lm = bound_lm(backend)
    with dspy.context(lm=lm, adapter=chat_adapter()), pytest.raises(AgentCallError) as raised:
        dspy.Predict(QA)(question="anything")
    assert raised.value.result == failure
    assert raised.value.error_kind is ErrorKind.OVERLOADED
    assert "overloaded" in str(raised.value)
    assert len(backend.requests) == 1  # no DSPy retry
    assert lm.last_result == failure


def test_json_adapter_works_over_the_backend() -> None:
    backend = ListBackend(['{"answer": "blue"}'])
    lm = bound_lm(backend)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict(QA)(question="What colour is the sky?")
    assert prediction.answer == "blue"
    assert len(backend.requests) == 1
    assert "What colour is the sky?" in message_texts(backend.requests[0])[0]
    assert "JSON" in backend.requests[0].system or "JSON" in message_texts(backend.requests[0])[0]


def test_usage_reaches_dspy_and_the_lm_counters() -> None:
    backend = ListBackend([chat_answer(answer="blue")])
    lm = bound_lm(backend)
    with dspy.context(lm=lm, adapter=chat_adapter()), dspy.track_usage() as tracker:
        dspy.Predict(QA)(question="q")
    usage = tracker.get_total_tokens()[lm.model]
    assert usage["prompt_tokens"] == 150  # uncached + cache write + cache read, as LiteLLM counts it
    assert usage["completion_tokens"] == 20
    assert usage["prompt_tokens_details"]["cached_tokens"] == 40
    assert usage["prompt_tokens_details"]["cache_creation_tokens"] == 10
    assert lm.usage == Usage(
        input_tokens=100, cache_read_tokens=40, cache_write_tokens=10, output_tokens=20, requests=1
    )
    assert lm.cost_usd == pytest.approx(0.002)


def test_an_unbound_lm_refuses_to_call() -> None:
    backend = ListBackend([chat_answer(answer="blue")])
    with dspy.context(lm=ConveyorLM(backend), adapter=chat_adapter()), pytest.raises(UnboundLMError):
        dspy.Predict(QA)(question="q")
    assert backend.requests == []


def test_bind_returns_a_bound_copy_and_leaves_the_original_alone() -> None:
    backend = ListBackend([])
    base = ConveyorLM(backend)
    first = base.bind(role=AgentRole.PLANNER, run_id=RUN_ID, stage="bootstrap", prompt_version="v1")
    second = first.bind(attempt=3, ticket_id="APP-FEAT-002")
    assert base.binding is None
    assert first.binding == CallBinding(role=AgentRole.PLANNER, run_id=RUN_ID, stage="bootstrap", prompt_version="v1")
    assert second.binding is not None
    assert (second.binding.attempt, second.binding.ticket_id, second.binding.prompt_version) == (
        3,
        "APP-FEAT-002",
        "v1",
    )
    assert second.backend is backend
    with pytest.raises(TypeError, match="prompt_version"):
        base.bind(role=AgentRole.PLANNER, run_id=RUN_ID, stage="bootstrap")
    with pytest.raises(TypeError, match="unknown"):
        first.bind(colour="blue")


def test_history_is_bounded_and_stays_out_of_dspy_global_history() -> None:
    backend = ListBackend([chat_answer(answer=str(i)) for i in range(5)])
    lm = ConveyorLM(backend, history_size=2).bind(role=AgentRole.RESEARCH, run_id=RUN_ID, stage="s", prompt_version="v")
    global_before = len(base_lm.GLOBAL_HISTORY)
    predict = dspy.Predict(QA)
    with dspy.context(lm=lm, adapter=chat_adapter()):
        for i in range(5):
            predict(question=f"q{i}")
    assert len(lm.history) == 2
    assert len(base_lm.GLOBAL_HISTORY) == global_before
    assert predict.history == []

    silent = ConveyorLM(ListBackend([chat_answer(answer="x")]), history_size=0).bind(
        role=AgentRole.RESEARCH, run_id=RUN_ID, stage="s", prompt_version="v"
    )
    with dspy.context(lm=silent, adapter=chat_adapter()):
        predict(question="q")
    assert silent.history == []


def test_a_typed_output_without_text_is_rendered_for_the_adapter() -> None:
    scripted = AgentResult(task_id="research", status=WorkerStatus.SUCCESS, backend="scripted", output={"verdict": "x"})
    backend = ListBackend([scripted])
    lm = bound_lm(backend, output_field="answer")
    with dspy.context(lm=lm, adapter=chat_adapter()):
        prediction = dspy.Predict(QA)(question="q")
    assert prediction.answer == '{"verdict": "x"}'  # the whole output is the value of the named output field

    backend = ListBackend([AgentResult(task_id="r", status=WorkerStatus.SUCCESS, backend="s", output={"answer": "y"})])
    with dspy.context(lm=bound_lm(backend, output_field="answer"), adapter=chat_adapter()):
        assert dspy.Predict(QA)(question="q").answer == "y"


def test_async_calls_go_through_the_backend_too() -> None:
    backend = ListBackend([chat_answer(answer="blue")])
    lm = bound_lm(backend)

    async def ask() -> Any:
        with dspy.context(lm=lm, adapter=chat_adapter()):
            return await dspy.Predict(QA).acall(question="sky?")

    assert asyncio.run(ask()).answer == "blue"
    assert len(backend.requests) == 1


def test_request_conversion_system_developer_and_alternating_roles() -> None:
    binding = CallBinding(role=AgentRole.PLANNER, run_id=RUN_ID, stage="bootstrap", prompt_version="v9")
    request = Request(
        model="conveyor/list",
        system="You plan.",
        messages=(
            Message.user("first"),
            Message.user("second"),
            Message.assistant("an example answer"),
            Message.developer("Be brief."),
            Message.user("the real question"),
        ),
    )
    agent_request = agent_request_from(request, binding)
    assert agent_request.system == "You plan.\n\nBe brief."
    assert agent_request.inputs["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "an example answer"}]},
        {"role": "user", "content": [{"type": "text", "text": "the real question"}]},
    ]
    assert agent_request.prompt_version == "v9"


def test_generation_settings_become_limits_and_inputs() -> None:
    backend = ListBackend([chat_answer(answer="blue")])
    lm = ConveyorLM(backend, max_tokens=1234, temperature=0.2).bind(
        role=AgentRole.QA_TRIAGE, run_id=RUN_ID, stage="qa", prompt_version="v"
    )
    with dspy.context(lm=lm, adapter=chat_adapter()):
        dspy.Predict(QA)(question="q")
    request = backend.requests[0]
    assert request.limits.max_output_tokens == 1234
    assert request.inputs["temperature"] == pytest.approx(0.2)


def test_conveyor_lm_is_not_saved_with_a_program() -> None:
    lm = ConveyorLM(ListBackend([]))
    with pytest.raises(TypeError, match=r"dspy\.context"):
        lm.dump_state()
