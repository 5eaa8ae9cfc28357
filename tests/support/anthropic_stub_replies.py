"""Scripted replies and faults for the Anthropic stub, and their rendering in the Messages API wire format.

Output tokens of a reply: ``max(1, sum of ceil(len(s) / 4))`` over its blocks, where s is a text block's text or
the JSON text of a tool_use block's input (the raw string for ``Reply.tool_use_raw``), unless the reply sets
``output_tokens``; a ``Reply.max_tokens`` truncation reports the request's ``max_tokens``.

Malformed tool input (``Reply.tool_use_raw(name, raw)``):

- streaming: ``raw`` is sent verbatim, in chunks, as ``input_json_delta.partial_json`` (after the API's usual
  empty first delta). ``client.messages.create(stream=True)`` hands those strings to the caller unchanged;
  ``client.messages.stream(...)`` parses them with jiter in partial mode, so syntactically invalid JSON makes the
  SDK raise ``ValueError("Unable to parse tool parameter JSON from model. ...")`` while iterating or in
  ``get_final_message()`` (merely truncated JSON such as ``'{"path": "a'`` parses partially instead).
- non-streaming: the API always returns ``input`` as an object, so the stub sends ``json.loads(raw)`` when that
  is an object (use it for wrong types or missing required fields) and otherwise
  ``{"_stub_raw_input": raw}`` (an object that matches no real tool schema).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

RAW_INPUT_KEY = "_stub_raw_input"
STREAM_CHUNK_CHARS = 24
# Faults answer with retry-after-ms = 10 by default: the SDK honours it (a value <= 0 would make it fall back to
# its own 0.5 s+ exponential backoff), so tests of retries stay fast.
FAST_RETRY_AFTER = 0.01

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
STATUS_BY_ERROR_TYPE = {error_type: status for status, error_type in ERROR_TYPES.items()}
DEFAULT_MESSAGES: dict[str, str] = {
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
    "timeout_error": "Request timeout",
}


def error_type_for(status_code: int) -> str:
    if status_code in ERROR_TYPES:
        return ERROR_TYPES[status_code]
    return "api_error" if status_code >= 500 else "invalid_request_error"


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


@dataclass(frozen=True)
class TextOut:
    text: str


@dataclass(frozen=True)
class ToolUseOut:
    name: str
    input: Mapping[str, Any] | None = None
    raw_input: str | None = None  # malformed input, see the module docstring
    tool_id: str | None = None  # default: a fresh "toolu_..." id from the stub

    def input_json(self) -> str:
        return self.raw_input if self.raw_input is not None else json.dumps(dict(self.input or {}))

    def input_object(self) -> dict[str, Any]:
        if self.raw_input is None:
            return dict(self.input or {})
        try:
            parsed = json.loads(self.raw_input)
        except ValueError:
            return {RAW_INPUT_KEY: self.raw_input}
        return parsed if isinstance(parsed, dict) else {RAW_INPUT_KEY: self.raw_input}


StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "pause_turn"]


@dataclass(frozen=True)
class Reply:
    """A successful assistant message; build it with the class methods."""

    content: tuple[TextOut | ToolUseOut, ...]
    stop_reason: StopReason = "end_turn"
    output_tokens: int | None = None

    @classmethod
    def text(cls, text: str, *, stop_reason: StopReason = "end_turn") -> Reply:
        return cls((TextOut(text),), stop_reason)

    @classmethod
    def tool_use(
        cls, name: str, input: Mapping[str, Any], *, text: str | None = None, tool_id: str | None = None
    ) -> Reply:
        """One tool call (stop_reason tool_use), optionally after a text block."""
        return cls._with_tools([ToolUseOut(name, input, tool_id=tool_id)], text)

    @classmethod
    def tool_uses(cls, *calls: tuple[str, Mapping[str, Any]], text: str | None = None) -> Reply:
        """Several tool calls in one reply, optionally after a text block."""
        return cls._with_tools([ToolUseOut(name, input) for name, input in calls], text)

    @classmethod
    def tool_use_raw(cls, name: str, raw_json: str, *, text: str | None = None, tool_id: str | None = None) -> Reply:
        """A tool call whose input is the given (typically malformed) JSON text; see the module docstring."""
        return cls._with_tools([ToolUseOut(name, raw_input=raw_json, tool_id=tool_id)], text)

    @classmethod
    def max_tokens(cls, partial_text: str) -> Reply:
        """A reply cut off by max_tokens: stop_reason max_tokens, output_tokens = the request's max_tokens."""
        return cls((TextOut(partial_text),), "max_tokens")

    @classmethod
    def _with_tools(cls, tools: list[ToolUseOut], text: str | None) -> Reply:
        leading: list[TextOut | ToolUseOut] = [TextOut(text)] if text else []
        return cls((*leading, *tools), "tool_use")

    def count_output_tokens(self, max_tokens: int) -> int:
        if self.output_tokens is not None:
            return self.output_tokens
        if self.stop_reason == "max_tokens":
            return max_tokens
        sizes = [len(b.text) if isinstance(b, TextOut) else len(b.input_json()) for b in self.content]
        return max(1, sum(math.ceil(size / 4) for size in sizes))


FaultKind = Literal["status", "delay", "hang", "stream_error"]


@dataclass(frozen=True)
class Fault:
    """An injected failure; build it with the class methods."""

    kind: FaultKind
    status_code: int = 0
    error_type: str = ""
    message: str = ""
    retry_after: float | None = None
    should_retry: bool | None = None
    seconds: float = 0.0
    then: Reply | Fault | None = None

    @classmethod
    def status(
        cls,
        status_code: int,
        *,
        retry_after: float | None = FAST_RETRY_AFTER,
        message: str | None = None,
        error_type: str | None = None,
        should_retry: bool | None = None,
    ) -> Fault:
        """An error response with Anthropic's error body; 429 rate_limit_error, 529 overloaded_error, 500 api_error.

        retry_after (seconds) is sent as ``retry-after-ms`` (which the SDK prefers) and as an integer
        ``retry-after`` (rounded up, as the real API sends it); None sends neither. should_retry sets
        ``x-should-retry: true|false``, which overrides the SDK's own choice.
        """
        kind = error_type or error_type_for(status_code)
        text = message or DEFAULT_MESSAGES.get(kind, f"stub fault {status_code}")
        return cls("status", status_code, kind, text, retry_after, should_retry)

    @classmethod
    def delay(cls, seconds: float, then: Reply | Fault | None = None) -> Fault:
        """Wait (real time) before answering with ``then``, or with the next scripted item when then is None."""
        return cls("delay", seconds=seconds, then=then)

    @classmethod
    def hang(cls) -> Fault:
        """Never answer: hold the connection until the client gives up (or the stub closes / hang_limit passes)."""
        return cls("hang")

    @classmethod
    def stream_error(cls, error_type: str = "overloaded_error", message: str | None = None) -> Fault:
        """Streaming: HTTP 200, message_start, then an SSE ``error`` event. Non-streaming: the matching status."""
        status = STATUS_BY_ERROR_TYPE.get(error_type, 500)
        text = message or DEFAULT_MESSAGES.get(error_type, error_type)
        return cls("stream_error", status, error_type, text, FAST_RETRY_AFTER)


def render_message(
    reply: Reply, *, model: str, message_id: str, new_tool_id: Callable[[], str], usage: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str | None]]:
    """The non-streaming message object, plus each block's streamed input JSON (None for text blocks)."""
    content: list[dict[str, Any]] = []
    streamed: list[str | None] = []
    for block in reply.content:
        if isinstance(block, TextOut):
            content.append({"type": "text", "text": block.text})
            streamed.append(None)
        else:
            tool_id = block.tool_id or new_tool_id()
            content.append({"type": "tool_use", "id": tool_id, "name": block.name, "input": block.input_object()})
            streamed.append(block.input_json())
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": dict(usage),
    }
    return message, streamed


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _chunks(text: str) -> list[str]:
    return [text[i : i + STREAM_CHUNK_CHARS] for i in range(0, len(text), STREAM_CHUNK_CHARS)]


def message_start_event(message: Mapping[str, Any]) -> bytes:
    usage = {**message["usage"], "output_tokens": 1}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    return sse("message_start", {"type": "message_start", "message": start})


def stream_events(message: Mapping[str, Any], streamed: list[str | None]) -> Iterator[bytes]:
    """The SSE events of a streamed reply, in the API's order and shapes."""
    yield message_start_event(message)
    yield sse("ping", {"type": "ping"})
    for index, (block, input_json) in enumerate(zip(message["content"], streamed, strict=True)):
        if input_json is None:
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
            for piece in _chunks(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            for piece in ["", *_chunks(input_json)]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
    usage = {
        key: message["usage"][key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    end: dict[str, Any] = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield sse("message_delta", {"type": "message_delta", "delta": end, "usage": usage})
    yield sse("message_stop", {"type": "message_stop"})
