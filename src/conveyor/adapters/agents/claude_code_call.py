"""One claude-code call's running state: what its sessions streamed, and the usage, cost and limits they add up to.

The cost is Conveyor's (the model table's prices), not the CLI's own figure (that one goes in the transcript).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.adapters.agents.tools import fingerprint
from conveyor.domain.agent import AgentRequest, ErrorKind, Usage
from conveyor.domain.models import ModelTable


class StopError(Exception):
    """Ends the message loop early with an error kind (limits, stuck)."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass
class CallState:
    started: float
    usage_by_message: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: str = ""
    stop_reason: str | None = None
    result: Any = None
    last_text: str = ""
    last_error: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    last_fingerprint: str = ""
    repeats: int = 0
    cli_cost_usd: float = 0.0
    done_usage: Usage = field(default_factory=Usage)  # sessions that ended (their ResultMessage's figures)
    done_cost_usd: float = 0.0
    stderr_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))


# --- limits ------------------------------------------------------------------------------------------------


def count_repeat(request: AgentRequest, state: CallState, block: Mapping[str, Any]) -> None:
    mark = fingerprint(str(block["name"]), block.get("input"))
    state.repeats = state.repeats + 1 if mark == state.last_fingerprint else 1
    state.last_fingerprint = mark
    if state.repeats >= request.limits.stuck_repeats:
        raise StopError(ErrorKind.STUCK, f"the same tool call ({block['name']}) was repeated {state.repeats} times")


def check_limits(models: ModelTable, request: AgentRequest, state: CallState) -> None:
    limits = request.limits
    usage, cost = totals(models, request, state)
    if limits.max_tokens is not None and usage.total >= limits.max_tokens:
        raise StopError(ErrorKind.TOKEN_LIMIT, f"{usage.total} tokens used; the limit is {limits.max_tokens}")
    if limits.max_usd is not None and cost >= limits.max_usd:
        raise StopError(ErrorKind.BUDGET, f"${cost:.4f} spent; the limit is ${limits.max_usd:g}")


# --- usage and cost ----------------------------------------------------------------------------------------


def usage_of(u: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=int(u.get("input_tokens") or 0),
        cache_write_tokens=int(u.get("cache_creation_input_tokens") or 0),
        cache_read_tokens=int(u.get("cache_read_input_tokens") or 0),
        output_tokens=int(u.get("output_tokens") or 0),
    )


def live_usage(models: ModelTable, request: AgentRequest, state: CallState) -> tuple[Usage, float]:
    """Usage and cost of the running session, from its streamed messages (output is only a lower bound)."""
    usage = Usage()
    for u in state.usage_by_message.values():
        usage = usage + usage_of(u)
    usage = usage.model_copy(update={"requests": len(state.usage_by_message)})
    return usage, price(models, models.tier_of(state.model) or request.tier, usage)


def close_session(models: ModelTable, request: AgentRequest, state: CallState, result: Any) -> None:
    """Fold a finished session's figures (its ResultMessage: exact usage, per-model usage) into the call's."""
    live, _ = live_usage(models, request, state)
    usage = usage_of(result.usage) if isinstance(result.usage, dict) else live
    state.done_usage = state.done_usage + usage.model_copy(update={"requests": live.requests})
    by_model = result.model_usage
    if isinstance(by_model, dict) and by_model:
        for model, u in by_model.items():
            per_model = Usage(
                input_tokens=int(u.get("inputTokens") or 0),
                output_tokens=int(u.get("outputTokens") or 0),
                cache_write_tokens=int(u.get("cacheCreationInputTokens") or 0),
                cache_read_tokens=int(u.get("cacheReadInputTokens") or 0),
            )
            state.done_cost_usd += price(models, models.tier_of(model) or request.tier, per_model)
    else:
        state.done_cost_usd += price(models, models.tier_of(state.model) or request.tier, usage)
    state.usage_by_message = {}


def price(models: ModelTable, tier: Any, usage: Usage) -> float:
    return models.prices().cost_usd(
        tier,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_read_tokens=usage.cache_read_tokens,
    )


def totals(models: ModelTable, request: AgentRequest, state: CallState) -> tuple[Usage, float]:
    """The call's usage and cost in USD so far: finished sessions plus the running one."""
    live, live_cost = live_usage(models, request, state)
    return state.done_usage + live, round(state.done_cost_usd + live_cost, 6)
