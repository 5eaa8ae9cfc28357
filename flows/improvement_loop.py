"""The improvement loop flow (issue 7 §1, seed 002 "Improvement Loops"): scan, file, deliver, measure, commit.

Each loop runs only once the initial backlog is complete (otherwise it says why and stops). It scans with the
deterministic scanners (and asks the research agent when a model is configured), files at most ``max_tickets``
tickets into the backlog, delivers them with the execution loop as a subflow (the same review, QA gates and merge
queue as every ticket; in deterministic mode the mechanical fixers implement and the no-LLM review reviews), scans
again, and ends with the commit "Improvement loop N" holding automations/issue_queue.md and
automations/memory/loop_summary.md. Artifacts: the loop summary and the finding counts before and after.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from blocks.settings_layer import use_blocks
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.issue_queue_file import ISSUE_QUEUE_PATH
from conveyor.adapters.lease import RepositoryLease
from conveyor.adapters.run_store import RunStore
from conveyor.domain.errors import ConveyorError
from conveyor.domain.loop_summary import LoopOutcome, render_summary
from conveyor.domain.tracking import is_tracking_path
from conveyor.ports import utcnow
from conveyor.services.agents import agent_backend, backend_name
from conveyor.services.improvement import LoopPlan, file_tickets, finish_loop, plan_loop, readiness
from conveyor.services.preflight import dirty_paths
from conveyor.settings import Settings, load_settings
from flows.execution_loop import execution_loop
from tasks.artifacts import PrefectArtifacts, artifact_key
from tasks.repo_slot import repo_slot


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    return f"improve-{Path(str(params.get('repo', 'repo'))).name}"


def _settings(root: Path, backend: str | None) -> Settings:
    use_blocks()
    settings = load_settings(root)
    if backend:
        settings = settings.model_copy(update={"agents": settings.agents.model_copy(update={"backend": backend})})
    return settings


def _require_clean(root: Path, main: str) -> None:
    git = GitRepo(root)
    if git.branch_of() != main:
        raise ConveyorError(f"{root}: the improvement loop runs on {main}, the checkout is on {git.branch_of()}")
    dirty = [p for p in dirty_paths(root) if not is_tracking_path(p) and p != ISSUE_QUEUE_PATH]
    if dirty:
        raise ConveyorError(f"{root}: the checkout is not clean ({', '.join(dirty[:5])}); commit or stash first")


def _plan(root: Path, settings: Settings, max_tickets: int | None, label: str) -> LoopPlan:
    deterministic = backend_name(settings) == "deterministic"
    with RepositoryLease(root, run_id=RunStore(root).next_run_id(utcnow()), command="improve"):
        research = None
        if not deterministic:
            from conveyor.services.improvement_research import research_agent  # dspy: only with a model

            backend = agent_backend(root, settings)
            research = research_agent(root, settings, backend, f"improve-{label}") if backend else None
        plan = plan_loop(root, settings, deterministic=deterministic, max_tickets=max_tickets, research=research)
        file_tickets(root, settings, plan, utcnow)
    return plan


def _finish(root: Path, settings: Settings, plan: LoopPlan, run_id: str | None) -> LoopOutcome:
    label = backend_name(settings)
    with RepositoryLease(root, run_id=RunStore(root).next_run_id(utcnow()), command="improve"):
        return finish_loop(
            root,
            settings,
            plan,
            backend_label="deterministic mode (no LLM)" if label == "deterministic" else label,
            run_id=run_id,
            clock=utcnow,
        )


@flow(name="improvement-loop", flow_run_name=_run_name, validate_parameters=True)
async def improvement_loop(
    repo: str, *, loops: int = 1, backend: str | None = None, max_tickets: int | None = None
) -> dict[str, Any]:
    """Run ``loops`` improvement loops on ``repo``; ``max_tickets`` overrides build-spec
    ``improvement.max_tickets_per_loop``."""
    logger = get_run_logger()
    root = Path(repo).resolve()
    settings = _settings(root, backend)
    mode = backend_name(settings)
    logger.info("agents: %s", "deterministic mode (no LLM)" if mode == "deterministic" else mode)
    done: list[dict[str, Any]] = []
    stopped: str | None = None
    async with repo_slot(root):
        for _ in range(max(1, loops)):
            reason = await asyncio.to_thread(readiness, root)
            if reason is not None:
                stopped = reason
                logger.warning("improvement loop not run: %s", reason)
                break
            _require_clean(root, settings.git.main_branch)
            plan = await asyncio.to_thread(_plan, root, settings, max_tickets, root.name)
            logger.info("loop %d: %d finding(s), %d ticket(s) filed", plan.loop, _count(plan), len(plan.filed))
            run_id = None
            if plan.filed:
                cap = settings.improvement.loop_budget_usd
                result = await execution_loop(str(root), backend=backend, cap_usd=cap, announce_milestone=False)
                run_id = str(result.get("run_id"))
            outcome = await asyncio.to_thread(_finish, root, settings, plan, run_id)
            _publish(root.name, outcome)
            logger.info("loop %d: %s", outcome.loop, outcome.headline())
            done.append(_result(outcome))
    return {"loops": done, "stopped": stopped}


def _count(plan: LoopPlan) -> int:
    return sum(r.count for r in plan.before if r.available) + len(plan.research)


def _publish(slug: str, outcome: LoopOutcome) -> None:
    sink = PrefectArtifacts()
    sink.markdown(artifact_key(slug, "improvement-loop"), render_summary(outcome), f"Improvement loop {outcome.loop}")
    rows = [{k: ("unavailable" if v is None else v) for k, v in row.items()} for row in outcome.rows()]
    sink.table(artifact_key(slug, "improvement-findings"), rows, f"Findings before and after loop {outcome.loop}")


def _result(o: LoopOutcome) -> dict[str, Any]:
    return {
        "loop": o.loop,
        "before": o.total_before,
        "after": o.total_after,
        "by_scanner": o.rows(),
        "tickets": {t.id: t.state.value for t in o.tickets},
        "commit": o.commit,
        "run_id": o.run_id,
    }
