"""The anthropic backend: Claude through the Messages API (used when ANTHROPIC_API_KEY is set).

Judgment calls (planner, reviewer, ...) are one request — plus one repair round when a typed output does
not validate. The implementer is a tool-use loop (:mod:`conveyor.adapters.agents.anthropic_loop`).
Transient HTTP errors (429, 529, 5xx, timeouts) are retried by the SDK itself; what is left when its
retries run out becomes an ``error_kind``, never an exception, and never a hang (every request has a timeout).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import jsonschema

from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole, ErrorKind, Usage, WorkerStatus, used_tokens_text
from conveyor.domain.models import ModelTable
from conveyor.ports import Sandbox

BACKEND = "anthropic"
_JSON_BLOCK = re.compile(r"```(?:json)?\s*(?P<body>\{.*\})\s*```", re.DOTALL)


def error_kind_of(exc: Exception) -> ErrorKind:
    """Map what the SDK raises after its own retries to Conveyor's error kinds."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, anthropic.APIConnectionError):
        return ErrorKind.CONNECTION
    if isinstance(exc, anthropic.RateLimitError):
        return ErrorKind.RATE_LIMITED
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return ErrorKind.AUTH
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 529:
            return ErrorKind.OVERLOADED
        if exc.status_code >= 500:
            return ErrorKind.SERVER_ERROR
        return ErrorKind.BAD_REQUEST
    return ErrorKind.CONNECTION


def usage_of(response: Any) -> Usage:
    u = response.usage
    return Usage(
        input_tokens=u.input_tokens or 0,
        cache_write_tokens=getattr(u, "cache_creation_input_tokens", None) or 0,
        cache_read_tokens=getattr(u, "cache_read_input_tokens", None) or 0,
        output_tokens=u.output_tokens or 0,
        requests=1,
    )


def text_of(content: Sequence[Any]) -> str:
    return "".join(block.text for block in content if getattr(block, "type", None) == "text")


def parse_json_output(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON object in ``text`` (bare, or in a ```json fence), validated against ``schema``.

    Raises ValueError with a message meant for the model's repair round.
    """
    match = _JSON_BLOCK.search(text)
    body = match["body"] if match else text.strip()
    if not match and "{" in body:
        body = body[body.index("{") : body.rindex("}") + 1]
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ValueError("the answer must be one JSON object")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        details = "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:10])
        raise ValueError(f"the answer does not match the required schema: {details}")
    return data


@dataclass
class CallState:
    """What one call has spent so far; the tool loop checks its limits against it."""

    started: float
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str = ""
    stop_reason: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class AnthropicBackend:
    """AgentBackend over the real anthropic SDK."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        models: ModelTable | None = None,
        sandbox: Sandbox | None = None,
        allowed_commands: Sequence[Sequence[str]] = (),
        command_timeout_s: float = 300.0,
        max_retries: int = 4,
        timeout_s: float = 600.0,
        repo_map_tokens: int = 2000,
        monotonic: Callable[[], float] = time.monotonic,
        author_name: str = "Conveyor",
        author_email: str = "conveyor@localhost",
    ) -> None:
        self.client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_s
        )
        self.models = models or ModelTable()
        self.sandbox = sandbox
        self.allowed_commands = [list(prefix) for prefix in allowed_commands]
        self.command_timeout_s = command_timeout_s
        self.repo_map_tokens = repo_map_tokens
        self.monotonic = monotonic
        self.author = (author_name, author_email)
        self._transcripts: dict[str, list[dict[str, Any]]] = {}

    def pop_transcript(self, request: AgentRequest) -> list[dict[str, Any]] | None:
        """The messages of the call that answered ``request``, handed once to the call log."""
        return self._transcripts.pop(request.replay_key(), None)

    @property
    def name(self) -> str:
        return BACKEND

    # -- shared plumbing ------------------------------------------------------------------------------
    def send(self, request: AgentRequest, state: CallState, **kwargs: Any) -> Any:
        """One Messages API request; usage and cost are added to ``state``. SDK errors propagate."""
        spec = self.models.spec(request.tier)
        response = self.client.messages.create(model=spec.model, max_tokens=request.limits.max_output_tokens, **kwargs)
        usage = usage_of(response)
        state.usage = state.usage + usage
        state.cost_usd = round(
            state.cost_usd
            + self.models.prices().cost_usd(
                request.tier,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                cache_read_tokens=usage.cache_read_tokens,
            ),
            6,
        )
        state.model = response.model
        state.stop_reason = response.stop_reason
        return response

    def result(
        self,
        request: AgentRequest,
        state: CallState,
        *,
        status: WorkerStatus,
        error: ErrorKind | None = None,
        detail: str = "",
        output: dict[str, Any] | None = None,
        text: str = "",
        notes: str = "",
        commit_sha: str | None = None,
    ) -> AgentResult:
        warnings = "; ".join(state.warnings)
        if state.transcript:
            self._transcripts[request.replay_key()] = state.transcript
        return AgentResult(
            task_id=request.ticket_id or request.role.value,
            status=status,
            used=used_tokens_text(state.usage),
            commit_sha=commit_sha,
            notes="\n".join(part for part in (notes, f"warnings: {warnings}" if warnings else "") if part),
            output=output,
            text=text,
            usage=state.usage,
            cost_usd=state.cost_usd,
            model=state.model or self.models.spec(request.tier).model,
            backend=BACKEND,
            stop_reason=state.stop_reason,
            error_kind=error,
            error_detail=detail,
            duration_s=max(0.0, self.monotonic() - state.started),
        )

    # -- the port -------------------------------------------------------------------------------------
    def run(self, request: AgentRequest) -> AgentResult:
        state = CallState(started=self.monotonic())
        try:
            if request.role is AgentRole.IMPLEMENTER and request.tools:
                from conveyor.adapters.agents.anthropic_loop import run_tool_loop

                return run_tool_loop(self, request, state)
            return self._complete(request, state)
        except anthropic.APIError as exc:
            return self.result(request, state, status=WorkerStatus.FAILED, error=error_kind_of(exc), detail=str(exc))

    def _complete(self, request: AgentRequest, state: CallState) -> AgentResult:
        messages: list[dict[str, Any]] = [dict(m) for m in request.inputs.get("messages", [])]
        if not messages:
            messages = [{"role": "user", "content": json.dumps(request.inputs, sort_keys=True)}]
        system: list[dict[str, Any]] = []
        if request.system:
            system = [{"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}]
        kwargs: dict[str, Any] = {"messages": messages}
        if system:
            kwargs["system"] = system
        # Sampling options DSPy (or another caller) asks for travel with the request.
        if isinstance(request.inputs.get("temperature"), int | float):
            kwargs["temperature"] = request.inputs["temperature"]
        stop = request.inputs.get("stop")
        if stop:
            kwargs["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        response = self.send(request, state, **kwargs)
        text = text_of(response.content)
        state.transcript = [*messages, {"role": "assistant", "content": text}]
        if request.output_schema is None:
            return self.result(request, state, status=WorkerStatus.SUCCESS, text=text)
        try:
            return self.result(
                request,
                state,
                status=WorkerStatus.SUCCESS,
                text=text,
                output=parse_json_output(text, request.output_schema),
            )
        except ValueError as first:
            # One repair round that carries the validation error, then a clean failure (ARCHITECTURE.md §5).
            repair = [
                *messages,
                {"role": "assistant", "content": text or "(empty)"},
                {
                    "role": "user",
                    "content": f"Your answer could not be used: {first}. Reply with the corrected JSON object only.",
                },
            ]
            kwargs["messages"] = repair
            response = self.send(request, state, **kwargs)
            text = text_of(response.content)
            state.transcript = [*repair, {"role": "assistant", "content": text}]
            try:
                output = parse_json_output(text, request.output_schema)
            except ValueError as second:
                return self.result(
                    request,
                    state,
                    status=WorkerStatus.FAILED,
                    error=ErrorKind.MALFORMED_OUTPUT,
                    detail=str(second),
                    text=text,
                )
            return self.result(request, state, status=WorkerStatus.SUCCESS, text=text, output=output)
