"""Bootstrap (seed 001 Phase 1, seed 000 Plan Generation): a PRD or review report → docs/TASKS.md.

Each step is a function the bootstrap flow runs as a Prefect task; together they are also usable without
Prefect. Re-runs upsert: unchanged input writes nothing and commits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.adapters.learnings_file import read_learnings
from conveyor.adapters.prd_parser import parse_prd
from conveyor.adapters.review_report import parse_report
from conveyor.domain.bootstrap import backlog_from_findings
from conveyor.domain.bootstrap_budget import Forecast, cut_scope, defer_cut, forecast
from conveyor.domain.bootstrap_merge import MergeResult, merge_backlog
from conveyor.domain.bootstrap_plan import backlog_from_plan
from conveyor.domain.errors import ConveyorError, InputError, Problem
from conveyor.domain.findings import ParsedReport
from conveyor.domain.models import ModelTable
from conveyor.domain.roles import AgentCallError, RoleOutputError
from conveyor.domain.ticket import State, Ticket, transition
from conveyor.ports import AgentBackend, Clock
from conveyor.services.backlog_loader import load_backlog
from conveyor.services.bootstrap_inputs import BootstrapRequest
from conveyor.settings import Settings


@dataclass
class PlanStep:
    """The fresh backlog planned from the input, before merging with what exists."""

    source: str  # what the commit message names: the report folder or the PRD path
    kind: str  # "report" | "prd"
    tickets: list[Ticket]
    items: int  # findings or requirements read
    fallback: bool = False  # the deterministic PRD parser ran instead of the planner
    notes: list[str] = field(default_factory=list)


@dataclass
class BudgetStep:
    tickets: list[Ticket]
    before: Forecast
    after: Forecast
    cut: list[str] = field(default_factory=list)
    cut_phases: list[int] = field(default_factory=list)


def read_report(repo: Path, folder: str) -> ParsedReport:
    """Steps 1-2: parse the report; counts stated by the executive summary must match what was parsed."""
    report = parse_report(repo, folder)
    mismatches = report.summary_mismatches()
    if mismatches and report.summary is not None:
        detail = ", ".join(
            f"{sev.value}: summary says {stated}, found {parsed}" for sev, (stated, parsed) in mismatches.items()
        )
        raise InputError(
            [Problem(report.summary.source, report.summary.line, f"the executive summary's counts disagree ({detail})")]
        )
    return report


def plan_from_report(report: ParsedReport, request: BootstrapRequest, settings: Settings) -> PlanStep:
    learnings = read_learnings(request.repo)
    tickets = backlog_from_findings(report.findings, prefix=settings.task_prefix, learnings=learnings)
    folder = request.report or report.name
    return PlanStep(source=folder, kind="report", tickets=tickets, items=len(report.findings))


def plan_from_prd(
    prd_path: str, request: BootstrapRequest, settings: Settings, backend: AgentBackend | None, run_id: str
) -> PlanStep:
    """Step 5: the planner program when a model is available, else the deterministic PRD parser."""
    learnings = read_learnings(request.repo)
    if backend is None or prd_path.lower().endswith(".json"):
        parsed = parse_prd(request.repo, prd_path)
        why = "no model (deterministic mode)" if backend is None else "PRD.json is already structured"
        tickets = backlog_from_plan(parsed.plan, prefix=settings.task_prefix, learnings=learnings)
        notes = [f"deterministic PRD parser used: {why}", parsed.summary()]
        notes += [f"not ticketed: {item.text} ({item.reason})" for item in parsed.ignored]
        return PlanStep(prd_path, "prd", tickets, len(parsed.plan.tickets), fallback=True, notes=notes)
    from conveyor.adapters.agents.roles import planner
    from conveyor.adapters.agents.roles.base import RoleCall

    text = (request.repo / prd_path).read_text(encoding="utf-8")
    try:
        outcome = planner.run(RoleCall(backend=backend, run_id=run_id, repo_root=request.repo), spec=text)
    except (AgentCallError, RoleOutputError) as exc:
        raise ConveyorError(f"the planner could not plan {prd_path}: {exc}") from exc
    tickets = backlog_from_plan(outcome.output, prefix=settings.task_prefix, learnings=learnings)
    notes = [f"planned by the planner ({backend.name}, prompt {outcome.prompt_version}, {outcome.calls} call(s))"]
    if outcome.repaired:
        notes.append("the planner's first answer did not validate; one repair round fixed it")
    return PlanStep(prd_path, "prd", tickets, len(outcome.output.tickets), notes=notes)


def merge_with_existing(repo: Path, fresh: list[Ticket], clock: Clock) -> tuple[list[Ticket], MergeResult]:
    """Step 8: upsert into the backlog on file (TASKS.md + run-queue.json), or start one."""
    existing = load_backlog(repo).backlog.tickets if (repo / "docs/TASKS.md").exists() else []
    result = merge_backlog(existing, fresh, at=clock())
    return existing, result


def budget(tickets: list[Ticket], settings: Settings, models: ModelTable, clock: Clock) -> BudgetStep:
    """Step 3b / item 6: forecast in USD; over the cap, cut lowest-severity phases first (deferred, not deleted)."""
    prices = models.prices()
    cap = settings.budget.cap_usd
    before = forecast(tickets, cap_usd=cap, prices=prices, soft_cap_factor=settings.budget.soft_cap_factor)
    if cap is None or not before.over_cap:
        return BudgetStep(tickets, before, before)
    cut = cut_scope(tickets, cap_usd=cap, prices=prices)
    kept = defer_cut(tickets, cut, at=clock())
    after = forecast(kept, cap_usd=cap, prices=prices, soft_cap_factor=settings.budget.soft_cap_factor)
    return BudgetStep(kept, before, after, [t.id for t in cut.cut], list(cut.cut_phases))


DECISION_NOTE = "deferred by a person's budget decision (projected budget over the cap)"


def with_dependents(tickets: list[Ticket], ids: Iterable[str]) -> list[str]:
    """``ids`` and every ticket depending on them, directly or not, in backlog order (no dangling dependency)."""
    closure = set(ids)
    grew = True
    while grew:
        grew = False
        for ticket in tickets:
            if ticket.id not in closure and closure.intersection(ticket.depends_on):
                closure.add(ticket.id)
                grew = True
    return [t.id for t in tickets if t.id in closure]


def split_phase_ids(tickets: list[Ticket]) -> list[str]:
    """The answer "split into phases": the open tickets outside the most severe phase that still has open work."""
    open_phases = [t.phase for t in tickets if t.phase is not None and not t.state.is_terminal]
    if not open_phases:
        return []
    now = min(open_phases)
    return [t.id for t in tickets if t.phase is not None and t.phase != now and not t.state.is_terminal]


def rebudget(
    tickets: list[Ticket],
    settings: Settings,
    models: ModelTable,
    clock: Clock,
    *,
    defer: Iterable[str] = (),
    cap_usd: float | None = None,
) -> tuple[BudgetStep, Settings]:
    """Apply a person's budget decision to the backlog before any cut (``tickets``): the budget step again.

    The tickets of ``defer`` and every ticket depending on them are deferred (queued ones; terminal ones stay as
    they are), then :func:`budget` forecasts and cuts automatically against ``cap_usd`` (an explicit, raised
    cap) or the configured cap. Returns the step and the settings it was computed with (the raised cap in
    them, so the run state records it as explicit). ConveyorError when an id is unknown or a ticket to defer
    is under way: the answer is refused, nothing changes.
    """
    known = {t.id for t in tickets}
    asked = list(dict.fromkeys(defer))
    unknown = [tid for tid in asked if tid not in known]
    if unknown:
        raise ConveyorError(f"unknown ticket id(s) {', '.join(unknown)}")
    leaving = set(with_dependents(tickets, asked))
    busy = [t.id for t in tickets if t.id in leaving and t.state.is_active]
    if busy:
        raise ConveyorError(
            f"cannot defer {', '.join(busy)}: under way (a ticket given, or one depending on it, has started)"
        )
    at = clock()
    kept: list[Ticket] = []
    deferred: list[str] = []
    for ticket in tickets:
        if ticket.id in leaving and not ticket.state.is_terminal:
            notes = f"{ticket.notes}; {DECISION_NOTE}" if ticket.notes else DECISION_NOTE
            kept.append(transition(ticket, State.DEFERRED, at=at).model_copy(update={"notes": notes}))
            deferred.append(ticket.id)
        else:
            kept.append(ticket)
    if cap_usd is not None:
        settings = settings.model_copy(update={"budget": settings.budget.model_copy(update={"cap_usd": cap_usd})})
    step = budget(kept, settings, models, clock)
    prices = models.prices()
    before = forecast(
        tickets, cap_usd=settings.budget.cap_usd, prices=prices, soft_cap_factor=settings.budget.soft_cap_factor
    )
    # Phases the person's deferrals emptied are reported as cut too (the summary names the cut phases).
    gone = {t.id for t in step.tickets if t.state.is_terminal}
    phases = sorted({t.phase for t in tickets if t.phase is not None}, reverse=True)
    decided = [
        p
        for p in phases
        if p not in step.cut_phases
        and any(t.id in deferred for t in tickets if t.phase == p)
        and all(t.id in gone for t in tickets if t.phase == p)
    ]
    step = BudgetStep(step.tickets, before, step.after, [*deferred, *step.cut], [*decided, *step.cut_phases])
    return step, settings
