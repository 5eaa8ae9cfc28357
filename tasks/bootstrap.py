"""Prefect tasks of the bootstrap flow: one per step, thin wrappers over conveyor.services.bootstrap*.

Agent calls are never cached by Prefect (replay is Conveyor's own, keyed by what the agent was given).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from conveyor.domain.bootstrap_merge import MergeResult
from conveyor.domain.findings import ParsedReport
from conveyor.domain.models import ModelTable
from conveyor.domain.ticket import Ticket
from conveyor.ports import AgentBackend, utcnow
from conveyor.services import bootstrap as steps
from conveyor.services.bootstrap_inputs import BootstrapRequest, PrdStep, ensure_prd, recover
from conveyor.services.bootstrap_outputs import OutputStep, write_outputs
from conveyor.settings import Settings


@task(name="recover", cache_policy=NO_CACHE, persist_result=False)
def recover_task(request: BootstrapRequest) -> str | None:
    return recover(request)


@task(name="parse-report", cache_policy=NO_CACHE, persist_result=False)
def parse_report_task(repo: Path, folder: str) -> ParsedReport:
    return steps.read_report(repo, folder)


@task(name="ensure-prd", cache_policy=NO_CACHE, persist_result=False)
def ensure_prd_task(
    request: BootstrapRequest, report: ParsedReport | None, backend: AgentBackend | None, run_id: str
) -> PrdStep:
    return ensure_prd(request, report, backend, run_id)


@task(name="plan", cache_policy=NO_CACHE, persist_result=False)
def plan_task(
    *,
    request: BootstrapRequest,
    report: ParsedReport | None,
    prd: PrdStep,
    settings: Settings,
    backend: AgentBackend | None,
    run_id: str,
) -> steps.PlanStep:
    if report is not None:
        return steps.plan_from_report(report, request, settings)
    return steps.plan_from_prd(prd.path, request, settings, backend, run_id)


@task(name="merge", cache_policy=NO_CACHE, persist_result=False)
def merge_task(repo: Path, fresh: list[Ticket]) -> tuple[list[Ticket], MergeResult]:
    return steps.merge_with_existing(repo, fresh, utcnow)


@task(name="budget", cache_policy=NO_CACHE, persist_result=False)
def budget_task(tickets: list[Ticket], settings: Settings, models: ModelTable) -> steps.BudgetStep:
    return steps.budget(tickets, settings, models, utcnow)


@task(name="write-backlog", cache_policy=NO_CACHE, persist_result=False)
def write_task(
    *,
    repo: Path,
    tickets: list[Ticket],
    run_id: str,
    settings: Settings,
    plan: steps.PlanStep,
    budget: steps.BudgetStep,
    extra_paths: list[str],
) -> OutputStep:
    return write_outputs(
        repo, tickets, run_id=run_id, settings=settings, plan=plan, budget=budget, extra_paths=extra_paths, clock=utcnow
    )
