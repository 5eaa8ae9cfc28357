"""The local Anthropic stub (tests/support/anthropic_stub.py) driven by the real anthropic SDK over loopback."""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.support import anthropic_stub as stub_module
from tests.support.anthropic_stub import AnthropicStub, Fault, ManualClock, Reply

# The module's pytest fixture, registered here under the name "stub" (conftest can import it as anthropic_stub).
stub = stub_module.anthropic_stub

MODEL = "claude-sonnet-4-6"  # no own entry in the minimum table: 1024 tokens
LONG_SYSTEM = "You are a careful engineer. Follow the repository conventions. " * 80  # 5040 chars
SYSTEM_TOKENS = 1260  # ceil(5040 / 4): above MODEL's 1024, below claude-haiku-4-5's 4096
TOOLS: list[Any] = [
    {
        "name": "read_file",
        "description": "Read a file of the worktree.",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
]
EPHEMERAL: Any = {"type": "ephemeral"}


@pytest.fixture
def client(stub: AnthropicStub) -> Iterator[anthropic.Anthropic]:
    with stub.client(max_retries=2, timeout=5.0) as sdk:
        yield sdk


def user(text: str) -> Any:
    return {"role": "user", "content": text}


def cached_system(text: str = LONG_SYSTEM) -> Any:
    return [{"type": "text", "text": text, "cache_control": EPHEMERAL}]


# ----- replies ------------------------------------------------------------------------------------------------
def test_text_reply_echoes_model_and_counts_tokens(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Reply.text("Hello there, friend"))
    message = client.messages.create(model=MODEL, max_tokens=64, messages=[user("x" * 41)])
    assert message.content[0].type == "text" and message.content[0].text == "Hello there, friend"
    assert message.stop_reason == "end_turn" and message.model == MODEL and message.id.startswith("msg_")
    assert message.usage.input_tokens == 11  # ceil(41 / 4)
    assert message.usage.output_tokens == 5  # ceil(19 / 4)
    assert message.usage.cache_creation_input_tokens == 0 and message.usage.cache_read_input_tokens == 0
    (recorded,) = stub.message_requests()
    assert recorded.status == 200 and recorded.outcome == "reply" and recorded.body["max_tokens"] == 64
    assert recorded.headers["authorization"] == "***" and recorded.request_id.startswith("req_")
    assert recorded.usage is not None and recorded.usage["input_tokens"] == 11
    assert recorded.at == stub.manual_clock()


def test_tool_use_then_tool_result(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Reply.tool_use("read_file", {"path": "src/app.py"}, text="Let me look."), Reply.text("Done."))
    first = client.messages.create(model=MODEL, max_tokens=256, tools=TOOLS, messages=[user("Fix the bug")])
    assert first.stop_reason == "tool_use"
    text, call = first.content
    assert text.type == "text" and text.text == "Let me look."
    assert call.type == "tool_use" and call.name == "read_file" and call.input == {"path": "src/app.py"}
    assert call.id.startswith("toolu_")
    result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "print('hi')"}
    history: Any = [
        user("Fix the bug"),
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [result]},
    ]
    second = client.messages.create(model=MODEL, max_tokens=256, tools=TOOLS, messages=history)
    assert second.content[0].type == "text" and second.content[0].text == "Done."
    assert stub.message_requests()[1].body["messages"][2]["content"][0]["tool_use_id"] == call.id


def test_several_tool_uses_in_one_reply(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Reply.tool_uses(("read_file", {"path": "a"}), ("read_file", {"path": "b"})))
    message = client.messages.create(model=MODEL, max_tokens=256, tools=TOOLS, messages=[user("read both")])
    calls = [block for block in message.content if block.type == "tool_use"]
    assert [c.input for c in calls] == [{"path": "a"}, {"path": "b"}] and calls[0].id != calls[1].id


def test_tool_result_for_unknown_id_is_rejected_without_consuming_the_queue(
    stub: AnthropicStub, client: anthropic.Anthropic
) -> None:
    stub.enqueue(Reply.text("unused"))
    result: Any = {"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}
    history: Any = [user("a"), {"role": "assistant", "content": "b"}, {"role": "user", "content": [result]}]
    with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
        client.messages.create(model=MODEL, max_tokens=16, messages=history)
    assert stub.queued == 1


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "assistant", "content": "hi"}], 'first message must use the "user" role'),
        ([user("a"), user("b")], "roles must alternate"),
        ([], "messages: Field required"),
    ],
)
def test_invalid_conversations_are_400(client: anthropic.Anthropic, messages: Any, error: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=error) as raised:
        client.messages.create(model=MODEL, max_tokens=16, messages=messages)
    body = raised.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["request_id"] == raised.value.request_id


def _raw_post(stub: AnthropicStub, path: str, data: bytes) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=5)
    try:
        connection.request("POST", path, body=data, headers={"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_raw_requests_missing_fields_bad_json_and_unknown_path(stub: AnthropicStub) -> None:
    body = {"model": MODEL, "messages": [user("hi")]}
    assert _raw_post(stub, "/v1/messages", json.dumps(body).encode())[1]["error"]["message"].startswith("max_tokens")
    assert _raw_post(stub, "/v1/messages", b"{not json")[0] == 400
    status, payload = _raw_post(stub, "/v1/nothing", b"{}")
    assert status == 404 and payload["error"]["type"] == "not_found_error"
    assert [r.path for r in stub.requests] == ["/v1/messages", "/v1/messages", "/v1/nothing"]
    assert stub.message_requests()[0].body == body


def test_handler_computes_replies_after_the_queue(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Reply.text("from the queue"))
    stub.set_handler(lambda body: Reply.text("echo: " + body["messages"][-1]["content"]))
    texts = []
    for prompt in ("one", "two"):
        block = client.messages.create(model=MODEL, max_tokens=16, messages=[user(prompt)]).content[0]
        assert block.type == "text"
        texts.append(block.text)
    assert texts == ["from the queue", "echo: two"]


# ----- streaming ----------------------------------------------------------------------------------------------
def test_streaming_text_matches_the_non_streaming_reply(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    text = "A streamed answer that is long enough to need several text deltas on the wire."
    stub.enqueue(Reply.text(text), Reply.text(text))
    plain = client.messages.create(model=MODEL, max_tokens=64, messages=[user("hi")])
    with client.messages.stream(model=MODEL, max_tokens=64, messages=[user("hi")]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == text
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage == plain.usage
    assert stub.message_requests()[1].stream


def test_streaming_tool_use_through_input_json_delta(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    arguments = {"path": "src/conveyor/some/deeply/nested/module.py", "lines": [1, 2, 3]}
    stub.enqueue(Reply.tool_use("read_file", arguments, text="Reading."), Reply.tool_use("read_file", arguments))
    with client.messages.stream(model=MODEL, max_tokens=256, tools=TOOLS, messages=[user("go")]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = final.content[1]
    assert call.type == "tool_use" and call.input == arguments and call.id.startswith("toolu_")
    events = list(client.messages.create(model=MODEL, max_tokens=256, tools=TOOLS, messages=[user("go")], stream=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    partials = [
        e.delta.partial_json for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(partials) > 2 and json.loads("".join(partials)) == arguments


def test_count_tokens_equals_usage_input(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    prompt: Any = {"system": "Be brief.", "tools": TOOLS, "messages": [user("How many tokens is this prompt?")]}
    counted = client.messages.count_tokens(model=MODEL, **prompt)
    stub.enqueue(Reply.text("ok"))
    usage = client.messages.create(model=MODEL, max_tokens=16, **prompt).usage
    assert counted.input_tokens == usage.input_tokens == stub.count_tokens({"model": MODEL, **prompt})
    tool_tokens = math.ceil(len(json.dumps(TOOLS[0], sort_keys=True, separators=(",", ":"))) / 4)
    assert counted.input_tokens == 3 + 8 + tool_tokens  # ceil(9 / 4) + ceil(31 / 4) + the tool as canonical JSON
    assert stub.queued == 0  # count_tokens never takes a scripted reply


# ----- prompt caching -----------------------------------------------------------------------------------------
def _ask(stub: AnthropicStub, client: anthropic.Anthropic, **kwargs: Any) -> anthropic.types.Usage:
    stub.enqueue(Reply.text("ok"))
    usage: anthropic.types.Usage = client.messages.create(
        model=kwargs.pop("model", MODEL), max_tokens=16, **kwargs
    ).usage
    return usage


def test_cache_write_then_read_on_a_long_system_prompt(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    first = _ask(stub, client, system=cached_system(), messages=[user("question one")])
    second = _ask(stub, client, system=cached_system(), messages=[user("question one")])
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens, first.input_tokens) == (
        SYSTEM_TOKENS,
        0,
        3,
    )
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens, second.input_tokens) == (
        0,
        SYSTEM_TOKENS,
        3,
    )
    assert first.cache_creation is not None and first.cache_creation.ephemeral_5m_input_tokens == SYSTEM_TOKENS


def test_prefix_below_the_minimum_caches_nothing(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    for _ in range(2):
        usage = _ask(stub, client, system=cached_system("short " * 100), messages=[user("hi")])
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens, usage.input_tokens) == (0, 0, 151)
    for _ in range(2):  # SYSTEM_TOKENS tokens are enough for this model's 1024, not for claude-haiku-4-5's 4096
        usage = _ask(stub, client, model="claude-haiku-4-5", system=cached_system(), messages=[user("hi")])
        assert usage.cache_creation_input_tokens == usage.cache_read_input_tokens == 0
    stub.set_min_cacheable_tokens("claude-haiku-4-5", 1024)
    assert (
        _ask(
            stub, client, model="claude-haiku-4-5", system=cached_system(), messages=[user("hi")]
        ).cache_creation_input_tokens
        == SYSTEM_TOKENS
    )


def test_more_than_four_breakpoints_is_a_400(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": f"part {i}", "cache_control": EPHEMERAL} for i in range(5)]
    stub.enqueue(Reply.text("unused"))
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks with cache_control"):
        client.messages.create(model=MODEL, max_tokens=16, system=system, messages=[user("hi")])
    with pytest.raises(anthropic.BadRequestError, match="Found 5"):  # four explicit + the automatic one
        client.messages.create(
            model=MODEL, max_tokens=16, system=system[:4], messages=[user("hi")], cache_control=EPHEMERAL
        )
    assert client.messages.create(model=MODEL, max_tokens=16, system=system[:4], messages=[user("hi")]).id


def test_cache_entry_expires_five_minutes_after_its_last_use(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    def ask() -> anthropic.types.Usage:
        return _ask(stub, client, system=cached_system(), messages=[user("q")])

    assert ask().cache_creation_input_tokens == SYSTEM_TOKENS
    stub.manual_clock.advance(299)
    assert ask().cache_read_input_tokens == SYSTEM_TOKENS  # a read refreshes the TTL
    stub.manual_clock.advance(299)
    assert ask().cache_read_input_tokens == SYSTEM_TOKENS
    stub.manual_clock.advance(301)
    usage = ask()
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (SYSTEM_TOKENS, 0)


def test_one_hour_ttl(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    first = _ask(stub, client, system=system, messages=[user("q")])
    assert first.cache_creation is not None and first.cache_creation.ephemeral_1h_input_tokens == SYSTEM_TOKENS
    stub.manual_clock.advance(3000)
    assert _ask(stub, client, system=system, messages=[user("q")]).cache_read_input_tokens == SYSTEM_TOKENS


def _conversation(turns: int, *, mark_last: bool) -> list[Any]:
    messages: list[Any] = []
    for turn in range(turns):
        if turn:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {turn} " * 30}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": f"question {turn} " * 40}]})
    if mark_last:
        messages[-1]["content"][-1]["cache_control"] = EPHEMERAL
    return messages


def test_multi_turn_breakpoint_on_the_newest_message(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    previous_total = 0
    for turns in range(1, 5):
        messages = _conversation(turns, mark_last=True)
        usage = _ask(stub, client, system=LONG_SYSTEM, tools=TOOLS, messages=messages)
        total = stub.count_tokens({"model": MODEL, "system": LONG_SYSTEM, "tools": TOOLS, "messages": messages})
        assert usage.cache_read_input_tokens == previous_total  # exactly what the previous turn wrote
        assert usage.cache_creation_input_tokens == total - previous_total
        assert usage.input_tokens == 0  # nothing after the last breakpoint
        previous_total = total
    assert previous_total > 1900


def test_automatic_caching_with_top_level_cache_control(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    first_messages = _conversation(1, mark_last=False)
    first = _ask(stub, client, system=LONG_SYSTEM, messages=first_messages, cache_control=EPHEMERAL)
    first_total = stub.count_tokens({"model": MODEL, "system": LONG_SYSTEM, "messages": first_messages})
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (first_total, 0)
    second = _ask(stub, client, system=LONG_SYSTEM, messages=_conversation(2, mark_last=False), cache_control=EPHEMERAL)
    assert second.cache_read_input_tokens == first_total and second.input_tokens == 0
    without = _ask(stub, client, system=LONG_SYSTEM, messages=_conversation(3, mark_last=False))
    assert without.cache_read_input_tokens == without.cache_creation_input_tokens == 0  # no breakpoint, no cache


def test_reads_look_back_at_most_twenty_blocks(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    messages = _conversation(1, mark_last=True)
    written = _ask(stub, client, system=LONG_SYSTEM, messages=messages).cache_creation_input_tokens
    del messages[-1]["content"][-1]["cache_control"]
    blocks: list[Any] = [{"type": "text", "text": f"note {i}"} for i in range(25)]
    blocks[-1]["cache_control"] = EPHEMERAL
    far = [*messages, {"role": "assistant", "content": "ok"}, {"role": "user", "content": blocks}]
    assert _ask(stub, client, system=LONG_SYSTEM, messages=far).cache_read_input_tokens == 0
    near = [*messages, {"role": "assistant", "content": "ok"}, {"role": "user", "content": blocks[-5:]}]
    assert _ask(stub, client, system=LONG_SYSTEM, messages=near).cache_read_input_tokens == written


# ----- faults and the SDK's retries ---------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 529])
def test_retryable_fault_then_success(stub: AnthropicStub, client: anthropic.Anthropic, status: int) -> None:
    stub.enqueue(Fault.status(status, retry_after=0.01), Reply.text("recovered"))
    message = client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert message.content[0].type == "text" and message.content[0].text == "recovered"
    first, second = stub.message_requests()
    assert first.status == status and second.status == 200
    assert (
        first.response is not None
        and first.response["error"]["type"] == {429: "rate_limit_error", 529: "overloaded_error"}[status]
    )
    assert second.headers["x-stainless-retry-count"] == "1"


def test_two_500s_then_success_within_max_retries(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Fault.status(500), Fault.status(500), Reply.text("third time"))
    assert client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")]).id
    assert [r.status for r in stub.message_requests()] == [500, 500, 200]


def test_persistent_500_fails_after_max_retries_plus_one(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.set_handler(lambda body: Fault.status(500))
    with pytest.raises(anthropic.InternalServerError) as raised:
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert raised.value.status_code == 500 and len(stub.message_requests()) == 3


def test_slow_response_under_the_timeout(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Fault.delay(0.3), Reply.text("slow"))
    started = time.monotonic()
    message = client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert message.content[0].type == "text" and message.content[0].text == "slow"
    assert time.monotonic() - started >= 0.3 and len(stub.message_requests()) == 1


def test_hang_becomes_a_client_timeout(stub: AnthropicStub) -> None:
    stub.enqueue(Fault.hang(), Reply.text("after the hang"))
    started = time.monotonic()
    with stub.client(max_retries=0, timeout=0.5) as sdk:
        with pytest.raises(anthropic.APITimeoutError):
            sdk.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
        assert time.monotonic() - started < 3
        assert sdk.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")]).id
    deadline = time.monotonic() + 2
    while stub.message_requests()[0].outcome == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(r.status, r.outcome) for r in stub.message_requests()] == [(None, "hang"), (200, "reply")]


def test_malformed_tool_input_non_streaming(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Reply.tool_use_raw("read_file", '{"path": oops}'), Reply.tool_use_raw("read_file", '{"path": 5}'))
    for expected in ({"_stub_raw_input": '{"path": oops}'}, {"path": 5}):
        call = client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=[user("go")]).content[0]
        assert call.type == "tool_use" and call.input == expected


def test_malformed_tool_input_streaming(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    raw = '{"path": "src/a.py", oops}'
    stub.enqueue(Reply.tool_use_raw("read_file", raw), Reply.tool_use_raw("read_file", raw))
    with (
        pytest.raises(ValueError, match="Unable to parse tool parameter JSON"),
        client.messages.stream(model=MODEL, max_tokens=64, tools=TOOLS, messages=[user("go")]) as stream,
    ):
        stream.get_final_message()
    events = client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=[user("go")], stream=True)
    partials = [
        e.delta.partial_json for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert "".join(partials) == raw


def test_max_tokens_truncation(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Reply.max_tokens("The answer is cut"), Reply.max_tokens("The answer is cut"))
    message = client.messages.create(model=MODEL, max_tokens=5, messages=[user("hi")])
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 5
    with client.messages.stream(model=MODEL, max_tokens=5, messages=[user("hi")]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.content[0].type == "text"
    assert final.content[0].text == "The answer is cut" and final.usage.output_tokens == 5


def test_stream_error_event_mid_stream(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.enqueue(Fault.stream_error("overloaded_error"))
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.stream(model=MODEL, max_tokens=16, messages=[user("hi")]) as stream,
    ):
        stream.get_final_message()
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": stub.message_requests()[0].request_id,
    }


def test_empty_queue_is_a_clear_500_without_retries(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError, match="stub: no scripted reply"):
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert len(stub.message_requests()) == 1  # x-should-retry: false, so a forgotten script fails fast


def test_a_failing_handler_is_a_500_without_retries(stub: AnthropicStub, client: anthropic.Anthropic) -> None:
    stub.set_handler(lambda body: body["no such key"])
    with pytest.raises(anthropic.InternalServerError, match="stub: handler raised KeyError"):
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert len(stub.message_requests()) == 1


# ----- lifecycle ----------------------------------------------------------------------------------------------
def test_close_wakes_a_hanging_request_and_leaves_no_threads() -> None:
    threads_before = set(threading.enumerate())
    outcome: list[BaseException] = []
    stub_server = AnthropicStub(clock=ManualClock()).start()
    stub_server.enqueue(Fault.hang())

    def call() -> None:
        with stub_server.client(max_retries=0, timeout=30) as sdk:
            try:
                sdk.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
            except anthropic.APIError as err:
                outcome.append(err)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not stub_server.message_requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    stub_server.close()
    caller.join(timeout=5)
    assert time.monotonic() - started < 2 and not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], anthropic.APIConnectionError)
    assert set(threading.enumerate()) <= threads_before
    stub_server.close()  # idempotent
