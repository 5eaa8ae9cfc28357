"""The benchmark's independent prompt-cache checker (bench/cache_checker.py) on hand-built request sequences.

The checker is the oracle of the cache benchmark, so each of ARCHITECTURE.md §7's rules has a case here: prompt
order, breakpoints (at most 4), the minimum length, the 5-minute lifetime, the lookback that lets a moving
breakpoint read what the previous turn wrote, and plain input after the last breakpoint. Token counts are set
per block (a ``tokens`` field read by the counter below) so every expected figure is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.cache_checker import (
    MAX_BREAKPOINTS,
    CacheChecker,
    CacheRuleError,
    canonical_json,
    check_requests,
    estimate_tokens,
    prompt_blocks,
)

MODEL = "claude-test"
EPH: dict[str, Any] = {"type": "ephemeral"}


def counter(block: Mapping[str, Any]) -> int:
    return int(block["tokens"])


def text(name: str, tokens: int, *, mark: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": name, "tokens": tokens}
    if mark is not None:
        block["cache_control"] = mark
    return block


def tool(name: str, tokens: int, *, mark: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"name": name, "input_schema": {"type": "object"}, "tokens": tokens}
    if mark is not None:
        block["cache_control"] = mark
    return block


def body(
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    system: list[dict[str, Any]] | str | None = None,
    model: str = MODEL,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "max_tokens": 100, "messages": messages, **extra}
    if tools is not None:
        out["tools"] = tools
    if system is not None:
        out["system"] = system
    return out


def checker(minimum: int | Mapping[str, int] = 100, **kw: Any) -> CacheChecker:
    return CacheChecker(minimum, count_tokens=counter, **kw)


def conversation(turns: int) -> list[dict[str, Any]]:
    """Request bodies of a tool-use loop: tools and system marked, the newest message's last block marked."""
    tools = [tool("read", 300), tool("finish", 200, mark=EPH)]
    system = [text("sys", 500, mark=EPH)]
    history: list[dict[str, Any]] = [{"role": "user", "content": [text("task", 50)]}]
    bodies = []
    for turn in range(turns):
        marked = [
            {"role": m["role"], "content": [*m["content"][:-1], {**m["content"][-1], "cache_control": EPH}]}
            if i == len(history) - 1
            else m
            for i, m in enumerate(history)
        ]
        bodies.append(body(marked, tools=tools, system=system))
        history.append({"role": "assistant", "content": [text(f"call {turn}", 20)]})
        history.append({"role": "user", "content": [text(f"result {turn}", 80)]})
    return bodies


# -- token estimate and prompt order ----------------------------------------------------------------------------


def test_the_estimate_is_a_quarter_of_the_canonical_json_without_cache_control() -> None:
    block = {"type": "text", "text": "x" * 40, "cache_control": EPH}
    expected = math.ceil(len(canonical_json({"type": "text", "text": "x" * 40})) / 4)
    assert estimate_tokens(block) == expected
    assert estimate_tokens(block) == estimate_tokens({"text": "x" * 40, "type": "text"})  # key order is irrelevant


def test_the_prompt_is_tools_then_system_then_messages_whatever_the_key_order() -> None:
    request = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [text("a", 1), text("b", 1)]},
            {"role": "user", "content": "go"},
        ],
        "system": "be brief",
        "tools": [tool("t1", 1), tool("t2", 1)],
        "model": MODEL,
    }
    locations = [b.location for b in prompt_blocks(request)]
    assert locations == [
        "tools[0]",
        "tools[1]",
        "system[0]",
        "messages[0].content[0]",
        "messages[1].content[0]",
        "messages[1].content[1]",
        "messages[2].content[0]",
    ]


def test_a_string_system_or_content_is_one_text_block() -> None:
    as_string = prompt_blocks(body([{"role": "user", "content": "hello"}], system="sys"))
    as_list = prompt_blocks(
        body(
            [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
            system=[{"type": "text", "text": "sys"}],
        )
    )
    assert [(b.key, b.tokens) for b in as_string] == [(b.key, b.tokens) for b in as_list]


# -- writes, reads, plain input ---------------------------------------------------------------------------------


def test_first_request_writes_up_to_the_last_breakpoint_and_the_rest_is_plain_input() -> None:
    c = checker()
    v = c.observe(body([{"role": "user", "content": [text("q", 40)]}], system=[text("s", 200, mark=EPH)]), 0.0)
    assert (v.total_tokens, v.read_tokens, v.written_tokens, v.uncached_tokens) == (240, 0, 200, 40)
    assert v.breakpoints == ("system[0]",) and v.read_until is None
    assert any("after the last breakpoint are plain input" in n for n in v.notes)


def test_the_same_prefix_is_read_by_the_next_request() -> None:
    c = checker()
    first = body([{"role": "user", "content": [text("q", 40)]}], system=[text("s", 200, mark=EPH)])
    c.observe(first, 0.0)
    second = body([{"role": "user", "content": [text("other", 60)]}], system=[text("s", 200, mark=EPH)])
    v = c.observe(second, 1.0)
    assert (v.read_tokens, v.written_tokens, v.uncached_tokens) == (200, 0, 60)
    assert v.read_until == "system[0]"


def test_without_breakpoints_everything_is_plain_input() -> None:
    c = checker()
    request = body([{"role": "user", "content": [text("q", 400)]}], system=[text("s", 400)])
    for at in (0.0, 1.0):
        v = c.observe(request, at)
        assert (v.read_tokens, v.written_tokens, v.uncached_tokens) == (0, 0, 800)


def test_a_breakpoint_moving_to_the_newest_message_reads_what_the_previous_turn_wrote() -> None:
    report = check_requests([(b, float(i)) for i, b in enumerate(conversation(4))], min_cacheable_tokens=100,
                            count_tokens=counter)  # fmt: skip
    rows = [(r.total_tokens, r.read_tokens, r.written_tokens, r.uncached_tokens) for r in report.requests]
    # stable prefix 300 + 200 + 500 = 1000, task 50; each turn adds 20 + 80 = 100 tokens
    assert rows == [(1050, 0, 1050, 0), (1150, 1050, 100, 0), (1250, 1150, 100, 0), (1350, 1250, 100, 0)]
    assert report.requests[1].read_until == "messages[0].content[0]"
    assert report.read_share(1) == pytest.approx((1050 + 1150 + 1250) / (1150 + 1250 + 1350))
    assert report.totals(1) == (3750, 3450, 300, 0)


def test_the_lookback_is_limited() -> None:
    tools = [tool("t", 500, mark=EPH)]
    old = [{"role": "user", "content": [text("m0", 50, mark=EPH)]}]
    c = checker(lookback_blocks=3)
    c.observe(body(old, tools=tools), 0.0)
    # the old breakpoint (messages[0]) is 3 blocks before the new one: outside a 3-block window
    grown = [
        {"role": "user", "content": [text("m0", 50)]},
        {"role": "assistant", "content": [text("a", 10), text("b", 10)]},
        {"role": "user", "content": [text("m2", 10, mark=EPH)]},
    ]
    far = c.observe(body(grown, tools=tools), 1.0)
    assert far.read_until == "tools[0]" and (far.read_tokens, far.written_tokens) == (500, 80)
    unlimited = checker(lookback_blocks=None)
    unlimited.observe(body(old, tools=tools), 0.0)
    near = unlimited.observe(body(grown, tools=tools), 1.0)
    assert near.read_until == "messages[0].content[0]" and (near.read_tokens, near.written_tokens) == (550, 30)


def test_a_changed_earlier_block_invalidates_every_later_prefix() -> None:
    c = checker()
    messages = [{"role": "user", "content": [text("q", 300, mark=EPH)]}]
    c.observe(body(messages, tools=[tool("t", 200, mark=EPH)], system=[text("s", 200)]), 0.0)
    changed_system = c.observe(body(messages, tools=[tool("t", 200, mark=EPH)], system=[text("s2", 200)]), 1.0)
    assert changed_system.read_tokens == 200 and changed_system.read_until == "tools[0]"
    changed_tool = c.observe(body(messages, tools=[tool("t-new", 200, mark=EPH)], system=[text("s", 200)]), 2.0)
    assert changed_tool.read_tokens == 0 and changed_tool.written_tokens == 700


def test_the_same_content_under_another_role_or_model_is_another_prefix() -> None:
    c = checker()
    c.observe(body([{"role": "user", "content": [text("x", 300, mark=EPH)]}]), 0.0)
    assert (
        c.observe(body([{"role": "user", "content": [text("x", 300, mark=EPH)]}], model="other"), 1.0).read_tokens == 0
    )
    shifted = [
        {"role": "user", "content": [text("u", 1)]},
        {"role": "assistant", "content": [text("x", 300, mark=EPH)]},
    ]
    assert c.observe(body(shifted), 2.0).read_tokens == 0
    assert c.observe(body([{"role": "user", "content": [text("x", 300, mark=EPH)]}]), 3.0).read_tokens == 300


def test_moving_a_breakpoint_does_not_change_a_prefix() -> None:
    c = checker()
    c.observe(body([{"role": "user", "content": [text("a", 200, mark=EPH), text("b", 200)]}]), 0.0)
    v = c.observe(body([{"role": "user", "content": [text("a", 200), text("b", 200, mark=EPH)]}]), 1.0)
    assert (v.read_tokens, v.written_tokens) == (200, 200)


# -- minimum length ---------------------------------------------------------------------------------------------


def test_below_the_minimum_nothing_is_cached_silently() -> None:
    c = checker(minimum=1024)
    request = body([{"role": "user", "content": [text("q", 1000, mark=EPH)]}])
    first = c.observe(request, 0.0)
    second = c.observe(request, 1.0)
    assert first.error is None and second.error is None
    assert (second.read_tokens, second.written_tokens, second.uncached_tokens) == (0, 0, 1000)
    assert any("below the minimum of 1024" in n for n in first.notes)
    at_minimum = checker(minimum=1000)
    at_minimum.observe(request, 0.0)
    assert at_minimum.observe(request, 1.0).read_tokens == 1000


def test_only_breakpoints_at_or_over_the_minimum_become_entries() -> None:
    c = checker(minimum=500)
    request = body([{"role": "user", "content": [text("a", 300, mark=EPH), text("b", 300, mark=EPH)]}])
    v = c.observe(request, 0.0)
    assert v.written_tokens == 600  # written up to the last breakpoint, which is over the minimum
    shorter = c.observe(body([{"role": "user", "content": [text("a", 300, mark=EPH), text("c", 300)]}]), 1.0)
    assert shorter.read_tokens == 0  # the 300-token prefix was never an entry


def test_the_minimum_is_per_model() -> None:
    c = CacheChecker({"small": 100, "big": 4096}, count_tokens=counter)
    for start, model in ((0.0, "small"), (10.0, "big")):
        request = body([{"role": "user", "content": [text("q", 1000, mark=EPH)]}], model=model)
        c.observe(request, start)
        assert c.observe(request, start + 1).read_tokens == (1000 if model == "small" else 0)
    with pytest.raises(ValueError, match="unknown"):
        c.observe(body([{"role": "user", "content": [text("q", 1, mark=EPH)]}], model="unknown"), 20.0)


# -- lifetime ---------------------------------------------------------------------------------------------------


def test_an_entry_lives_five_minutes() -> None:
    request = body([{"role": "user", "content": [text("q", 300, mark=EPH)]}])
    c = checker()
    c.observe(request, 0.0)
    assert c.observe(request, 299.0).read_tokens == 300
    c = checker()
    c.observe(request, 0.0)
    late = c.observe(request, 301.0)
    assert (late.read_tokens, late.written_tokens) == (0, 300)


def test_a_read_refreshes_the_lifetime_unless_told_not_to() -> None:
    request = body([{"role": "user", "content": [text("q", 300, mark=EPH)]}])
    c = checker()
    for at in (0.0, 200.0, 450.0):
        c.observe(request, at)
    assert c.report().requests[-1].read_tokens == 300
    strict = checker(refresh_on_read=False)
    for at in (0.0, 200.0, 450.0):
        strict.observe(request, at)
    # at 200 the entry is read (not refreshed) and rewritten by no one; at 450 it is 450 s old
    assert strict.report().requests[-1].read_tokens == 0


def test_a_one_hour_breakpoint_lives_an_hour() -> None:
    request = body([{"role": "user", "content": [text("q", 300, mark={"type": "ephemeral", "ttl": "1h"})]}])
    c = checker()
    c.observe(request, 0.0)
    assert c.observe(request, 3000.0).read_tokens == 300
    assert c.observe(request, 6700.0).read_tokens == 0  # 3700 s after the refresh at 3000


def test_requests_are_taken_in_arrival_order() -> None:
    c = checker()
    c.observe(body([{"role": "user", "content": [text("q", 300, mark=EPH)]}]), 10.0)
    with pytest.raises(ValueError, match="arrival order"):
        c.observe(body([{"role": "user", "content": [text("q", 300, mark=EPH)]}]), 9.0)
    first = body([{"role": "user", "content": [text("q", 300, mark=EPH)]}])
    grown = body([{"role": "user", "content": [text("q", 300), text("r", 50, mark=EPH)]}])
    report = check_requests([(grown, 5.0), (first, 1.0)], min_cacheable_tokens=100, count_tokens=counter)
    assert [r.at for r in report.requests] == [1.0, 5.0] and report.requests[1].read_tokens == 300


# -- breakpoint rules -------------------------------------------------------------------------------------------


def five_marks(automatic: bool) -> dict[str, Any]:
    marks = 4 if automatic else 5
    content = [text(f"b{i}", 100, mark=EPH) for i in range(marks)] + [text("tail", 100)]
    extra: dict[str, Any] = {"cache_control": EPH} if automatic else {}
    return body([{"role": "user", "content": content}], **extra)


@pytest.mark.parametrize("automatic", [False, True])
def test_a_fifth_breakpoint_is_an_error_and_touches_nothing(automatic: bool) -> None:
    c = checker()
    bad = c.observe(five_marks(automatic), 0.0)
    assert bad.error is not None and f"at most {MAX_BREAKPOINTS}" in bad.error
    assert (bad.total_tokens, bad.read_tokens, bad.written_tokens) == (bad.uncached_tokens, 0, 0)
    assert bad.total_tokens > 0
    ok = body([{"role": "user", "content": [text(f"b{i}", 100, mark=EPH) for i in range(4)]}])
    after = c.observe(ok, 1.0)
    assert after.error is None and after.read_tokens == 0  # the refused request wrote nothing
    report = c.report()
    assert report.errors == (bad,)
    assert report.totals(0) == (400, 0, 400, 0)  # the refused request counts in no total
    with pytest.raises(CacheRuleError):
        prompt_blocks(five_marks(automatic))


def test_four_breakpoints_are_fine() -> None:
    content = [text(f"b{i}", 100, mark=EPH) for i in range(4)]
    v = checker().observe(body([{"role": "user", "content": content}]), 0.0)
    assert v.error is None and len(v.breakpoints) == 4


def test_automatic_caching_marks_the_last_block() -> None:
    c = checker()
    first = body([{"role": "user", "content": [text("q", 300)]}], cache_control=EPH)
    v = c.observe(first, 0.0)
    assert v.breakpoints == ("messages[0].content[0]",) and v.written_tokens == 300
    grown = body(
        [
            {"role": "user", "content": [text("q", 300)]},
            {"role": "assistant", "content": [text("a", 50)]},
            {"role": "user", "content": [text("r", 50)]},
        ],
        cache_control=EPH,
    )
    w = c.observe(grown, 1.0)
    assert (w.read_tokens, w.written_tokens) == (300, 100)


def test_nested_cache_control_counts_towards_the_limit() -> None:
    nested = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [{"type": "text", "text": "out", "cache_control": EPH}],
        "tokens": 100,
    }
    content = [text(f"b{i}", 100, mark=EPH) for i in range(3)]
    fine = checker().observe(body([{"role": "user", "content": [*content, nested]}]), 0.0)
    assert fine.error is None and fine.breakpoints[-1] == "messages[0].content[3]"
    assert any("nested" in n for n in fine.notes)
    too_many = [*content, text("b3", 100, mark=EPH), nested]
    assert checker().observe(body([{"role": "user", "content": too_many}]), 0.0).error is not None


@pytest.mark.parametrize(
    "marks",
    [
        [{"type": "persistent"}],
        [{"type": "ephemeral", "ttl": "10m"}],
        [EPH, {"type": "ephemeral", "ttl": "1h"}],  # a 1h breakpoint after a 5m one
    ],
)
def test_invalid_cache_control_is_an_error(marks: list[dict[str, Any]]) -> None:
    content = [text(f"b{i}", 100, mark=m) for i, m in enumerate(marks)]
    assert checker().observe(body([{"role": "user", "content": content}]), 0.0).error is not None


def test_one_hour_before_five_minutes_is_fine() -> None:
    content = [text("a", 100, mark={"type": "ephemeral", "ttl": "1h"}), text("b", 100, mark=EPH)]
    assert checker().observe(body([{"role": "user", "content": content}]), 0.0).error is None


# -- invariants -------------------------------------------------------------------------------------------------


block_specs = st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 400), st.booleans()), min_size=1, max_size=8)


@given(st.lists(st.tuples(block_specs, st.floats(0, 400)), min_size=1, max_size=6))
def test_every_token_is_read_written_or_plain_exactly_once(requests: list[tuple[Any, float]]) -> None:
    pairs = []
    for specs, at in requests:
        content = [text(name, tokens, mark=EPH if marked else None) for name, tokens, marked in specs]
        pairs.append((body([{"role": "user", "content": content}]), at))
    report = check_requests(pairs, min_cacheable_tokens=200, count_tokens=counter)
    for v in report.requests:
        assert v.read_tokens + v.written_tokens + v.uncached_tokens == v.total_tokens
        assert min(v.read_tokens, v.written_tokens, v.uncached_tokens) >= 0
        if v.error is None and v.breakpoints:
            assert v.read_tokens == 0 or v.read_tokens >= 200  # nothing below the minimum is ever read
    assert 0.0 <= report.read_share(0) <= 1.0
