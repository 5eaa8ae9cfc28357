"""ConveyorLM: a ``dspy.BaseLM`` whose every call is one :class:`AgentRequest` answered by an AgentBackend.

DSPy programs (the judgment roles) run on this LM, so their calls get what every Conveyor agent call gets:
usage, cost, budget, logs, redaction, replay and the scripted backend (ARCHITECTURE.md §5).

How a DSPy call becomes an AgentRequest
    DSPy's adapter (ChatAdapter / JSONAdapter) renders the signature as OpenAI-style chat messages; DSPy
    3.4 turns them into its canonical ``dspy.lm15.Request`` and hands that to the LM's *engine*. ConveyorLM
    plugs in its own engine (the ``complete(Request) -> Response`` contract that replaces the deprecated
    ``forward()`` plugins in DSPy 3.5), which builds ONE AgentRequest:

    - system messages (and ``developer`` messages) → ``AgentRequest.system``;
    - user/assistant messages → ``inputs["messages"]`` in Anthropic format,
      ``{"role": "user"|"assistant", "content": [{"type": "text", "text": ...}]}``, consecutive messages of
      one role merged so the roles alternate;
    - ``inputs["temperature"]`` / ``inputs["stop"]`` only when DSPy sets them; DSPy's ``max_tokens`` becomes
      ``limits.max_output_tokens``;
    - ``output_schema`` stays None: the backend returns text and DSPy's adapter parses it (the role program
      validates it and runs the repair round, :mod:`conveyor.adapters.agents.roles.base`).

    The AgentResult's ``text`` is the completion. A backend that answers with a typed ``output`` and no text
    (the scripted backend's verdicts) gets it rendered in the active adapter's format, as DSPy's DummyLM does;
    when the binding names the signature's ``output_field`` (the role runners do), the output may be the
    typed value itself (``{decision: approve}``) instead of ``{verdict: {decision: approve}}``.
    Usage maps to DSPy's usage dict (``prompt_tokens`` = all input tokens, with ``cached_tokens`` and
    ``cache_creation_tokens`` as details). A result with an error raises :class:`AgentCallError` carrying
    the AgentResult (DSPy's own wrapping of engine errors is undone, so callers see the ConveyorError).

What is switched off
    DSPy's response cache (``cache=False`` and the engine never stores responses), DSPy's retries
    (``num_retries=0``: retries belong to the backend's SDK), and LiteLLM entirely: a custom engine never
    reaches DSPy's LiteLLM or lm15 provider routes. History is bounded: the LM keeps its last
    ``history_size`` entries (default 8, 0 disables) and writes nothing to DSPy's global or per-module
    histories.

Call metadata: binding
    An AgentRequest needs role, run, ticket, stage, attempt, tier and prompt_version, which DSPy knows
    nothing about. They live in a :class:`CallBinding` attached to the LM. ``lm.bind(**fields)`` returns a
    *bound copy* (same backend, fresh counters and history) with the fields replaced; the original is not
    changed, so one base LM can serve concurrent programs, each with its own bound copy::

        base = ConveyorLM(backend)
        lm = base.bind(role=AgentRole.REVIEWER, run_id=run_id, ticket_id="APP-SEC-001", stage="reviewing",
                       attempt=2, tier=ModelTier.NORMAL, prompt_version=version)
        with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
            program(...)
        lm.calls, lm.usage, lm.cost_usd, lm.last_result   # what this bound copy spent

    Calling an LM that was never bound raises :class:`UnboundLMError`. The role runners
    (:func:`conveyor.adapters.agents.roles.base.run_role`) do the binding for you.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field, fields, replace
from typing import Any

import dspy  # type: ignore[import-untyped]
from dspy.lm15 import (  # type: ignore[import-untyped]
    Message,
    Request,
    Response,
    TextPart,
    ThinkingPart,
    response_to_events,
)
from dspy.lm15 import Usage as LMUsage

from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole, ContextItem, Limits, Usage
from conveyor.domain.errors import ConveyorError
from conveyor.domain.roles import AgentCallError
from conveyor.domain.ticket import ModelTier
from conveyor.ports import AgentBackend

__all__ = [
    "AgentCallError",
    "CallBinding",
    "ConveyorLM",
    "UnboundLMError",
    "UnsupportedMessageError",
    "agent_request_from",
]

DEFAULT_HISTORY_SIZE = 8


class UnboundLMError(ConveyorError):
    """A ConveyorLM was called before ``bind(role=..., run_id=..., stage=..., prompt_version=...)``."""


class UnsupportedMessageError(ConveyorError):
    """DSPy produced a message an AgentRequest cannot carry (tool results, images, audio...)."""


@dataclass(frozen=True)
class CallBinding:
    """The metadata every AgentRequest made by a bound ConveyorLM carries."""

    role: AgentRole
    run_id: str
    stage: str
    prompt_version: str
    ticket_id: str | None = None
    attempt: int = 1
    tier: ModelTier = ModelTier.NORMAL
    base_commit: str | None = None
    context: tuple[ContextItem, ...] = ()
    limits: Limits = field(default_factory=Limits)
    output_field: str | None = None  # the signature's single output field (see _response_from)

    def __post_init__(self) -> None:
        if self.attempt < 1:
            raise ValueError(f"attempt must be at least 1, got {self.attempt}")
        for name in ("run_id", "stage", "prompt_version"):
            if not getattr(self, name):
                raise ValueError(f"CallBinding.{name} must not be empty")


_BINDING_FIELDS = frozenset(f.name for f in fields(CallBinding))
_REQUIRED_FIELDS = ("role", "run_id", "stage", "prompt_version")


class ConveyorLM(dspy.BaseLM):  # type: ignore[misc]
    """A DSPy LM over an AgentBackend. See the module docstring for the mapping and for :meth:`bind`."""

    backend: AgentBackend
    binding: CallBinding | None
    history_size: int
    _lock: threading.Lock
    _calls: int
    _usage: Usage
    _cost_usd: float
    _last_result: AgentResult | None

    def __init__(
        self,
        backend: AgentBackend,
        binding: CallBinding | None = None,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        super().__init__(
            model=f"conveyor/{backend.name}",
            model_type="chat",
            temperature=temperature,
            max_tokens=max_tokens,
            cache=False,
            num_retries=0,
        )
        self.backend = backend
        self.binding = binding
        self.history_size = max(0, history_size)
        self._cache_responses = False  # DSPy's execution layer: never read or write its response cache
        self._attach_engines()
        self._reset_counters()

    # -- binding ------------------------------------------------------------------------------------------
    def bind(self, **changes: Any) -> ConveyorLM:
        """A copy of this LM whose calls carry ``changes`` (fields of :class:`CallBinding`) on top of the
        current binding. The first bind must name role, run_id, stage and prompt_version."""
        unknown = set(changes) - _BINDING_FIELDS
        if unknown:
            raise TypeError(f"bind() got unknown field(s) {sorted(unknown)}; known: {sorted(_BINDING_FIELDS)}")
        if self.binding is not None:
            binding = replace(self.binding, **changes)
        else:
            missing = [name for name in _REQUIRED_FIELDS if changes.get(name) is None]
            if missing:
                raise TypeError(f"the first bind() must name {', '.join(missing)}")
            binding = CallBinding(**changes)
        bound: ConveyorLM = self.copy()
        bound.binding = binding
        return bound

    # -- what this LM (copy) has spent ---------------------------------------------------------------------
    @property
    def calls(self) -> int:
        return self._calls

    @property
    def usage(self) -> Usage:
        return self._usage

    @property
    def cost_usd(self) -> float:
        return self._cost_usd

    @property
    def last_result(self) -> AgentResult | None:
        return self._last_result

    def record(self, result: AgentResult) -> None:
        with self._lock:
            self._calls += 1
            self._last_result = result
            if result.replayed:  # a replayed call was paid for by the run that made it: not spent again
                return
            self._usage = self._usage + result.usage
            self._cost_usd = round(self._cost_usd + result.cost_usd, 6)

    # -- DSPy plumbing -------------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            _reraise_conveyor_error(exc)
            raise

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().acall(*args, **kwargs)
        except Exception as exc:
            _reraise_conveyor_error(exc)
            raise

    def copy(self, **kwargs: Any) -> ConveyorLM:
        """DSPy's copy (isolated history and kwargs), with this LM's own engines and fresh counters."""
        copied: ConveyorLM = super().copy(**kwargs)
        copied._attach_engines()
        copied._reset_counters()
        return copied

    def update_history(self, entry: dict[str, Any]) -> None:
        """Keep the last ``history_size`` entries here only (not in DSPy's global or module histories)."""
        if self.history_size == 0:
            return
        with self._lock:
            self.history.append(entry)
            del self.history[: -self.history_size]

    def dump_state(self) -> dict[str, Any]:
        raise TypeError(
            "ConveyorLM is a runtime object over an AgentBackend and is not saved with a program: "
            "pass it with dspy.context(lm=...) instead of assigning it to a predictor"
        )

    def _attach_engines(self) -> None:
        engine = _ConveyorEngine(self)
        self._engine_spec = engine
        self._async_engine_spec = _AsyncConveyorEngine(engine)

    def _reset_counters(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self._usage = Usage()
        self._cost_usd = 0.0
        self._last_result = None


def _reraise_conveyor_error(exc: BaseException) -> None:
    """DSPy wraps engine exceptions (LMUnexpectedError from ours): raise the ConveyorError inside instead."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConveyorError):
            if current is exc:
                return
            raise current from None
        seen.add(id(current))
        current = current.__cause__


class _ConveyorEngine:
    """DSPy engine contract (dspy.clients.engines.base.Engine): one Request in, one Response out."""

    def __init__(self, owner: ConveyorLM) -> None:
        self.owner = owner

    def complete(self, request: Any) -> Any:
        lm = self.owner
        if lm.binding is None:
            raise UnboundLMError(
                "ConveyorLM is not bound: call lm.bind(role=..., run_id=..., stage=..., prompt_version=...) "
                "and use the bound copy"
            )
        agent_request = agent_request_from(request, lm.binding)
        result = lm.backend.run(agent_request)
        lm.record(result)
        if not result.ok:
            raise AgentCallError(result)
        return _response_from(result, default_model=lm.model, output_field=lm.binding.output_field)

    def stream(self, request: Any) -> Any:
        return response_to_events(self.complete(request))

    def close(self) -> None:
        return None


class _AsyncConveyorEngine:
    def __init__(self, sync: _ConveyorEngine) -> None:
        self.sync = sync

    async def complete(self, request: Any) -> Any:
        return await asyncio.to_thread(self.sync.complete, request)

    async def stream(self, request: Any) -> Any:
        response = await self.complete(request)
        for event in response_to_events(response):
            yield event

    async def aclose(self) -> None:
        return None


# -- conversions (pure functions of DSPy's canonical request) ------------------------------------------------


def agent_request_from(request: Any, binding: CallBinding) -> AgentRequest:
    """The AgentRequest for one DSPy ``lm15.Request`` under ``binding``."""
    if not isinstance(request, Request):
        raise TypeError(f"expected a dspy.lm15.Request, got {type(request).__name__}")
    system_parts: list[str] = []
    if request.system is not None:
        system_parts.append(request.system if isinstance(request.system, str) else _text_of(request.system, "system"))
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "developer":
            system_parts.append(_text_of(message.parts, "developer message"))
            continue
        if message.role not in ("user", "assistant"):
            raise UnsupportedMessageError(f"a {message.role!r} message cannot be sent through an AgentRequest")
        text = _text_of(message.parts, f"{message.role} message")
        if messages and messages[-1]["role"] == message.role:
            messages[-1]["content"].append({"type": "text", "text": text})
        else:
            messages.append({"role": message.role, "content": [{"type": "text", "text": text}]})
    inputs: dict[str, Any] = {"messages": messages}
    config = request.config
    if config.temperature is not None:
        inputs["temperature"] = config.temperature
    if config.stop:
        inputs["stop"] = list(config.stop)
    limits = binding.limits
    if config.max_tokens is not None:
        limits = limits.model_copy(update={"max_output_tokens": config.max_tokens})
    return AgentRequest(
        role=binding.role,
        run_id=binding.run_id,
        ticket_id=binding.ticket_id,
        stage=binding.stage,
        attempt=binding.attempt,
        tier=binding.tier,
        prompt_version=binding.prompt_version,
        base_commit=binding.base_commit,
        system="\n\n".join(part for part in system_parts if part),
        inputs=inputs,
        context=binding.context,
        limits=limits,
    )


def _text_of(parts: Any, where: str) -> str:
    texts: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ThinkingPart):
            continue  # a demo's reasoning trace is not part of what we send
        else:
            raise UnsupportedMessageError(f"{where}: {type(part).__name__} content is not supported")
    return "\n".join(texts)


def _response_from(result: AgentResult, *, default_model: str, output_field: str | None = None) -> Any:
    text = result.text
    if not text and result.output is not None:
        output = result.output
        if output_field is not None and output_field not in output:
            output = {output_field: output}  # a script may give the typed value itself, e.g. {decision: approve}
        text = _render_output(output)
    usage = result.usage
    lm_usage = LMUsage(
        input_tokens=usage.total_input,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    return Response(
        id=None,
        model=result.model or default_model,
        message=Message.assistant([TextPart(text)]),
        finish_reason="length" if result.stop_reason == "max_tokens" else "stop",
        usage=lm_usage,
        provider_data={"backend": result.backend, "cost_usd": result.cost_usd, "replayed": result.replayed},
    )


def _render_output(output: dict[str, Any]) -> str:
    """A typed output rendered as the active adapter expects its fields (as DSPy's DummyLM does)."""
    from dspy.adapters.chat_adapter import FieldInfoWithName  # type: ignore[import-untyped]

    adapter = dspy.settings.adapter or dspy.ChatAdapter()
    fields_with_values = {
        FieldInfoWithName(name=name, info=dspy.OutputField()): value for name, value in output.items()
    }
    try:
        rendered: str = adapter.format_field_with_value(fields_with_values, role="assistant")
    except TypeError:  # ChatAdapter's signature has no role
        rendered = adapter.format_field_with_value(fields_with_values)
    return rendered
