"""The budget in USD: nested caps (run → ticket → role), a usage ledger, forecasts and the dispatch mode.

Seed 001 Step 3b is the rule: the *projected* total (used so far + what the unfinished tickets are still
estimated to cost) is compared with the cap before every dispatch:

- projected < 70 % of the cap: NORMAL (up to the configured workers);
- 70 % ≤ projected ≤ 90 %: CONSERVATIVE (one worker);
- projected > 90 %: FROZEN (no new worker starts; triage with a person).

USD is the unit of caps and forecasts (ARCHITECTURE.md §8); seed 001's token estimates are converted with a
:class:`PriceTable`. With no explicit run cap a *soft cap* is derived from the estimates (projected total *
``factor``, default 1.5, so a fresh backlog starts at 66.7 %: normal mode) and marked ``derived`` so preflight
can record it. Percentages are rounded to 1e-6 before the thresholds apply, so 7.0 of 10.0 is exactly 70 %.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.domain.ticket import ModelTier, Ticket

NORMAL_BELOW_PCT = 70.0  # projected < 70 % of the cap: normal mode
FROZEN_ABOVE_PCT = 90.0  # projected > 90 % of the cap: frozen
DEFAULT_SOFT_CAP_FACTOR = 1.5  # > 1 / 0.7 ≈ 1.43, so a fresh backlog starts in normal mode
DEFAULT_WORKERS = 2  # seed 001 / ARCHITECTURE.md §8
DEFAULT_INPUT_SHARE = 0.8  # blend for token estimates: 80 % input, 20 % output tokens
DEFAULT_MISSING_ESTIMATE_TOKENS = 10_000  # a ticket without an estimate (seed 001 Step 3's middle row)
_PCT_DIGITS = 6
_USD_DIGITS = 6  # micro-dollars: keeps 0.1 + 0.2 out of the state files


class BudgetMode(StrEnum):
    NORMAL = "normal"
    CONSERVATIVE = "conservative"
    FROZEN = "frozen"


class CapSource(StrEnum):
    EXPLICIT = "explicit"  # the user gave it (build-spec, CLI, block)
    DERIVED = "derived"  # preflight derived a soft cap from the estimates


# -- prices -------------------------------------------------------------------------------------------


class Price(BaseModel):
    """USD per million tokens for one model class. Cache prices default to Anthropic's multipliers of the
    input price (a 5-minute cache write costs 1.25x, a cache read 0.1x)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    cache_write_usd_per_mtok: float | None = Field(default=None, ge=0)
    cache_read_usd_per_mtok: float | None = Field(default=None, ge=0)

    @property
    def input(self) -> float:
        return self.input_usd_per_mtok

    @property
    def output(self) -> float:
        return self.output_usd_per_mtok

    @property
    def cache_write(self) -> float:
        explicit = self.cache_write_usd_per_mtok
        return explicit if explicit is not None else 1.25 * self.input_usd_per_mtok

    @property
    def cache_read(self) -> float:
        explicit = self.cache_read_usd_per_mtok
        return explicit if explicit is not None else 0.1 * self.input_usd_per_mtok


# List prices of the Haiku / Sonnet / Opus classes (Claude Haiku 4.5, Sonnet 4.5, Opus 4.5) at the time of
# writing. They are defaults only: build-spec overrides them per tier.
DEFAULT_PRICES: dict[ModelTier, Price] = {
    ModelTier.EASY: Price(input_usd_per_mtok=1.0, output_usd_per_mtok=5.0),
    ModelTier.NORMAL: Price(input_usd_per_mtok=3.0, output_usd_per_mtok=15.0),
    ModelTier.COMPLEX: Price(input_usd_per_mtok=5.0, output_usd_per_mtok=25.0),
}


class PriceTable(BaseModel):
    """Prices per model tier. Tiers left out of ``prices`` keep their defaults.

    Ticket estimates are token counts without an input/output split; :meth:`estimate_usd` converts them with
    a blended price that assumes ``input_share`` of the tokens are input (default 80 % input, 20 % output:
    agents read far more than they write). Cache effects are ignored in the blend, which errs high.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prices: dict[ModelTier, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    input_share: float = Field(default=DEFAULT_INPUT_SHARE, ge=0, le=1)

    @model_validator(mode="after")
    def _fill_defaults(self) -> PriceTable:
        for tier, price in DEFAULT_PRICES.items():
            self.prices.setdefault(tier, price)
        return self

    def price(self, tier: ModelTier) -> Price:
        return self.prices[tier]

    def cost_usd(
        self,
        tier: ModelTier,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_read_tokens: int = 0,
    ) -> float:
        """The cost of one call's normalised usage (ARCHITECTURE.md §5)."""
        p = self.price(tier)
        total = (
            input_tokens * p.input
            + output_tokens * p.output
            + cache_write_tokens * p.cache_write
            + cache_read_tokens * p.cache_read
        )
        return round(total / 1_000_000, _USD_DIGITS)

    def blended_usd_per_mtok(self, tier: ModelTier) -> float:
        p = self.price(tier)
        return self.input_share * p.input + (1 - self.input_share) * p.output

    def estimate_usd(self, tokens: int, tier: ModelTier) -> float:
        """A token estimate in USD at the blended price of ``tier``."""
        return round(tokens * self.blended_usd_per_mtok(tier) / 1_000_000, _USD_DIGITS)


def ticket_estimate_usd(
    ticket: Ticket, prices: PriceTable, *, missing_estimate_tokens: int = DEFAULT_MISSING_ESTIMATE_TOKENS
) -> float:
    tokens = ticket.estimate_tokens if ticket.estimate_tokens is not None else missing_estimate_tokens
    return prices.estimate_usd(tokens, ticket.model_tier)


def open_estimates_usd(
    tickets: Iterable[Ticket],
    prices: PriceTable,
    *,
    missing_estimate_tokens: int = DEFAULT_MISSING_ESTIMATE_TOKENS,
) -> dict[str, float]:
    """USD estimates of the unfinished (non-terminal) tickets, keyed by ticket id, in the given order."""
    return {
        t.id: ticket_estimate_usd(t, prices, missing_estimate_tokens=missing_estimate_tokens)
        for t in tickets
        if not t.state.is_terminal
    }


# -- scopes, caps and the ledger ------------------------------------------------------------------------


class Scope(BaseModel):
    """A budget scope: the run (both None), one ticket, or one role within one ticket.

    A role without a ticket (``Scope(role="reviewer")``) sums that role over the run; it is for reports and
    has no cap of its own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str | None = None
    role: str | None = None

    @property
    def enclosing(self) -> list[Scope]:
        """This scope and every scope around it, innermost first (role → ticket → run)."""
        chain = [self]
        if self.role is not None and self.ticket_id is not None:
            chain.append(Scope(ticket_id=self.ticket_id))
        if self.ticket_id is not None or self.role is not None:
            chain.append(RUN)
        return chain

    def __str__(self) -> str:
        if self.ticket_id is None and self.role is None:
            return "run"
        if self.ticket_id is None:
            return f"role {self.role} (whole run)"
        return f"{self.ticket_id}/{self.role}" if self.role else self.ticket_id


RUN = Scope()


def ticket_scope(ticket_id: str) -> Scope:
    return Scope(ticket_id=ticket_id)


def role_scope(ticket_id: str, role: str) -> Scope:
    return Scope(ticket_id=ticket_id, role=role)


class BudgetCaps(BaseModel):
    """Caps in USD; None means no cap at that level.

    ``ticket_usd`` applies to every ticket unless ``ticket_overrides`` names it; ``role_usd`` caps a role
    within one ticket (for example ``{"reviewer": 0.5}``: at most 50 cents of review per ticket).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_usd: float | None = Field(default=None, ge=0)
    run_cap_source: CapSource = CapSource.EXPLICIT
    ticket_usd: float | None = Field(default=None, ge=0)
    ticket_overrides: dict[str, float] = Field(default_factory=dict)
    role_usd: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _non_negative(self) -> BudgetCaps:
        for name, value in [*self.ticket_overrides.items(), *self.role_usd.items()]:
            if value < 0:
                raise ValueError(f"cap for {name} must be >= 0, got {value}")
        return self

    def cap(self, scope: Scope) -> float | None:
        """The cap of exactly this scope (not of the scopes around it)."""
        if scope.ticket_id is None:
            return self.run_usd if scope.role is None else None
        if scope.role is None:
            return self.ticket_overrides.get(scope.ticket_id, self.ticket_usd)
        return self.role_usd.get(scope.role)


class UsageEntry(BaseModel):
    """Spend of one agent call (or a batch of them). ``ticket_id`` None is run-level work (e.g. planning)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_id: str | None = None
    role: str
    usd: float = Field(ge=0)
    tokens: int = Field(default=0, ge=0)

    def in_scope(self, scope: Scope) -> bool:
        return (scope.ticket_id is None or self.ticket_id == scope.ticket_id) and (
            scope.role is None or self.role == scope.role
        )


class CapBreach(BaseModel):
    """Spending ``additional_usd`` in ``scope`` would exceed the cap of ``capped`` (``scope`` or around it)."""

    model_config = ConfigDict(frozen=True)

    scope: Scope
    capped: Scope
    cap_usd: float
    used_usd: float
    additional_usd: float

    def describe(self) -> str:
        return (
            f"budget cap of {self.capped} exceeded: used ${self.used_usd:.4f} + ${self.additional_usd:.4f} "
            f"> cap ${self.cap_usd:.4f}"
        )


class BudgetPosition(BaseModel):
    """Seed 001 step 15: cumulative used, remaining estimate, projected total; plus cap, percent and mode."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cap_usd: float = Field(ge=0)
    cap_source: CapSource
    used_usd: float = Field(ge=0)
    remaining_estimate_usd: float = Field(ge=0)
    projected_usd: float = Field(ge=0)
    percent: float = Field(ge=0, description="projected as a percentage of the cap")
    mode: BudgetMode
    over_cap: bool = Field(description="projected exceeds the cap: stop and ask (seed 001 step 6)")


def percent_of_cap(projected_usd: float, cap_usd: float) -> float:
    """``projected`` as a percentage of ``cap``; 0 of a 0 cap is 0 %, anything more is infinite."""
    if cap_usd <= 0:
        return 0.0 if projected_usd <= 0 else float("inf")
    return round(100 * projected_usd / cap_usd, _PCT_DIGITS)


def mode_for(projected_usd: float, cap_usd: float) -> BudgetMode:
    pct = percent_of_cap(projected_usd, cap_usd)
    if pct < NORMAL_BELOW_PCT:
        return BudgetMode.NORMAL
    if pct <= FROZEN_ABOVE_PCT:
        return BudgetMode.CONSERVATIVE
    return BudgetMode.FROZEN


def max_workers(mode: BudgetMode, configured: int = DEFAULT_WORKERS) -> int:
    """Workers allowed to start in ``mode``: all configured, one, or none."""
    if configured < 0:
        raise ValueError(f"configured workers must be >= 0, got {configured}")
    return {BudgetMode.NORMAL: configured, BudgetMode.CONSERVATIVE: min(1, configured), BudgetMode.FROZEN: 0}[mode]


def derive_soft_cap(projected_usd: float, factor: float = DEFAULT_SOFT_CAP_FACTOR) -> float:
    if factor <= 0:
        raise ValueError(f"soft cap factor must be > 0, got {factor}")
    return round(projected_usd * factor, _USD_DIGITS)


class BudgetLedger(BaseModel):
    """Caps and every usage entry of a run. Immutable: :meth:`record` returns a new ledger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    caps: BudgetCaps = Field(default_factory=BudgetCaps)
    entries: tuple[UsageEntry, ...] = ()

    def record(self, entry: UsageEntry) -> BudgetLedger:
        return self.model_copy(update={"entries": (*self.entries, entry)})

    def used(self, scope: Scope = RUN) -> float:
        return round(sum(e.usd for e in self.entries if e.in_scope(scope)), _USD_DIGITS)

    def tokens_used(self, scope: Scope = RUN) -> int:
        return sum(e.tokens for e in self.entries if e.in_scope(scope))

    def remaining_estimate(self, open_estimates: Mapping[str, float]) -> float:
        """Estimates of the unfinished tickets minus what each already used, never below zero per ticket."""
        total = sum(max(0.0, est - self.used(ticket_scope(tid))) for tid, est in open_estimates.items())
        return round(total, _USD_DIGITS)

    def projected(self, open_estimates: Mapping[str, float]) -> float:
        return round(self.used() + self.remaining_estimate(open_estimates), _USD_DIGITS)

    def with_soft_cap(
        self, open_estimates: Mapping[str, float], factor: float = DEFAULT_SOFT_CAP_FACTOR
    ) -> BudgetLedger:
        """Preflight: keep an explicit run cap, or fix a derived one from the current projection."""
        if self.caps.run_usd is not None:
            return self
        cap = derive_soft_cap(self.projected(open_estimates), factor)
        caps = self.caps.model_copy(update={"run_usd": cap, "run_cap_source": CapSource.DERIVED})
        return self.model_copy(update={"caps": caps})

    def position(
        self, open_estimates: Mapping[str, float], soft_cap_factor: float = DEFAULT_SOFT_CAP_FACTOR
    ) -> BudgetPosition:
        """The budget position; without a run cap one is derived on the fly (see :meth:`with_soft_cap`)."""
        used = self.used()
        remaining = self.remaining_estimate(open_estimates)
        projected = round(used + remaining, _USD_DIGITS)
        if self.caps.run_usd is not None:
            cap, source = self.caps.run_usd, self.caps.run_cap_source
        else:
            cap, source = derive_soft_cap(projected, soft_cap_factor), CapSource.DERIVED
        pct = percent_of_cap(projected, cap)
        return BudgetPosition(
            cap_usd=cap,
            cap_source=source,
            used_usd=used,
            remaining_estimate_usd=remaining,
            projected_usd=projected,
            percent=pct,
            mode=mode_for(projected, cap),
            over_cap=pct > 100.0,
        )

    def breach(self, scope: Scope, additional_usd: float = 0.0) -> CapBreach | None:
        """The innermost cap that spending ``additional_usd`` in ``scope`` would exceed, if any.

        Checks the scope and every scope around it (role within ticket → ticket → run) against what was
        actually used; the run's forecast is :meth:`position`'s business.
        """
        if additional_usd < 0:
            raise ValueError(f"additional spend must be >= 0, got {additional_usd}")
        for capped in scope.enclosing:
            cap = self.caps.cap(capped)
            if cap is None:
                continue
            used = self.used(capped)
            if round(used + additional_usd, _USD_DIGITS) > cap:
                return CapBreach(scope=scope, capped=capped, cap_usd=cap, used_usd=used, additional_usd=additional_usd)
        return None

    def allows(self, scope: Scope, additional_usd: float = 0.0) -> bool:
        return self.breach(scope, additional_usd) is None


Budget = BudgetLedger
