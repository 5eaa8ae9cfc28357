"""The bootstrap flow: a PRD, a review report or a kickstart → docs/TASKS.md, state files, a commit, artifacts.

Composition only: every step is a task of tasks/bootstrap.py over conveyor's services. Parameters are
serialisable, so the flow can run as a deployment unchanged.

Budget gate (issue 4 item 6): over the cap, the budget step cuts scope automatically (lowest-severity phases
first). If the projection is still over the cap, build-spec ``on_escalation`` decides:

- ``pause`` (the default): the flow run pauses with the typed HumanGate form (tasks/human_gate.py) and applies
  the answer: defer the chosen tickets (and every ticket depending on them) or keep only the most severe phase,
  then forecast again; or forecast with the raised cap, which run-state.json records as an explicit cap; or
  stop. Still over the cap after an answer: the form is asked again with the new numbers. An answer that
  cannot be applied (unknown id, a ticket under way) is refused and the form asked again, saying why. Nobody
  answering within ``budget_timeout_s`` follows the policy "stop". Nothing is written before the decision.
  The form is asked only where a person can answer: a deployment run (a worker runs it against a lasting
  API, so the UI or ``conveyor answer`` can resume it), or when ``interactive_budget`` is true. ``conveyor
  bootstrap`` keeps ``interactive_budget`` False and stops with the message instead: its Prefect API is
  usually ephemeral and dies with the CLI, so nobody could resume the pause.
- ``stop``, and ``skip`` / ``defer`` (they concern blocked tickets of the execution loop; at bootstrap there is
  no ticket to skip and deferring more is exactly the decision a person must take): the run stops with a
  message naming the three ways out; nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.runtime import flow_run

from blocks.github_token import resolve_github_token
from blocks.settings_layer import use_blocks
from conveyor.adapters.lease import RepositoryLease
from conveyor.adapters.run_store import RunStore
from conveyor.domain.build_spec import EscalationPolicy
from conveyor.domain.errors import ConveyorError
from conveyor.domain.models import ModelTable
from conveyor.domain.ticket import Ticket
from conveyor.ports import utcnow
from conveyor.services.agents import agent_backend, backend_name, model_table
from conveyor.services.bootstrap import BudgetStep, rebudget
from conveyor.services.bootstrap_gate import budget_question, interpret_decision, over_cap_message
from conveyor.services.bootstrap_inputs import BootstrapRequest
from conveyor.services.bootstrap_outputs import backlog_rows, summary_markdown
from conveyor.services.forges import github_forge
from conveyor.services.phase_issues import open_phase_issues
from conveyor.settings import Settings, load_settings
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
from tasks.human_gate import ask_budget_decision
from tasks.repo_slot import repo_slot

DEFAULT_BUDGET_TIMEOUT_S = 3600.0


def _run_name() -> str:
    params = flow_run.parameters or {}
    return str(params.get("run_id") or "bootstrap")


def _deployed() -> bool:
    """A deployment run: a worker runs it against a lasting API, where a person can answer a pause."""
    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def _budget_gate(
    base: list[Ticket],
    budget: BudgetStep,
    settings: Settings,
    models: ModelTable,
    timeout_s: float,
    notes: list[str],
) -> tuple[BudgetStep, Settings]:
    """Ask a person until the projection fits the cap, or stop (ConveyorError); nothing is written meanwhile.

    Every answer is applied to ``base`` (the backlog before any cut) with all deferrals chosen so far and the
    cap in force, so the automatic cut is redone against a raised cap instead of keeping a cut it no longer
    needs.
    """
    logger = get_run_logger()
    deferred: list[str] = []
    cap = settings.budget.cap_usd
    effective = settings
    problem: str | None = None
    while budget.after.over_cap:
        question = budget_question(budget, problem)
        answer = ask_budget_decision(question, timeout_s, suggested_cap_usd=budget.after.projected_usd * 1.1)
        if answer is None:
            raise ConveyorError(
                f"nobody answered the budget form within {timeout_s:g} s: stopped as the policy says, nothing "
                f"written ({over_cap_message(budget)})"
            )
        logger.info("budget decision: %s", answer.action)
        if answer.action == "stop":
            raise ConveyorError(f"stopped by the budget decision, nothing written ({over_cap_message(budget)})")
        try:
            chosen, new_cap = interpret_decision(
                answer.action, answer.defer, answer.new_cap_usd, base, budget, deferred, cap
            )
            budget, effective = rebudget(base, settings, models, utcnow, defer=[*deferred, *chosen], cap_usd=new_cap)
        except (ValueError, ConveyorError) as exc:
            problem = f"The previous answer was not applied: {exc}."
            continue
        problem = f"The previous answer ({answer.action}) was applied; the projection is still over the cap."
        deferred += chosen
        cap = new_cap
        if answer.action == "reduce_scope":
            notes.append(
                f"budget decision reduce_scope: deferred {', '.join(chosen)} and the tickets depending on them"
            )
        elif answer.action == "split_phases":
            notes.append(f"budget decision split_phases: deferred the {len(chosen)} open ticket(s) of the other phases")
        else:
            notes.append(f"budget decision raise_cap: cap raised to ${cap:.2f} (recorded in run-state.json)")
    return budget, effective


@contextmanager
def _undone_on_failure(root: Path) -> Iterator[list[str]]:
    """Files this run wrote before its commit; removed again when the run fails (nothing written on error)."""
    paths: list[str] = []
    try:
        yield paths
    except BaseException:
        for path in paths:
            (root / path).unlink(missing_ok=True)
        raise


def _settle_budget(
    tickets: list[Ticket], settings: Settings, *, interactive: bool, timeout_s: float, notes: list[str]
) -> tuple[BudgetStep, Settings]:
    """Forecast and cut; still over an explicit cap: ask a person (policy pause, someone can answer) or stop."""
    models = model_table(settings.agents)
    budget = budget_task(tickets, settings, models)
    if not budget.after.over_cap or settings.budget.cap_usd is None:
        return budget, settings
    if settings.on_escalation is not EscalationPolicy.PAUSE or not interactive:
        raise ConveyorError(over_cap_message(budget))
    return _budget_gate(tickets, budget, settings, models, timeout_s, notes)


@flow(name="bootstrap", flow_run_name=_run_name, validate_parameters=True)
def bootstrap(
    repo: str,
    *,
    prd: str | None = None,
    report: str | None = None,
    kickstart: str | None = None,
    archive: str | None = None,
    run_id: str | None = None,
    interactive_budget: bool = False,
    budget_timeout_s: float = DEFAULT_BUDGET_TIMEOUT_S,
) -> dict[str, Any]:
    """Plan the backlog of ``repo`` from one input (or the repository's own PRD); upsert on re-runs.

    ``interactive_budget``: still over the budget cap after the automatic cut, pause for a person's decision
    even outside a deployment run (module docstring); ``budget_timeout_s``: how long that pause waits.
    """
    logger = get_run_logger()
    given = [name for name, value in (("prd", prd), ("report", report), ("kickstart", kickstart)) if value]
    if len(given) > 1:
        raise ConveyorError(f"give one input, not {' and '.join(given)}")
    root = Path(repo)
    request = BootstrapRequest(root, prd=prd, report=report, kickstart=kickstart, archive=archive)
    use_blocks()  # the Prefect block layer of the settings, when CONVEYOR_BLOCKS names one
    settings = load_settings(root)
    run = run_id or RunStore(root).next_run_id(utcnow())
    mode = backend_name(settings)
    logger.info("run %s, agents: %s", run, "deterministic mode (no LLM)" if mode == "deterministic" else mode)
    with repo_slot(root), RepositoryLease(root, run_id=run, command="bootstrap"), _undone_on_failure(root) as scratch:
        notes = []
        recovered = recover_task(request)
        if recovered:
            notes.append(f"recovery: {recovered}")
            if recovered.startswith("resumed"):
                scratch.append("docs/TASKS.md")  # a copy: the archive itself stays
        backend = agent_backend(root, settings)
        parsed = parse_report_task(root, report) if report else None
        prd_step = ensure_prd_task(request, parsed, backend, run)
        if prd_step.written:
            scratch.append(prd_step.path)  # a re-run drafts it again from the new input
            notes.append(f"wrote {prd_step.path} ({len(prd_step.assumptions)} ASSUMPTION line(s))")
        elif kickstart:
            notes.append(f"the kickstart was not used: {prd_step.path} already exists and was planned")
        plan = plan_task(request=request, report=parsed, prd=prd_step, settings=settings, backend=backend, run_id=run)
        existing, merged = merge_task(root, plan.tickets)
        budget, effective = _settle_budget(
            merged.tickets,
            settings,
            interactive=interactive_budget or _deployed(),
            timeout_s=budget_timeout_s,
            notes=notes,
        )
        if settings.forge == "github":  # one issue per phase, linked from every ticket's issue column
            forge = github_forge(root, settings, resolve_github_token(settings.github.token_block))
            try:
                budget = replace(budget, tickets=open_phase_issues(forge, settings, budget.tickets))
            finally:
                forge.close()
        changed = budget.tickets != existing or prd_step.written
        output = None
        if changed:
            extra = [prd_step.path] if prd_step.written else []
            output = write_task(
                repo=root,
                tickets=budget.tickets,
                run_id=run,
                settings=effective,
                plan=plan,
                budget=budget,
                extra_paths=extra,
            )
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
