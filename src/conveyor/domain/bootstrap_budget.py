"""Seed 001 Step 3b at bootstrap: the budget forecast of a backlog in USD, and the automatic scope cut.

- **Projected total** = what the tickets already cost (``cost_usd``) + for each unfinished ticket what its
  estimate still leaves (estimate in USD at its model tier's blended price minus its cost, never below zero),
  the same formula as :meth:`conveyor.domain.budget.BudgetLedger.projected`. Terminal tickets (done, deferred,
  obsolete...) add their cost only, so a cut (deferred) phase leaves the projection.
- **Cap:** the explicit one, or a soft cap derived from the projection (x ``soft_cap_factor``, recorded as
  ``derived``); the mode (normal / conservative / frozen) follows :func:`conveyor.domain.budget.mode_for`.
- **Scope cut** when the projection is over the cap: whole phases go, lowest severity (highest phase number)
  first, each with its documentation and verification tickets, until the projection fits or only the most
  severe phase is left (phase 1 when there is one). A cut phase leaves as a whole: its queued tickets and those
  already given up (deferred by an earlier cut, skipped, obsolete). A phase is not cut, and cutting stops
  there, when one of its tickets is under way or done (the cut is a bootstrap decision, not a way to drop work
  under way), or when a ticket that stays depends on one of its tickets (no dangling dependency: ``kept`` is a
  valid backlog). Tickets without a phase (a plan's) are never cut. The cut tickets are returned;
  :func:`defer_cut` marks the queued ones deferred, never deleting anything. If the projection is still over
  the cap the caller pauses with the typed form (reduce scope, split into phases, raise the cap) or follows
  the non-interactive policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.budget import (
    DEFAULT_SOFT_CAP_FACTOR,
    BudgetMode,
    CapSource,
    PriceTable,
    derive_soft_cap,
    mode_for,
    percent_of_cap,
    ticket_estimate_usd,
)
from conveyor.domain.ticket import State, Ticket, transition

_USD_DIGITS = 6
CUT_NOTE = "deferred by the bootstrap scope cut (projected budget over the cap)"


class Forecast(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    projected_usd: float = Field(ge=0)
    cap_usd: float = Field(ge=0)
    cap_source: CapSource
    percent: float = Field(ge=0, description="projected as a percentage of the cap")
    mode: BudgetMode
    over_cap: bool


class ScopeCut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kept: tuple[Ticket, ...]
    cut: tuple[Ticket, ...]
    cut_phases: tuple[int, ...] = Field(description="phases cut, lowest severity first")
    projected_before: float = Field(ge=0)
    projected_after: float = Field(ge=0)
    cap_usd: float = Field(ge=0)

    @property
    def over_cap(self) -> bool:
        """Still over the cap after the cut: pause and ask, or follow the non-interactive policy."""
        return percent_of_cap(self.projected_after, self.cap_usd) > 100.0


def projected_usd(tickets: Iterable[Ticket], prices: PriceTable) -> float:
    """Cost so far plus what the unfinished tickets' estimates still leave (module docstring)."""
    total = 0.0
    for ticket in tickets:
        total += ticket.cost_usd
        if not ticket.state.is_terminal:
            total += max(0.0, ticket_estimate_usd(ticket, prices) - ticket.cost_usd)
    return round(total, _USD_DIGITS)


def forecast(
    tickets: Iterable[Ticket],
    *,
    cap_usd: float | None,
    prices: PriceTable,
    soft_cap_factor: float = DEFAULT_SOFT_CAP_FACTOR,
) -> Forecast:
    """The projected total against the cap (explicit, or derived from the projection when None)."""
    projected = projected_usd(tickets, prices)
    if cap_usd is None:
        cap, source = derive_soft_cap(projected, soft_cap_factor), CapSource.DERIVED
    else:
        if cap_usd < 0:
            raise ValueError(f"budget cap must be >= 0, got {cap_usd}")
        cap, source = cap_usd, CapSource.EXPLICIT
    percent = percent_of_cap(projected, cap)
    return Forecast(
        projected_usd=projected,
        cap_usd=cap,
        cap_source=source,
        percent=percent,
        mode=mode_for(projected, cap),
        over_cap=percent > 100.0,
    )


def _phase_cut(phase: int, tickets: Sequence[Ticket], cut: set[str]) -> set[str] | None:
    """The tickets of ``phase`` that a cut removes, or None when the phase may not be cut (module docstring)."""
    members = [t for t in tickets if t.phase == phase]
    if any(t.state.is_active or t.state is State.DONE for t in members):
        return None
    leaving = {t.id for t in members}
    if any(dep in leaving for t in tickets if t.id not in leaving | cut for dep in t.depends_on):
        return None
    return leaving


def cut_scope(tickets: Sequence[Ticket], *, cap_usd: float, prices: PriceTable) -> ScopeCut:
    """Cut whole phases, lowest severity first, until the projection fits the cap (module docstring)."""
    projected = before = projected_usd(tickets, prices)
    phases = sorted({t.phase for t in tickets if t.phase is not None}, reverse=True)
    cut: set[str] = set()
    cut_phases: list[int] = []
    for phase in phases[:-1]:  # the most severe phase is never cut
        if percent_of_cap(projected, cap_usd) <= 100.0:
            break
        leaving = _phase_cut(phase, tickets, cut)
        if leaving is None:
            break
        cut |= leaving
        cut_phases.append(phase)
        projected = projected_usd((t for t in tickets if t.id not in cut), prices)
    return ScopeCut(
        kept=tuple(t for t in tickets if t.id not in cut),
        cut=tuple(t for t in tickets if t.id in cut),
        cut_phases=tuple(cut_phases),
        projected_before=before,
        projected_after=projected,
        cap_usd=cap_usd,
    )


def defer_cut(tickets: Sequence[Ticket], cut: ScopeCut, *, at: datetime | None = None) -> list[Ticket]:
    """``tickets`` in their order with the cut ones deferred (a legal transition) and a note saying why."""
    cut_ids = {t.id for t in cut.cut}
    out = []
    for ticket in tickets:
        if ticket.id in cut_ids and not ticket.state.is_terminal:
            notes = f"{ticket.notes}; {CUT_NOTE}" if ticket.notes else CUT_NOTE
            out.append(transition(ticket, State.DEFERRED, at=at).model_copy(update={"notes": notes}))
        else:
            out.append(ticket)
    return out
