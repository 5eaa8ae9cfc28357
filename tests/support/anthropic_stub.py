"""A local Anthropic-compatible Messages API server for tests and benchmarks (ARCHITECTURE.md section 7).

A real HTTP/1.1 server on 127.0.0.1 (stdlib ThreadingHTTPServer, port 0) in a background thread, which the real
anthropic SDK talks to unchanged::

    with AnthropicStub() as stub, anthropic.Anthropic(api_key="test", base_url=stub.url) as client:
        stub.enqueue(Reply.text("hello"), Fault.status(529), Reply.tool_use("read_file", {"path": "a.py"}))
        ...

- ``POST /v1/messages``: JSON or SSE (``"stream": true``) replies; usage follows Anthropic's prompt-caching rules.
- ``POST /v1/messages/count_tokens``: ``{"input_tokens": n}``, counted like ``usage``.
- The next reply comes from the FIFO (``enqueue``), else from ``handler(body)``, else it is a 500 whose message
  starts with "stub: no scripted reply" and which carries ``x-should-retry: false`` (no SDK retries, no hang).
- Invalid requests (see ``validate_request``) are answered 400 invalid_request_error without consuming a reply.
- Every request is recorded in ``stub.requests`` (x-api-key and authorization masked).

API: ``AnthropicStub(clock=..., min_cacheable_tokens=..., default_min_cacheable_tokens=1024,
cache_lookback_blocks=20, hang_limit=30.0)`` with ``start/close`` (or ``with``), ``url``, ``port``,
``client(max_retries=2, timeout=10.0)``, ``enqueue(*items)``, ``set_handler(fn)``, ``queued``, ``requests``,
``message_requests()``, ``count_tokens(body)``, ``set_min_cacheable_tokens(model, n)``, ``cache``
(``clear()``, ``live_entries()``), ``manual_clock``; ``Reply.text/tool_use/tool_uses/tool_use_raw/max_tokens``;
``Fault.status/delay/hang/stream_error``; ``ManualClock``; the ``anthropic_stub`` pytest fixture.

Token counting and caching rules: tests/support/anthropic_stub_prompt.py; reply builders, faults and the wire
format of malformed tool input: tests/support/anthropic_stub_replies.py.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.anthropic_stub_prompt import (
    CacheUsage,
    Clock,
    PromptCache,
    StubRequestError,
    count_input_tokens,
    prompt_units,
    validate_request,
)
from tests.support.anthropic_stub_replies import (
    Fault,
    Reply,
    TextOut,
    ToolUseOut,
    error_body,
    message_start_event,
    render_message,
    sse,
    stream_events,
)

if TYPE_CHECKING:
    import anthropic

__all__ = [
    "AnthropicStub",
    "Fault",
    "ManualClock",
    "RecordedRequest",
    "Reply",
    "StubRequestError",
    "TextOut",
    "ToolUseOut",
    "anthropic_stub",
    "count_input_tokens",
]

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
NO_REPLY_MESSAGE = "stub: no scripted reply (enqueue a Reply or Fault, or set a handler)"
MASKED_HEADERS = frozenset({"x-api-key", "authorization"})

Handler = Callable[[dict[str, Any]], Reply | Fault]


class ManualClock:
    """A clock tests move by hand (``advance``); the stub uses it for arrival times and cache TTLs."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordedRequest:
    """One request the stub received and what it answered (status None: no answer, e.g. a hang)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    at: float  # the stub's clock at arrival
    monotonic: float  # time.monotonic() at arrival, for measuring real delays such as retry backoff
    request_id: str
    stream: bool = False
    status: int | None = None
    outcome: str = "pending"  # reply | error | hang | aborted
    usage: dict[str, Any] | None = None
    response: dict[str, Any] | None = None  # the message object (also when streamed) or the error body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: AnthropicStub


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stalls
        self.server.stub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.stub._track(self.connection, add=False)

    def do_POST(self) -> None:
        self.server.stub._handle(self)

    def do_GET(self) -> None:
        self.server.stub._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""


class AnthropicStub:
    """The stub server; a context manager (start on enter, clean shutdown on exit)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        min_cacheable_tokens: Mapping[str, int] | None = None,
        default_min_cacheable_tokens: int = 1024,
        cache_lookback_blocks: int | None = 20,
        hang_limit: float = 30.0,
    ) -> None:
        self.clock: Clock = clock or time.monotonic
        self.cache = PromptCache(
            self.clock,
            min_cacheable_tokens=min_cacheable_tokens,
            default_min_cacheable_tokens=default_min_cacheable_tokens,
            lookback_blocks=cache_lookback_blocks,
        )
        self.hang_limit = hang_limit
        self.handler: Handler | None = None
        self._queue: collections.deque[Reply | Fault] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> AnthropicStub:
        if self._server is not None:
            raise RuntimeError("stub already started")
        server = _Server(("127.0.0.1", 0), _RequestHandler)
        server.stub = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.name = f"anthropic-stub-{self.port}"
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake hanging or delayed handlers, close every connection and join every thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)
        server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> AnthropicStub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stub not started")
        return int(self._server.server_address[1])

    @property
    def manual_clock(self) -> ManualClock:
        """The clock as a ManualClock (as the ``anthropic_stub`` fixture sets it), to ``advance`` it."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("this stub runs on a real clock")
        return self.clock

    @property
    def url(self) -> str:
        """The base_url to give the SDK (no trailing /v1)."""
        return f"http://127.0.0.1:{self.port}"

    def client(self, *, max_retries: int = 2, timeout: float = 10.0) -> anthropic.Anthropic:
        """A real SDK client pointed at the stub; close it (``with stub.client() as client:``)."""
        import anthropic

        return anthropic.Anthropic(api_key="test", base_url=self.url, max_retries=max_retries, timeout=timeout)

    # ----- scripting and inspection --------------------------------------------------------------------
    def enqueue(self, *items: Reply | Fault) -> None:
        """Append replies/faults to the FIFO that answers POST /v1/messages, one item per request."""
        with self._lock:
            self._queue.extend(items)

    def set_handler(self, handler: Handler | None) -> None:
        """Compute replies from the request body once the FIFO is empty (None: no handler)."""
        self.handler = handler

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == MESSAGES_PATH]

    def set_min_cacheable_tokens(self, model: str, tokens: int) -> None:
        self.cache.min_cacheable_tokens[model] = tokens

    def count_tokens(self, body: Mapping[str, Any]) -> int:
        """What /v1/messages/count_tokens answers for this body, computed locally."""
        return count_input_tokens(body)

    # ----- request handling ----------------------------------------------------------------------------
    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)
        if add and self._closing.is_set():
            _shutdown(connection)

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}_01stub{self._counter:016d}"

    def _handle(self, h: _RequestHandler) -> None:
        path, _, query = h.path.partition("?")
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): ("***" if k.lower() in MASKED_HEADERS else v) for k, v in h.headers.items()}
        record = RecordedRequest(
            h.command, path, query, headers, body, self.clock(), time.monotonic(), self._next_id("req")
        )
        record.stream = isinstance(body, dict) and body.get("stream") is True
        with self._lock:
            self._requests.append(record)
        if h.command == "POST" and path == MESSAGES_PATH:
            self._messages(h, record)
        elif h.command == "POST" and path == COUNT_TOKENS_PATH:
            self._count_tokens(h, record)
        else:
            self._send_error(h, record, 404, "not_found_error", f"stub: no route for {h.command} {path}")

    def _count_tokens(self, h: _RequestHandler, record: RecordedRequest) -> None:
        try:
            body = validate_request(record.body, require_max_tokens=False)
            total = sum(unit.tokens for unit in prompt_units(body))
        except StubRequestError as err:
            self._send_error(h, record, 400, "invalid_request_error", str(err))
            return
        self._send_json(h, record, 200, {"input_tokens": total})
        record.outcome = "reply"

    def _next_item(self, body: dict[str, Any]) -> Reply | Fault | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        handler = self.handler
        if handler is None:
            return None
        try:
            return handler(body)
        except Exception as err:  # a broken handler is a test bug: answer it fast, without SDK retries
            return Fault.status(500, message=f"stub: handler raised {err!r}", retry_after=None, should_retry=False)

    def _messages(self, h: _RequestHandler, record: RecordedRequest) -> None:
        try:
            body = validate_request(record.body, require_max_tokens=True)
            units = prompt_units(body)
        except StubRequestError as err:
            self._send_error(h, record, 400, "invalid_request_error", str(err))
            return
        item = self._next_item(body)
        while isinstance(item, Fault) and item.kind == "delay":
            if self._closing.wait(item.seconds):
                self._abort(h, record, "aborted")
                return
            item = item.then if item.then is not None else self._next_item(body)
        if item is None:
            self._send_error(h, record, 500, "api_error", NO_REPLY_MESSAGE, headers={"x-should-retry": "false"})
        elif isinstance(item, Reply):
            self._send_reply(h, record, body, item, self.cache.account(body["model"], units))
        elif item.kind == "hang":
            self._hang(h, record)
        elif item.kind == "stream_error" and record.stream:
            self._send_stream_error(h, record, body, item, self.cache.account(body["model"], units))
        else:
            self._send_fault(h, record, item)

    def _send_reply(
        self, h: _RequestHandler, record: RecordedRequest, body: dict[str, Any], reply: Reply, usage: CacheUsage
    ) -> None:
        message, streamed = render_message(
            reply,
            model=body["model"],
            message_id=self._next_id("msg"),
            new_tool_id=lambda: self._next_id("toolu"),
            usage=usage.as_usage(reply.count_output_tokens(int(body["max_tokens"]))),
        )
        record.usage, record.response, record.outcome = message["usage"], message, "reply"
        if record.stream:
            self._send_sse(h, record, stream_events(message, streamed))
        else:
            self._send_json(h, record, 200, message)

    def _send_stream_error(
        self, h: _RequestHandler, record: RecordedRequest, body: dict[str, Any], fault: Fault, usage: CacheUsage
    ) -> None:
        message, _ = render_message(
            Reply(()), model=body["model"], message_id=self._next_id("msg"), new_tool_id=str, usage=usage.as_usage(1)
        )
        error = error_body(fault.error_type, fault.message, record.request_id)
        record.usage, record.response, record.outcome = message["usage"], error, "error"
        self._send_sse(h, record, iter([message_start_event(message), sse("error", error)]))

    def _send_fault(self, h: _RequestHandler, record: RecordedRequest, fault: Fault) -> None:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
            headers["retry-after"] = str(math.ceil(fault.retry_after))
        if fault.should_retry is not None:
            headers["x-should-retry"] = "true" if fault.should_retry else "false"
        self._send_error(h, record, fault.status_code, fault.error_type, fault.message, headers=headers)

    def _send_error(
        self,
        h: _RequestHandler,
        record: RecordedRequest,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = error_body(error_type, message, record.request_id)
        record.response, record.outcome = payload, "error"
        self._send_json(h, record, status, payload, headers)

    def _send_json(
        self,
        h: _RequestHandler,
        record: RecordedRequest,
        status: int,
        payload: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        record.status = status
        try:
            h.send_response(status)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            h.send_header("request-id", record.request_id)
            for name, value in (headers or {}).items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            self._abort(h, record, record.outcome)

    def _send_sse(self, h: _RequestHandler, record: RecordedRequest, events: Iterator[bytes]) -> None:
        record.status = 200
        try:
            h.send_response(200)
            h.send_header("content-type", "text/event-stream; charset=utf-8")
            h.send_header("cache-control", "no-cache")
            h.send_header("transfer-encoding", "chunked")
            h.send_header("request-id", record.request_id)
            h.end_headers()
            for event in events:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            self._abort(h, record, "aborted")

    def _hang(self, h: _RequestHandler, record: RecordedRequest) -> None:
        deadline = time.monotonic() + self.hang_limit
        while time.monotonic() < deadline and not self._closing.wait(0.02):
            if _peer_closed(h.connection):
                break
        self._abort(h, record, "hang")

    def _abort(self, h: _RequestHandler, record: RecordedRequest, outcome: str) -> None:
        record.outcome = outcome
        h.close_connection = True


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def _peer_closed(connection: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


@pytest.fixture
def anthropic_stub() -> Iterator[AnthropicStub]:
    """A started stub on a ManualClock (``stub.manual_clock.advance(s)`` moves cache TTLs), closed after the test."""
    with AnthropicStub(clock=ManualClock()) as stub:
        yield stub
