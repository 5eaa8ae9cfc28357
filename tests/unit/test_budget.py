"""Budget in USD: nested caps, forecasts, seed 001 Step 3b modes, soft cap, prices."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from conveyor.domain.budget import (
    DEFAULT_PRICES,
    RUN,
    BudgetCaps,
    BudgetLedger,
    BudgetMode,
    CapSource,
    Price,
    PriceTable,
    Scope,
    UsageEntry,
    derive_soft_cap,
    max_workers,
    mode_for,
    open_estimates_usd,
    percent_of_cap,
    role_scope,
    ticket_estimate_usd,
    ticket_scope,
)
from conveyor.domain.ticket import ModelTier, State, Ticket


def entry(ticket_id: str | None, role: str, usd: float, tokens: int = 0) -> UsageEntry:
    return UsageEntry(ticket_id=ticket_id, role=role, usd=usd, tokens=tokens)


def ledger(*entries: UsageEntry, **caps: object) -> BudgetLedger:
    result = BudgetLedger(caps=BudgetCaps.model_validate(caps))
    for e in entries:
        result = result.record(e)
    return result


# -- modes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("projected", "mode"),
    [
        (0.0, BudgetMode.NORMAL),
        (6.99, BudgetMode.NORMAL),
        (7.0, BudgetMode.CONSERVATIVE),  # exactly 70 %: conservative
        (8.0, BudgetMode.CONSERVATIVE),
        (9.0, BudgetMode.CONSERVATIVE),  # exactly 90 %: still conservative
        (9.01, BudgetMode.FROZEN),
        (10.0, BudgetMode.FROZEN),
        (12.0, BudgetMode.FROZEN),
    ],
)
def test_mode_boundaries(projected: float, mode: BudgetMode) -> None:
    assert mode_for(projected, 10.0) is mode


def test_boundaries_survive_binary_fractions() -> None:
    # 0.7 / 1.0 * 100 is 69.99999999999999 in floating point; rounding keeps it at 70 %.
    assert mode_for(0.7, 1.0) is BudgetMode.CONSERVATIVE
    assert mode_for(0.9, 1.0) is BudgetMode.CONSERVATIVE
    assert mode_for(0.3 + 0.6, 1.0) is BudgetMode.CONSERVATIVE


def test_zero_cap() -> None:
    assert percent_of_cap(0, 0) == 0
    assert mode_for(0, 0) is BudgetMode.NORMAL
    assert mode_for(0.01, 0) is BudgetMode.FROZEN


@pytest.mark.parametrize(
    ("mode", "configured", "expected"),
    [
        (BudgetMode.NORMAL, 2, 2),
        (BudgetMode.NORMAL, 5, 5),
        (BudgetMode.CONSERVATIVE, 2, 1),
        (BudgetMode.CONSERVATIVE, 0, 0),
        (BudgetMode.FROZEN, 4, 0),
    ],
)
def test_max_workers(mode: BudgetMode, configured: int, expected: int) -> None:
    assert max_workers(mode, configured) == expected


def test_max_workers_default_is_two() -> None:
    assert max_workers(BudgetMode.NORMAL) == 2
    with pytest.raises(ValueError, match="workers"):
        max_workers(BudgetMode.NORMAL, -1)


# -- used, remaining, projected ------------------------------------------------------------------------


def test_used_by_scope() -> None:
    book = ledger(
        entry(None, "planner", 0.5, 1000),
        entry("MS-SEC-001", "implementer", 1.0, 2000),
        entry("MS-SEC-001", "reviewer", 0.25, 500),
        entry("MS-SEC-002", "reviewer", 0.75, 700),
    )
    assert book.used() == 2.5
    assert book.used(ticket_scope("MS-SEC-001")) == 1.25
    assert book.used(role_scope("MS-SEC-001", "reviewer")) == 0.25
    assert book.used(Scope(role="reviewer")) == 1.0  # the role across the run
    assert book.used(ticket_scope("MS-SEC-404")) == 0
    assert book.tokens_used() == 4200
    assert book.tokens_used(ticket_scope("MS-SEC-002")) == 700


def test_record_is_immutable() -> None:
    empty = BudgetLedger()
    grown = empty.record(entry("MS-SEC-001", "implementer", 1.0))
    assert empty.entries == ()
    assert len(grown.entries) == 1


def test_remaining_estimate_subtracts_usage_never_below_zero() -> None:
    book = ledger(entry("MS-SEC-001", "implementer", 3.0), entry("MS-SEC-002", "implementer", 0.5))
    estimates = {"MS-SEC-001": 2.0, "MS-SEC-002": 2.0, "MS-SEC-003": 1.0}
    # 001 overran: 0 left (not -1); 002 has 1.5 left; 003 untouched: 1.0.
    assert book.remaining_estimate(estimates) == 2.5
    assert book.projected(estimates) == 3.5 + 2.5


def test_position_with_explicit_cap() -> None:
    book = ledger(entry("MS-SEC-001", "implementer", 4.0), run_usd=10.0)
    position = book.position({"MS-SEC-002": 3.0})
    assert position.cap_usd == 10.0
    assert position.cap_source is CapSource.EXPLICIT
    assert position.used_usd == 4.0
    assert position.remaining_estimate_usd == 3.0
    assert position.projected_usd == 7.0
    assert position.percent == 70.0
    assert position.mode is BudgetMode.CONSERVATIVE
    assert not position.over_cap


def test_position_over_cap() -> None:
    position = ledger(entry(None, "planner", 11.0), run_usd=10.0).position({})
    assert position.over_cap
    assert position.mode is BudgetMode.FROZEN
    assert not ledger(run_usd=10.0).position({"MS-SEC-001": 10.0}).over_cap  # exactly the cap is not over


# -- soft cap ------------------------------------------------------------------------------------------


def test_soft_cap_derived_on_the_fly_starts_normal() -> None:
    position = BudgetLedger().position({"MS-SEC-001": 2.0, "MS-SEC-002": 4.0})
    assert position.cap_source is CapSource.DERIVED
    assert position.cap_usd == 9.0
    assert position.percent == pytest.approx(66.666667)
    assert position.mode is BudgetMode.NORMAL


def test_with_soft_cap_fixes_the_cap_at_preflight() -> None:
    estimates = {"MS-SEC-001": 2.0, "MS-SEC-002": 4.0}
    book = BudgetLedger().with_soft_cap(estimates)
    assert book.caps.run_usd == 9.0
    assert book.caps.run_cap_source is CapSource.DERIVED
    # Spending beyond the estimates moves toward the fixed cap: the mode changes.
    later = book.record(entry("MS-SEC-001", "implementer", 4.0))
    assert later.position(estimates).projected_usd == 8.0
    assert later.position(estimates).mode is BudgetMode.CONSERVATIVE
    assert later.position(estimates).cap_source is CapSource.DERIVED


def test_with_soft_cap_keeps_an_explicit_cap() -> None:
    book = ledger(run_usd=3.0)
    assert book.with_soft_cap({"MS-SEC-001": 100.0}) is book


def test_soft_cap_factor() -> None:
    assert derive_soft_cap(10.0) == 15.0
    assert derive_soft_cap(10.0, 2.0) == 20.0
    assert BudgetLedger().position({"MS-SEC-001": 1.0}, soft_cap_factor=1.2).mode is BudgetMode.CONSERVATIVE
    with pytest.raises(ValueError, match="factor"):
        derive_soft_cap(1.0, 0)


# -- nested caps ----------------------------------------------------------------------------------------


def test_nested_caps_role_within_ticket_within_run() -> None:
    book = ledger(
        entry("MS-SEC-001", "implementer", 1.0),
        entry("MS-SEC-001", "reviewer", 0.4),
        entry("MS-SEC-002", "implementer", 2.0),
        run_usd=5.0,
        ticket_usd=2.0,
        ticket_overrides={"MS-SEC-002": 4.0},
        role_usd={"reviewer": 0.5},
    )
    reviewer = role_scope("MS-SEC-001", "reviewer")
    assert book.allows(reviewer, 0.1)
    breach = book.breach(reviewer, 0.2)
    assert breach is not None
    assert breach.capped == reviewer
    assert breach.cap_usd == 0.5
    assert "MS-SEC-001/reviewer" in breach.describe()
    # The implementer has no role cap, but the ticket cap (2.0, of which 1.4 is used) holds it.
    implementer = role_scope("MS-SEC-001", "implementer")
    assert book.allows(implementer, 0.6)
    breach = book.breach(implementer, 0.7)
    assert breach is not None
    assert breach.capped == ticket_scope("MS-SEC-001")
    # MS-SEC-002 has its own ticket cap of 4.0 but the run cap (5.0, 3.4 used) comes first.
    assert book.allows(ticket_scope("MS-SEC-002"), 1.0)
    breach = book.breach(ticket_scope("MS-SEC-002"), 1.7)
    assert breach is not None
    assert breach.capped == RUN
    # A ticket without usage gets the default ticket cap.
    assert not book.allows(ticket_scope("MS-SEC-003"), 2.5)


def test_no_caps_allow_everything() -> None:
    assert BudgetLedger().allows(role_scope("MS-SEC-001", "reviewer"), 1e9)


def test_breach_rejects_negative_spend() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        BudgetLedger().breach(RUN, -1)


def test_caps_must_not_be_negative() -> None:
    with pytest.raises(ValidationError):
        BudgetCaps(run_usd=-1)
    with pytest.raises(ValidationError, match="reviewer"):
        BudgetCaps(role_usd={"reviewer": -0.1})


def test_scope_strings_and_chain() -> None:
    assert str(RUN) == "run"
    assert str(ticket_scope("MS-SEC-001")) == "MS-SEC-001"
    assert str(Scope(role="qa")) == "role qa (whole run)"
    assert role_scope("MS-SEC-001", "qa").enclosing == [
        role_scope("MS-SEC-001", "qa"),
        ticket_scope("MS-SEC-001"),
        RUN,
    ]
    assert RUN.enclosing == [RUN]


# -- prices ----------------------------------------------------------------------------------------------


def test_price_table_defaults_and_overrides() -> None:
    table = PriceTable(prices={ModelTier.NORMAL: Price(input_usd_per_mtok=2.0, output_usd_per_mtok=10.0)})
    assert table.price(ModelTier.NORMAL).input == 2.0
    assert table.price(ModelTier.EASY) == DEFAULT_PRICES[ModelTier.EASY]
    assert table.price(ModelTier.COMPLEX) == DEFAULT_PRICES[ModelTier.COMPLEX]


def test_cost_of_one_call() -> None:
    table = PriceTable()
    # Sonnet class: $3 in, $15 out, cache write 1.25x input, cache read 0.1x input.
    cost = table.cost_usd(
        ModelTier.NORMAL,
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_write_tokens=200_000,
        cache_read_tokens=1_000_000,
    )
    assert cost == pytest.approx(3.0 + 1.5 + 0.75 + 0.3)


def test_explicit_cache_prices() -> None:
    price = Price(input_usd_per_mtok=1, output_usd_per_mtok=2, cache_write_usd_per_mtok=7, cache_read_usd_per_mtok=0)
    assert (price.cache_write, price.cache_read) == (7, 0)


def test_blended_estimate_is_80_20() -> None:
    table = PriceTable()
    assert table.blended_usd_per_mtok(ModelTier.NORMAL) == pytest.approx(0.8 * 3 + 0.2 * 15)
    assert table.estimate_usd(10_000, ModelTier.NORMAL) == pytest.approx(0.054)
    assert PriceTable(input_share=1.0).estimate_usd(1_000_000, ModelTier.EASY) == 1.0


def test_ticket_estimates_in_usd() -> None:
    table = PriceTable()
    easy = Ticket(id="MS-SEC-001", title="a", estimate_tokens=100_000, complexity=2)
    normal = Ticket(id="MS-SEC-002", title="b")  # no estimate: 10K tokens at the normal tier
    done = Ticket(id="MS-SEC-003", title="c", estimate_tokens=5000, state=State.DONE)
    assert ticket_estimate_usd(easy, table) == pytest.approx(0.1 * (0.8 * 1 + 0.2 * 5))
    assert ticket_estimate_usd(normal, table) == pytest.approx(0.054)
    estimates = open_estimates_usd([easy, normal, done], table)
    assert list(estimates) == ["MS-SEC-001", "MS-SEC-002"]  # terminal tickets have nothing left to spend
    assert open_estimates_usd([normal], table, missing_estimate_tokens=0) == {"MS-SEC-002": 0.0}


# -- properties ------------------------------------------------------------------------------------------

_TICKETS = st.sampled_from(["MS-SEC-001", "MS-SEC-002", "MS-CQ-001"])
_USD = st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False)
_ENTRIES = st.lists(
    st.builds(UsageEntry, ticket_id=st.none() | _TICKETS, role=st.sampled_from(["implementer", "reviewer"]), usd=_USD),
    max_size=12,
)
_ESTIMATES = st.dictionaries(_TICKETS, _USD, max_size=3)


@given(_ENTRIES, _ESTIMATES)
def test_projected_is_at_least_used(entries: list[UsageEntry], estimates: dict[str, float]) -> None:
    book = BudgetLedger(entries=tuple(entries))
    position = book.position(estimates)
    assert position.projected_usd >= position.used_usd
    assert position.remaining_estimate_usd >= 0
    assert position.projected_usd <= position.used_usd + sum(estimates.values()) + 1e-6


@given(_ENTRIES)
def test_ticket_usage_sums_to_run_usage(entries: list[UsageEntry]) -> None:
    book = BudgetLedger(entries=tuple(entries))
    per_ticket = sum(book.used(ticket_scope(t)) for t in {e.ticket_id for e in entries if e.ticket_id})
    run_level = sum(e.usd for e in entries if e.ticket_id is None)
    assert per_ticket + run_level == pytest.approx(book.used(), abs=1e-5)


_ORDER = {BudgetMode.NORMAL: 0, BudgetMode.CONSERVATIVE: 1, BudgetMode.FROZEN: 2}


@given(
    st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
    st.floats(min_value=0, max_value=2e6, allow_nan=False),
    st.floats(min_value=0, max_value=2e6, allow_nan=False),
)
def test_mode_is_monotone_in_projected(cap: float, a: float, b: float) -> None:
    low, high = sorted([a, b])
    assert _ORDER[mode_for(low, cap)] <= _ORDER[mode_for(high, cap)]


@given(st.floats(min_value=0.001, max_value=1e6, allow_nan=False))
def test_fresh_backlog_with_soft_cap_is_normal(projected: float) -> None:
    position = BudgetLedger().position({"MS-SEC-001": projected})
    assert position.mode is BudgetMode.NORMAL
    assert position.cap_source is CapSource.DERIVED


@given(_ENTRIES, _USD)
def test_allows_iff_no_breach_and_spending_zero_within_cap(entries: list[UsageEntry], cap: float) -> None:
    book = BudgetLedger(caps=BudgetCaps(ticket_usd=cap), entries=tuple(entries))
    scope = ticket_scope("MS-SEC-001")
    assert book.allows(scope, 0) == (book.used(scope) <= cap)
