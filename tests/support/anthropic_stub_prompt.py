"""Request validation, token counting and prompt caching for the Anthropic stub (tests/support/anthropic_stub.py).

Token counting (deterministic; identical blocks always count identically):

- The prompt is the sequence of *units* tools -> system -> messages, each unit one top-level block:
  every tool definition, every system text block (a plain-string ``system`` is one text block), and every
  content block of every message (a plain-string ``content`` is one text block).
- A text block counts ``ceil(len(text) / 4)`` tokens (``len`` in Python characters).
- Any other unit (tool definition, tool_use, tool_result, image, thinking, ...) counts
  ``ceil(len(canonical_json(unit)) / 4)`` where canonical JSON is ``json.dumps(sort_keys=True,
  separators=(",", ":"), ensure_ascii=False)`` of the block with its top-level ``cache_control`` removed.
- No per-message or per-request overhead. ``count_tokens`` returns the sum over all units, which is also
  ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens`` of a reply to the same prompt.

Prompt caching (ARCHITECTURE.md section 7), per model, with an injectable clock:

- Breakpoints are the units that carry ``cache_control`` (tools, system blocks, message content blocks), plus
  the last unit when the request has a top-level ``cache_control`` (automatic caching) and that unit has none
  of its own. More than 4 breakpoints (automatic one included) is a 400 invalid_request_error.
- A unit's identity is its section, message index, role and canonical JSON without ``cache_control``, so moving
  a breakpoint never changes a prefix; a prefix is identified by the hash chain of its units and the model.
- Read: for each breakpoint b, the positions b, b-1, ..., b-(lookback-1) (lookback 20 by default, as the real
  API) are checked for a live cache entry; the longest such prefix is read (``cache_read_input_tokens``) and
  its expiry is refreshed to now + its TTL.
- Write: if the last breakpoint L lies after the read prefix and the prefix ending at L has at least the
  model's minimum cacheable length, the tokens after the read prefix up to and including L are written
  (``cache_creation_input_tokens``, split into ``cache_creation.ephemeral_5m/1h_input_tokens`` by the TTL of
  the breakpoint that closes each segment). Every breakpoint prefix of at least the minimum becomes (or stays)
  a live entry expiring at now + its TTL ("5m" = 300 s default, "1h" = 3600 s; never shortened).
- Everything after the last breakpoint, and everything when the prefix is below the minimum, is plain
  ``input_tokens``; below the minimum nothing is cached and no error is raised.
- Not modelled: invalidation by tool_choice, images or thinking settings; cache_control nested inside
  tool_result content; cache isolation between API keys.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20
TTL_SECONDS: dict[str, float] = {"5m": 300.0, "1h": 3600.0}
FALLBACK_MIN_CACHEABLE_TOKENS = 1024
# Minimum cacheable prompt length by model-name prefix (longest matching prefix wins), from Anthropic's
# prompt-caching documentation; any other model uses FALLBACK_MIN_CACHEABLE_TOKENS.
DEFAULT_MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-opus-4-5": 4096,
    "claude-opus-4-6": 4096,
    "claude-haiku-4-5": 4096,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}

Clock = Callable[[], float]


class StubRequestError(Exception):
    """A request the real API refuses with 400 invalid_request_error; the message is the API's error message."""


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def count_text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class PromptUnit:
    """One top-level block of the prompt, in tools -> system -> messages order."""

    location: str  # "tools.0", "system.1", "messages.2.content.0"
    identity: str
    tokens: int
    cache_ttl: str | None  # "5m" or "1h" when this unit is a cache breakpoint


@dataclass(frozen=True)
class CacheUsage:
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0

    def as_usage(self, output_tokens: int) -> dict[str, Any]:
        """The ``usage`` object of a Messages API response."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }


def _blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def _breakpoint_ttl(cache_control: object, where: str) -> str | None:
    if cache_control is None:
        return None
    if not isinstance(cache_control, dict) or cache_control.get("type") != "ephemeral":
        raise StubRequestError(f"{where}.cache_control.type: Input should be 'ephemeral'")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise StubRequestError(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def _unit(location: str, prefix: str, block: Mapping[str, Any]) -> PromptUnit:
    bare = {key: value for key, value in block.items() if key != "cache_control"}
    text = bare.get("text")
    if bare.get("type") == "text" and isinstance(text, str):
        tokens = count_text_tokens(text)
    else:
        tokens = count_text_tokens(canonical_json(bare))
    ttl = _breakpoint_ttl(block.get("cache_control"), location)
    return PromptUnit(location, f"{prefix}|{canonical_json(bare)}", tokens, ttl)


def prompt_units(body: Mapping[str, Any]) -> list[PromptUnit]:
    """The prompt of a (validated) request as units; raises StubRequestError for bad or too many breakpoints."""
    units: list[PromptUnit] = []
    for i, tool in enumerate(body.get("tools") or []):
        units.append(_unit(f"tools.{i}", "tool", tool))
    for i, block in enumerate(_blocks(body.get("system") or [])):
        units.append(_unit(f"system.{i}", "system", block))
    for m, message in enumerate(body.get("messages") or []):
        role = message.get("role")
        for b, block in enumerate(_blocks(message.get("content"))):
            units.append(_unit(f"messages.{m}.content.{b}", f"message{m}:{role}", block))
    auto_ttl = _breakpoint_ttl(body.get("cache_control"), "cache_control")
    if auto_ttl is not None and units and units[-1].cache_ttl is None:
        last = units[-1]
        units[-1] = PromptUnit(last.location, last.identity, last.tokens, auto_ttl)
    found = sum(1 for unit in units if unit.cache_ttl is not None)
    if found > MAX_BREAKPOINTS:
        raise StubRequestError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
        )
    return units


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """Total input tokens of a request (what /v1/messages/count_tokens answers)."""
    return sum(unit.tokens for unit in prompt_units(body))


def _check_blocks(content: object, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise StubRequestError(f"{where}: Input should be a valid string or list of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise StubRequestError(f"{where}.{j}.type: Field required")


def _check_tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise StubRequestError("tools: Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise StubRequestError(f"tools.{i}.name: Field required")
        if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
            raise StubRequestError(f"tools.{i}.custom.input_schema: Field required")
        if tool["name"] in names:
            raise StubRequestError("tools: Tool names must be unique.")
        names.add(tool["name"])


def _check_tool_pairing(messages: Sequence[Mapping[str, Any]]) -> None:
    previous_tool_uses: list[str] = []
    for i, message in enumerate(messages):
        blocks = _blocks(message.get("content"))
        results = [str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"]
        for j, block in enumerate(blocks):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in previous_tool_uses:
                raise StubRequestError(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message."
                )
        missing = [tool_id for tool_id in previous_tool_uses if tool_id not in results]
        if missing:
            raise StubRequestError(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the "
                "next message."
            )
        previous_tool_uses = [str(b.get("id")) for b in blocks if b.get("type") == "tool_use"]


def validate_request(body: object, *, require_max_tokens: bool) -> dict[str, Any]:
    """Minimal Messages API validation; returns the body as a dict or raises StubRequestError."""
    if not isinstance(body, dict):
        raise StubRequestError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise StubRequestError("model: Field required")
    max_tokens = body.get("max_tokens")
    if require_max_tokens and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise StubRequestError("max_tokens: Field required (an integer >= 1)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise StubRequestError("messages: Field required (a non-empty list)")
    expected = "user"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise StubRequestError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if message["role"] != expected:
            if i == 0:
                raise StubRequestError('messages: first message must use the "user" role')
            raise StubRequestError(
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{message["role"]}" roles in a row'
            )
        expected = "assistant" if expected == "user" else "user"
        _check_blocks(message.get("content"), f"messages.{i}.content")
    system = body.get("system")
    if system is not None:
        _check_blocks(system, "system")
        if any(block.get("type") != "text" for block in _blocks(system)):
            raise StubRequestError("system: system content blocks must be of type 'text'")
    _check_tools(body.get("tools"))
    _check_tool_pairing(messages)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise StubRequestError("stream: Input should be a valid boolean")
    return body


@dataclass
class _Entry:
    ttl_seconds: float
    expires_at: float


class PromptCache:
    """The stub's prompt cache: entries keyed by (model, prefix hash), each with a TTL refreshed on use."""

    def __init__(
        self,
        clock: Clock,
        *,
        min_cacheable_tokens: Mapping[str, int] | None = None,
        default_min_cacheable_tokens: int = FALLBACK_MIN_CACHEABLE_TOKENS,
        lookback_blocks: int | None = LOOKBACK_BLOCKS,
    ) -> None:
        self._clock = clock
        self.min_cacheable_tokens: dict[str, int] = dict(
            DEFAULT_MIN_CACHEABLE_TOKENS if min_cacheable_tokens is None else min_cacheable_tokens
        )
        self.default_min_cacheable_tokens = default_min_cacheable_tokens
        self.lookback_blocks = lookback_blocks
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def min_tokens(self, model: str) -> int:
        """The exact model entry, else the longest model-name prefix entry, else the default."""
        if model in self.min_cacheable_tokens:
            return self.min_cacheable_tokens[model]
        prefixes = [key for key in self.min_cacheable_tokens if model.startswith(key)]
        return self.min_cacheable_tokens[max(prefixes, key=len)] if prefixes else self.default_min_cacheable_tokens

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def live_entries(self) -> int:
        now = self._clock()
        with self._lock:
            return sum(1 for entry in self._entries.values() if entry.expires_at > now)

    def account(self, model: str, units: Sequence[PromptUnit]) -> CacheUsage:
        """Usage of one request: read the longest live prefix, write up to the last breakpoint, update entries."""
        keys: list[str] = []
        cumulative: list[int] = []
        chain = hashlib.sha256(f"model|{model}".encode()).hexdigest()
        running = 0
        for unit in units:
            chain = hashlib.sha256(f"{chain}|{unit.identity}".encode()).hexdigest()
            running += unit.tokens
            keys.append(chain)
            cumulative.append(running)
        breakpoints = [i for i, unit in enumerate(units) if unit.cache_ttl is not None]
        if not breakpoints:
            return CacheUsage(running, 0, 0)
        minimum = self.min_tokens(model)
        lookback = self.lookback_blocks if self.lookback_blocks is not None else len(units)
        now = self._clock()
        with self._lock:
            self._entries = {key: entry for key, entry in self._entries.items() if entry.expires_at > now}
            read_end = -1
            for b in breakpoints:
                for j in range(b, max(b - lookback, -1), -1):
                    if keys[j] in self._entries:
                        read_end = max(read_end, j)
                        break
            read = cumulative[read_end] if read_end >= 0 else 0
            if read_end >= 0:
                entry = self._entries[keys[read_end]]
                entry.expires_at = now + entry.ttl_seconds
            last = breakpoints[-1]
            written = {"5m": 0, "1h": 0}
            if last > read_end and cumulative[last] >= minimum:
                start = read
                for b in breakpoints:
                    if b > read_end:
                        ttl = units[b].cache_ttl or "5m"
                        written[ttl] += cumulative[b] - start
                        start = cumulative[b]
            for b in breakpoints:
                if cumulative[b] >= minimum:
                    ttl_seconds = TTL_SECONDS[units[b].cache_ttl or "5m"]
                    existing = self._entries.get(keys[b])
                    if existing is None or existing.expires_at < now + ttl_seconds:
                        self._entries[keys[b]] = _Entry(ttl_seconds, now + ttl_seconds)
        creation = written["5m"] + written["1h"]
        return CacheUsage(running - read - creation, creation, read, written["5m"], written["1h"])
