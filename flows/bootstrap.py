"""The bootstrap flow: a PRD, a review report or a kickstart → docs/TASKS.md, state files, a commit, artifacts.

Composition only: every step is a task of tasks/bootstrap.py over conveyor's services. Parameters are
serialisable, so the flow can run as a deployment unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from conveyor.adapters.lease import RepositoryLease
from conveyor.adapters.run_store import RunStore
from conveyor.domain.errors import ConveyorError
from conveyor.ports import utcnow
from conveyor.services.agents import agent_backend, backend_name, model_table
from conveyor.services.bootstrap_inputs import BootstrapRequest
from conveyor.services.bootstrap_outputs import backlog_rows, summary_markdown
from conveyor.settings import load_settings
from tasks.artifacts import PrefectArtifacts, artifact_key
from tasks.bootstrap import (
    budget_task,
    ensure_prd_task,
    merge_task,
    parse_report_task,
    plan_task,
    recover_task,
    write_task,
)


def _run_name() -> str:
    params = flow_run.parameters or {}
    return str(params.get("run_id") or "bootstrap")


@flow(name="bootstrap", flow_run_name=_run_name, validate_parameters=True)
def bootstrap(
    repo: str,
    *,
    prd: str | None = None,
    report: str | None = None,
    kickstart: str | None = None,
    archive: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Plan the backlog of ``repo`` from one input (or the repository's own PRD); upsert on re-runs."""
    logger = get_run_logger()
    given = [name for name, value in (("prd", prd), ("report", report), ("kickstart", kickstart)) if value]
    if len(given) > 1:
        raise ConveyorError(f"give one input, not {' and '.join(given)}")
    root = Path(repo)
    request = BootstrapRequest(root, prd=prd, report=report, kickstart=kickstart, archive=archive)
    settings = load_settings(root)
    run = run_id or RunStore(root).next_run_id(utcnow())
    mode = backend_name(settings)
    logger.info("run %s, agents: %s", run, "deterministic mode (no LLM)" if mode == "deterministic" else mode)
    with RepositoryLease(root, run_id=run, command="bootstrap"):
        notes = []
        recovered = recover_task(request)
        if recovered:
            notes.append(f"recovery: {recovered}")
        backend = agent_backend(root, settings)
        parsed = parse_report_task(root, report) if report else None
        prd_step = ensure_prd_task(request, parsed, backend, run)
        if prd_step.written:
            notes.append(f"wrote {prd_step.path} ({len(prd_step.assumptions)} ASSUMPTION line(s))")
        if kickstart and not prd_step.written:
            notes.append(f"the kickstart was not used: {prd_step.path} already exists and was planned")
        try:
            plan = plan_task(
                request=request, report=parsed, prd=prd_step, settings=settings, backend=backend, run_id=run
            )
            existing, merged = merge_task(root, plan.tickets)
            budget = budget_task(merged.tickets, settings, model_table(settings.agents))
            if budget.after.over_cap and settings.budget.cap_usd is not None:
                after = budget.after
                raise ConveyorError(
                    f"projected ${after.projected_usd:.2f} is over the cap ${after.cap_usd:.2f} even after deferring "
                    f"phases {budget.cut_phases or 'none'}: reduce the scope, split the work into phases, or raise "
                    "budget.cap_usd in automations/build-spec.yaml"
                )
            changed = budget.tickets != existing or prd_step.written
            output = None
            if changed:
                extra = [prd_step.path] if prd_step.written else []
                output = write_task(
                    repo=root,
                    tickets=budget.tickets,
                    run_id=run,
                    settings=settings,
                    plan=plan,
                    budget=budget,
                    extra_paths=extra,
                )
        except BaseException:
            # A PRD this run wrote and could not plan is removed: a re-run drafts it again from the new input.
            if prd_step.written:
                (root / prd_step.path).unlink(missing_ok=True)
            raise
    summary = summary_markdown(plan, merged, budget, output, notes)
    slug = root.resolve().name
    sink = PrefectArtifacts()
    sink.table(artifact_key(slug, "backlog"), backlog_rows(budget.tickets), f"Backlog of {slug} after bootstrap {run}")
    sink.markdown(artifact_key(slug, "bootstrap"), summary, f"Bootstrap {run} of {slug}")
    logger.info("%s", summary)
    return {
        "run_id": run,
        "flow_run_id": str(flow_run.id),
        "tickets": len(budget.tickets),
        "added": merged.added,
        "obsoleted": merged.obsoleted,
        "cut": budget.cut,
        "commit": output.commit if output else None,
        "changed": changed,
        "fallback": plan.fallback,
        "summary": summary,
    }
