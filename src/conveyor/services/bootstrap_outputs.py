"""Bootstrap's outputs (seed 001 Steps 6-7): docs/TASKS.md, run-queue.json, run-state.json, one commit, and the
summary a person reads. Nothing is written when nothing changed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.adapters.git_repo import GitRepo, GitRepoError
from conveyor.adapters.state_files import (
    load_run_state_if_exists,
    run_queue_path,
    run_state_path,
    save_run_queue,
    save_run_state,
)
from conveyor.adapters.tasks_md import new_tasks_document, read_tasks_file, write_tasks_file
from conveyor.domain.bootstrap_merge import MergeResult
from conveyor.domain.budget import BudgetCaps, BudgetLedger, CapSource, open_estimates_usd
from conveyor.domain.errors import ConveyorError
from conveyor.domain.projections import format_tokens, tasks_status
from conveyor.domain.run_state import RunQueue, RunState
from conveyor.domain.ticket import Ticket
from conveyor.ports import Clock
from conveyor.services.agents import model_table
from conveyor.services.backlog_loader import RUN_QUEUE_PATH, RUN_STATE_PATH, TASKS_PATH
from conveyor.services.bootstrap import BudgetStep, PlanStep
from conveyor.settings import Settings


@dataclass
class OutputStep:
    written: list[str] = field(default_factory=list)
    commit: str | None = None


def _phases(tickets: list[Ticket]) -> int:
    return len({t.phase for t in tickets if t.phase is not None})


def commit_message(plan: PlanStep, tickets: list[Ticket]) -> str:
    total = sum(t.estimate_tokens or 0 for t in tickets if not t.state.is_terminal)
    what = "findings" if plan.kind == "report" else "requirements"
    phases = _phases(tickets)
    across = f" across {phases} phases" if phases else ""
    return (
        f"chore(orchestrator): Bootstrap tasks.md from {plan.source}\n\n"
        f"Parsed {plan.items} {what} into {len(tickets)} tasks{across}.\n"
        f"Estimated total: {format_tokens(total)} tokens."
    )


def write_outputs(
    repo: Path,
    tickets: list[Ticket],
    *,
    run_id: str,
    settings: Settings,
    plan: PlanStep,
    budget: BudgetStep,
    extra_paths: list[str],
    clock: Clock,
) -> OutputStep:
    """Write the backlog files and commit them (and a PRD bootstrap wrote) as the bot; the caller holds the lease."""
    try:
        git = GitRepo(repo)
    except GitRepoError as exc:
        raise ConveyorError(f"{repo} is not a git repository: bootstrap commits its backlog (git init first)") from exc
    now = clock()
    tasks_file = repo / TASKS_PATH
    document = read_tasks_file(tasks_file, TASKS_PATH) if tasks_file.exists() else new_tasks_document()
    write_tasks_file(tasks_file, document.sync(tickets))
    save_run_queue(
        run_queue_path(repo),
        RunQueue.of(tickets, settings.task_prefix, settings.milestone.name),
        display=RUN_QUEUE_PATH,
    )
    state = load_run_state_if_exists(run_state_path(repo), RUN_STATE_PATH) or RunState.start(
        run_id, repo.resolve().name, now, milestone=settings.milestone.name
    )
    for ticket in tickets:
        state = state.record(ticket, now)

    prices = model_table(settings.agents).prices()
    caps = BudgetCaps(
        run_usd=budget.after.cap_usd,
        run_cap_source=CapSource.EXPLICIT if settings.budget.cap_usd is not None else CapSource.DERIVED,
    )
    position = BudgetLedger(caps=caps).position(open_estimates_usd(tickets, prices), settings.budget.soft_cap_factor)
    save_run_state(run_state_path(repo), state.with_budget(position, now), display=RUN_STATE_PATH)
    paths = [TASKS_PATH, RUN_QUEUE_PATH, RUN_STATE_PATH, *extra_paths]
    sha = git.commit_paths(
        paths, commit_message(plan, tickets), author_name=settings.git.bot_name, author_email=settings.git.bot_email
    )
    return OutputStep(written=paths, commit=sha)


def backlog_rows(tickets: list[Ticket]) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "status": tasks_status(t.state, t.flags),
            "phase": t.phase if t.phase is not None else "",
            "severity": t.severity.value if t.severity else "",
            "title": t.title,
            "depends_on": ", ".join(t.depends_on),
            "estimate": format_tokens(t.estimate_tokens) if t.estimate_tokens else "",
            "tier": t.model_tier.value,
        }
        for t in tickets
    ]


def summary_markdown(
    plan: PlanStep, merge: MergeResult, budget: BudgetStep, output: OutputStep | None, notes: list[str]
) -> str:
    tickets = merge.tickets if not budget.cut else budget.tickets
    by_phase = Counter(t.phase for t in tickets if t.phase is not None)
    lines = [
        f"# Bootstrap from `{plan.source}`",
        "",
        f"- Read {plan.items} {'findings' if plan.kind == 'report' else 'requirements'}; "
        f"backlog of {len(tickets)} tickets.",
        f"- Added {len(merge.added)}, updated {len(merge.updated)}, obsolete {len(merge.obsoleted)}, "
        f"duplicates merged {len(merge.merged_duplicates)}.",
    ]
    if by_phase:
        lines.append("- Phases: " + ", ".join(f"P{p}: {n}" for p, n in sorted(by_phase.items())))
    b = budget.after
    lines.append(
        f"- Budget: projected ${b.projected_usd:.2f} of ${b.cap_usd:.2f} ({b.cap_source.value} cap), "
        f"{b.percent:.0f}% → mode {b.mode.value}" + (" — OVER CAP" if b.over_cap else "")
    )
    if budget.cut:
        lines.append(
            f"- Scope cut: phases {', '.join(map(str, budget.cut_phases))} deferred "
            f"({len(budget.cut)} tickets; projected before ${budget.before.projected_usd:.2f})"
        )
    if output is None:
        lines.append("- Nothing changed: no file written, no commit.")
    else:
        lines.append(f"- Commit: {output.commit or '(nothing to commit)'}")
    lines += [f"- {note}" for note in [*plan.notes, *notes]]
    return "\n".join(lines) + "\n"
