"""An independent checker of prompt caching: what a sequence of Messages API requests reads from the cache.

Given the request bodies a backend actually sent and their arrival times, the checker replays ARCHITECTURE.md §7's
caching rules over them and says, per request, how many input tokens a cache following those rules would read,
write, or bill as plain input. It shares no code with the stub server (tests/support/anthropic_stub_prompt.py),
so the benchmark can compare the two: the checker is the oracle, the stub's ``usage`` report is the thing checked.

The rules, as implemented here:

- **Prompt order.** The prompt is a sequence of blocks: every tool definition, then every system block (a plain
  string ``system`` is one text block), then every content block of every message in order (a plain string
  ``content`` is one text block).
- **Breakpoints.** A block carrying ``cache_control`` is a breakpoint: the prefix ending with it may be cached.
  A top-level ``cache_control`` on the request (automatic caching) puts a breakpoint on the last block unless it
  already has one. ``cache_control`` nested inside a block (e.g. inside a ``tool_result``'s content) counts
  towards the limit and is treated as a breakpoint at the end of its enclosing block (an approximation, noted on
  the request). More than :data:`MAX_BREAKPOINTS` is an error (the API answers 400), and so is a ``cache_control``
  whose type is not ``ephemeral``, a ``ttl`` other than ``5m``/``1h``, or a ``1h`` breakpoint after a ``5m`` one.
  A request with an error is reported with its error, leaves the cache untouched and counts in no share.
- **Minimum length.** A prefix shorter than the model's minimum cacheable length (a parameter) is never cached,
  silently.
- **Writes.** Every breakpoint prefix at least the minimum long becomes a cache entry of its request's model,
  alive for its TTL (5 minutes by default, 1 hour for ``ttl: "1h"``) from the request's arrival. The request is
  billed as *written* for the tokens after what it read, up to and including its last breakpoint, when that
  prefix is at least the minimum.
- **Reads.** For each breakpoint, the checker looks for a live entry whose prefix ends at the breakpoint or at one
  of the ``lookback_blocks - 1`` blocks before it (the API's lookback, which is what lets a breakpoint that moves
  to the newest message each turn find what the previous turn wrote); the longest such prefix over all
  breakpoints is *read*. A prefix is identical only if every block before it is identical (canonical JSON without
  ``cache_control``, in the same section, message index and role) and the model is the same. A read refreshes
  the entry's lifetime (``refresh_on_read``, as the API does).
- **Plain input.** Tokens after the last breakpoint, and everything of a request whose prefixes are all below the
  minimum, are *uncached*.
- **Time.** Requests are processed in arrival order; an entry written by a request is visible to every later
  one (the checker assumes sequential requests: it does not model a request arriving before an earlier one's
  response).

Token counting is an estimate of its own: ``ceil(len(canonical JSON of the block without cache_control) / 4)``
per block, with no per-message overhead. It need not equal the API's (or the stub's); shares computed with it
are consistent, and ``count_tokens`` takes another counter.

Public API: :func:`check_requests`, :class:`CacheChecker` (``observe``, ``report``, ``reset``,
``minimum_for``), :class:`CacheReport` (``requests``, ``errors``, ``totals``, ``read_share``),
:class:`RequestVerdict`, :func:`prompt_blocks`, :class:`PromptBlock`, :class:`CacheRuleError`,
:func:`estimate_tokens`, :func:`canonical_json`, :data:`MAX_BREAKPOINTS`, :data:`TTL_SECONDS`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_LOOKBACK_BLOCKS",
    "MAX_BREAKPOINTS",
    "TTL_SECONDS",
    "CacheChecker",
    "CacheReport",
    "CacheRuleError",
    "PromptBlock",
    "RequestVerdict",
    "TokenCounter",
    "canonical_json",
    "check_requests",
    "estimate_tokens",
    "prompt_blocks",
]

MAX_BREAKPOINTS = 4
TTL_SECONDS: Mapping[str, float] = {"5m": 300.0, "1h": 3600.0}
DEFAULT_LOOKBACK_BLOCKS = 20

TokenCounter = Callable[[Mapping[str, Any]], int]


class CacheRuleError(ValueError):
    """A request the API would refuse (400 invalid_request_error) because of its cache_control."""


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _bare(block: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in block.items() if key != "cache_control"}


def estimate_tokens(block: Mapping[str, Any]) -> int:
    """The checker's own token estimate of one block: ceil(chars / 4) of its canonical JSON sans cache_control."""
    return math.ceil(len(canonical_json(_bare(block))) / 4)


@dataclass(frozen=True)
class PromptBlock:
    """One block of the prompt, in tools -> system -> messages order."""

    location: str  # "tools[2]", "system[0]", "messages[4].content[1]"
    key: str  # identity: section, message index and role, canonical JSON without cache_control
    tokens: int
    ttl: str | None  # "5m" or "1h" when the block is a breakpoint


@dataclass(frozen=True)
class RequestVerdict:
    """What the rules say about one request. ``read + written + uncached == total`` (all 0 but total on error)."""

    index: int  # position in arrival order, 0-based
    at: float  # arrival time (seconds, any epoch)
    model: str
    blocks: int
    total_tokens: int
    read_tokens: int
    written_tokens: int
    uncached_tokens: int
    breakpoints: tuple[str, ...]  # locations of the breakpoints, in prompt order
    read_until: str | None  # location of the last block of the prefix read, None when nothing was read
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def read_share(self) -> float:
        return self.read_tokens / self.total_tokens if self.total_tokens and self.error is None else 0.0


@dataclass(frozen=True)
class CacheReport:
    requests: tuple[RequestVerdict, ...]

    @property
    def errors(self) -> tuple[RequestVerdict, ...]:
        return tuple(r for r in self.requests if r.error is not None)

    def totals(self, start: int = 0) -> tuple[int, int, int, int]:
        """(total, read, written, uncached) input tokens over requests[start:], requests with an error left out."""
        counted = [r for r in self.requests[start:] if r.error is None]
        return (
            sum(r.total_tokens for r in counted),
            sum(r.read_tokens for r in counted),
            sum(r.written_tokens for r in counted),
            sum(r.uncached_tokens for r in counted),
        )

    def read_share(self, start: int = 1) -> float:
        """Share of input tokens read from the cache over requests[start:] (default: after the first request)."""
        total, read, _, _ = self.totals(start)
        return read / total if total else 0.0


def _ttl_of(cache_control: object, where: str) -> str:
    if not isinstance(cache_control, Mapping) or cache_control.get("type") != "ephemeral":
        raise CacheRuleError(f"{where}.cache_control: type must be 'ephemeral'")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise CacheRuleError(f"{where}.cache_control.ttl: must be '5m' or '1h', not {ttl!r}")
    return str(ttl)


def _as_blocks(content: object) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, Mapping)]
    return []


def _nested_ttls(block: Mapping[str, Any], where: str) -> list[str]:
    """TTLs of cache_control marks inside a block's own content (e.g. a tool_result's text blocks)."""
    inner = block.get("content")
    if not isinstance(inner, list):
        return []
    found = []
    for j, item in enumerate(inner):
        if isinstance(item, Mapping) and item.get("cache_control") is not None:
            found.append(_ttl_of(item["cache_control"], f"{where}.content[{j}]"))
    return found


def _sections(body: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(location, identity prefix, block) of every top-level block, in tools -> system -> messages order."""
    sections: list[tuple[str, str, Mapping[str, Any]]] = []
    for i, tool in enumerate(_as_blocks(body.get("tools") or [])):
        sections.append((f"tools[{i}]", "tools", tool))
    for i, block in enumerate(_as_blocks(body.get("system") or [])):
        sections.append((f"system[{i}]", "system", block))
    for m, message in enumerate(body.get("messages") or []):
        if isinstance(message, Mapping):
            for j, block in enumerate(_as_blocks(message.get("content"))):
                sections.append((f"messages[{m}].content[{j}]", f"messages[{m}]:{message.get('role')}", block))
    return sections


def _check_marks(blocks: list[PromptBlock], marks: int) -> None:
    if marks > MAX_BREAKPOINTS:
        raise CacheRuleError(
            f"{marks} cache_control breakpoints; the API allows at most {MAX_BREAKPOINTS} (400 invalid_request_error)"
        )
    seen_5m = False
    for block in blocks:
        if block.ttl == "5m":
            seen_5m = True
        elif block.ttl == "1h" and seen_5m:
            raise CacheRuleError(f"{block.location}: a 1h breakpoint may not follow a 5m one")


def _parse(body: Mapping[str, Any], count_tokens: TokenCounter) -> tuple[list[PromptBlock], list[str]]:
    """(blocks, notes); raises CacheRuleError for cache_control marks the API refuses."""
    blocks: list[PromptBlock] = []
    marks = 0
    notes: list[str] = []
    for location, prefix, block in _sections(body):
        ttls = [] if block.get("cache_control") is None else [_ttl_of(block["cache_control"], location)]
        nested = _nested_ttls(block, location)
        if nested:
            notes.append(f"cache_control nested in {location} taken as a breakpoint at the end of that block")
        marks += len(ttls) + len(nested)
        # The block's own mark wins; of nested marks, the longest TTL (an entry lives as long as its longest mark).
        candidates = ttls or sorted(nested, key=lambda t: TTL_SECONDS[t], reverse=True)
        ttl = candidates[0] if candidates else None
        key = f"{prefix}|{canonical_json(_bare(block))}"
        blocks.append(PromptBlock(location, key, count_tokens(block), ttl))
    automatic = body.get("cache_control")
    if automatic is not None and blocks:
        ttl = _ttl_of(automatic, "cache_control")
        if blocks[-1].ttl is None:
            last = blocks[-1]
            blocks[-1] = PromptBlock(last.location, last.key, last.tokens, ttl)
            marks += 1
            notes.append(f"automatic cache_control: breakpoint on {last.location}")
    _check_marks(blocks, marks)
    return blocks, notes


def prompt_blocks(body: Mapping[str, Any], count_tokens: TokenCounter = estimate_tokens) -> list[PromptBlock]:
    """The request's prompt as blocks with their breakpoints; raises CacheRuleError as the API would."""
    return _parse(body, count_tokens)[0]


def _fallback_total(body: Mapping[str, Any], count_tokens: TokenCounter) -> tuple[int, int]:
    """(blocks, tokens) of a request whose cache_control is invalid, counted without the cache rules."""
    tokens = [count_tokens(block) for block in _as_blocks(body.get("tools") or [])]
    tokens += [count_tokens(block) for block in _as_blocks(body.get("system") or [])]
    for message in body.get("messages") or []:
        if isinstance(message, Mapping):
            tokens += [count_tokens(block) for block in _as_blocks(message.get("content"))]
    return len(tokens), sum(tokens)


@dataclass
class _Entry:
    ttl_seconds: float
    expires_at: float


class CacheChecker:
    """Feeds requests one at a time (``observe``) through a simulated cache; ``report`` gives the verdicts."""

    def __init__(
        self,
        min_cacheable_tokens: int | Mapping[str, int],
        *,
        lookback_blocks: int | None = DEFAULT_LOOKBACK_BLOCKS,
        refresh_on_read: bool = True,
        count_tokens: TokenCounter = estimate_tokens,
    ) -> None:
        """``min_cacheable_tokens``: one minimum for every model, or a minimum per model name (a model missing from
        the mapping is a ValueError). ``lookback_blocks``: how many block positions ending at a breakpoint are
        checked for a live entry (None: all)."""
        if lookback_blocks is not None and lookback_blocks < 1:
            raise ValueError("lookback_blocks must be at least 1 (or None)")
        self.min_cacheable_tokens = min_cacheable_tokens
        self.lookback_blocks = lookback_blocks
        self.refresh_on_read = refresh_on_read
        self.count_tokens = count_tokens
        self._entries: dict[str, _Entry] = {}
        self._verdicts: list[RequestVerdict] = []
        self._last_at: float | None = None

    def minimum_for(self, model: str) -> int:
        if isinstance(self.min_cacheable_tokens, int):
            return self.min_cacheable_tokens
        if model not in self.min_cacheable_tokens:
            raise ValueError(f"no minimum cacheable length given for model {model!r}")
        return self.min_cacheable_tokens[model]

    def reset(self) -> None:
        self._entries.clear()
        self._verdicts.clear()
        self._last_at = None

    def report(self) -> CacheReport:
        return CacheReport(tuple(self._verdicts))

    def observe(self, body: Mapping[str, Any], at: float) -> RequestVerdict:
        """Apply the rules to one request arriving at ``at`` (seconds; never earlier than the previous one)."""
        if self._last_at is not None and at < self._last_at:
            raise ValueError(f"requests must be observed in arrival order ({at} < {self._last_at})")
        self._last_at = at
        model = str(body.get("model", ""))
        index = len(self._verdicts)
        try:
            blocks, notes = _parse(body, self.count_tokens)
        except CacheRuleError as err:
            count, total = _fallback_total(body, self.count_tokens)
            verdict = RequestVerdict(index, at, model, count, total, 0, 0, total, (), None, error=str(err))
            self._verdicts.append(verdict)
            return verdict
        verdict = self._apply(index, at, model, blocks, notes)
        self._verdicts.append(verdict)
        return verdict

    def _apply(self, index: int, at: float, model: str, blocks: list[PromptBlock], notes: list[str]) -> RequestVerdict:
        keys, cumulative = _prefix_chain(model, blocks)
        total = cumulative[-1] if cumulative else 0
        breakpoints = [i for i, block in enumerate(blocks) if block.ttl is not None]
        if not breakpoints:
            notes.append("no breakpoint: everything is plain input")
            return RequestVerdict(index, at, model, len(blocks), total, 0, 0, total, (), None, notes=tuple(notes))
        minimum = self.minimum_for(model)
        self._entries = {key: entry for key, entry in self._entries.items() if entry.expires_at > at}
        read_end = self._longest_read(keys, breakpoints)
        read = cumulative[read_end] if read_end >= 0 else 0
        if read_end >= 0 and self.refresh_on_read:
            entry = self._entries[keys[read_end]]
            entry.expires_at = max(entry.expires_at, at + entry.ttl_seconds)
        last = breakpoints[-1]
        written = 0
        if last > read_end and cumulative[last] >= minimum:
            written = cumulative[last] - read
        elif last > read_end:
            notes.append(
                f"the prefix up to the last breakpoint ({cumulative[last]} tokens) is below the minimum of "
                f"{minimum}: not cached"
            )
        for b in breakpoints:
            existing = self._entries.get(keys[b])
            if b > read_end and cumulative[b] >= minimum:
                # Written by this request (no live entry can lie past what was read: it would have been read).
                ttl_seconds = TTL_SECONDS[blocks[b].ttl or "5m"]
                self._entries[keys[b]] = _Entry(ttl_seconds, at + ttl_seconds)
            elif existing is not None and self.refresh_on_read:
                existing.expires_at = max(existing.expires_at, at + existing.ttl_seconds)
        if total > cumulative[last]:
            notes.append(f"{total - cumulative[last]} tokens after the last breakpoint are plain input")
        return RequestVerdict(
            index,
            at,
            model,
            len(blocks),
            total,
            read,
            written,
            total - read - written,
            tuple(blocks[i].location for i in breakpoints),
            blocks[read_end].location if read_end >= 0 else None,
            notes=tuple(notes),
        )

    def _longest_read(self, keys: list[str], breakpoints: list[int]) -> int:
        """Index of the last block of the longest live prefix found from any breakpoint's lookback; -1: none."""
        read_end = -1
        for b in breakpoints:
            lowest = 0 if self.lookback_blocks is None else max(0, b - self.lookback_blocks + 1)
            for j in range(b, lowest - 1, -1):
                if keys[j] in self._entries:
                    read_end = max(read_end, j)
                    break
        return read_end


def _prefix_chain(model: str, blocks: list[PromptBlock]) -> tuple[list[str], list[int]]:
    """(identity of the prefix ending at each block, its cumulative tokens); identities chain from the model."""
    keys: list[str] = []
    cumulative: list[int] = []
    chain = hashlib.sha256(f"model|{model}".encode()).hexdigest()
    running = 0
    for block in blocks:
        chain = hashlib.sha256(f"{chain}|{block.key}".encode()).hexdigest()
        running += block.tokens
        keys.append(chain)
        cumulative.append(running)
    return keys, cumulative


def check_requests(
    requests: Iterable[tuple[Mapping[str, Any], float]],
    *,
    min_cacheable_tokens: int | Mapping[str, int],
    lookback_blocks: int | None = DEFAULT_LOOKBACK_BLOCKS,
    refresh_on_read: bool = True,
    count_tokens: TokenCounter = estimate_tokens,
) -> CacheReport:
    """Verdicts for (body, arrival time) pairs, taken in arrival order (ties keep their given order)."""
    checker = CacheChecker(
        min_cacheable_tokens,
        lookback_blocks=lookback_blocks,
        refresh_on_read=refresh_on_read,
        count_tokens=count_tokens,
    )
    for body, at in sorted(requests, key=lambda pair: pair[1]):
        checker.observe(body, at)
    return checker.report()
