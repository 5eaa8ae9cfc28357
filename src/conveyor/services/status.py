"""``conveyor status``: tickets by status, the ready set, running work, deadlock and the budget position."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.domain.backlog import Deadlock, estimate_weight
from conveyor.domain.budget import (
    BudgetCaps,
    BudgetLedger,
    BudgetPosition,
    CapSource,
    PriceTable,
    UsageEntry,
    open_estimates_usd,
)
from conveyor.domain.errors import Problem
from conveyor.domain.projections import tasks_status
from conveyor.domain.ticket import Ticket
from conveyor.services.backlog_loader import load_backlog
from conveyor.settings import Settings

STATUS_ORDER = (
    "not-started",
    "in-progress",
    "needs-qa",
    "blocked",
    "done",
    "failed",
    "deferred",
    "skipped",
    "obsolete",
)


@dataclass
class StatusReport:
    project: str
    milestone: str
    llm_mode: str
    total: int
    by_status: dict[str, int]
    ready: list[Ticket]
    running: list[Ticket]
    critical_path: list[str]
    budget: BudgetPosition
    budget_recorded: bool  # the cap (explicit, or derived and recorded by a run's preflight) is on file
    deadlock: Deadlock | None
    warnings: list[Problem] = field(default_factory=list)


def _ledger(tickets: list[Ticket], caps: BudgetCaps, prices: PriceTable) -> BudgetLedger:
    ledger = BudgetLedger(caps=caps)
    for ticket in tickets:
        # Recorded cost wins; seed-style files only carry used tokens, priced at the ticket's tier.
        usd = ticket.cost_usd or (
            prices.estimate_usd(ticket.used_tokens, ticket.model_tier) if ticket.used_tokens else 0
        )
        if usd:
            ledger = ledger.record(UsageEntry(ticket_id=ticket.id, role="all", usd=usd, tokens=ticket.used_tokens or 0))
    return ledger


def repository_status(repo: Path, settings: Settings) -> StatusReport:
    loaded = load_backlog(repo)
    backlog = loaded.backlog
    tickets = backlog.tickets
    by_status: Counter[str] = Counter()
    for ticket in tickets:
        by_status[loaded.document.status_text(ticket.id) or tasks_status(ticket.state, ticket.flags)] += 1
    ordered = {s: by_status[s] for s in STATUS_ORDER if by_status[s]}
    ordered |= {s: n for s, n in sorted(by_status.items()) if s not in ordered}

    prices = PriceTable()
    budget_spec = settings.budget
    recorded = loaded.run_state.budget if loaded.run_state is not None else None
    if budget_spec.cap_usd is not None:
        caps = BudgetCaps(run_usd=budget_spec.cap_usd, ticket_usd=budget_spec.ticket_cap_usd)
    elif recorded is not None and recorded.cap_source is CapSource.DERIVED:
        caps = BudgetCaps(run_usd=recorded.cap_usd, run_cap_source=CapSource.DERIVED)
    else:
        caps = BudgetCaps(ticket_usd=budget_spec.ticket_cap_usd)
    ledger = _ledger(tickets, caps, prices)
    position = ledger.position(open_estimates_usd(tickets, prices), budget_spec.soft_cap_factor)
    path, _ = backlog.critical_path(estimate_weight)
    return StatusReport(
        project=settings.project or repo.resolve().name,
        milestone=settings.milestone.name,
        llm_mode=_backend_name(settings),
        total=len(tickets),
        by_status=ordered,
        ready=backlog.ready(estimate_weight),
        running=backlog.running(),
        critical_path=path,
        budget=position,
        budget_recorded=caps.run_usd is not None,
        deadlock=backlog.deadlock(),
        warnings=loaded.warnings,
    )


def _backend_name(settings: Settings) -> str:
    from conveyor.services.agents import backend_name  # lazily: it pulls in git, and `status` must start fast

    return backend_name(settings)
