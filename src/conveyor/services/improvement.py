"""One improvement loop around the execution loop (issue 7 §1, seed 002 "Improvement Loops").

Before: :func:`readiness` (seed 002 ``IF initial_complete``), then :func:`plan_loop` scans, asks the research agent
when a model is configured, folds the findings into automations/issue_queue.md and decomposes the open ones into
at most ``max_tickets`` tickets, which :func:`file_tickets` adds to the backlog. The execution loop delivers them
(the flow's business). After: :func:`finish_loop` scans again, marks what is fixed, writes
automations/memory/loop_summary.md and commits "Improvement loop N". The caller holds the repository lease.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.adapters.atomic import write_text
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.issue_queue_file import ISSUE_QUEUE_PATH, load_queue, save_queue
from conveyor.adapters.run_store import RunStore
from conveyor.adapters.scanners import run_scanners
from conveyor.adapters.state_files import (
    load_run_state_if_exists,
    run_queue_path,
    run_state_path,
    save_run_queue,
    save_run_state,
)
from conveyor.adapters.tasks_md import new_tasks_document, read_tasks_file, write_tasks_file
from conveyor.domain.improvement import Filed, Triage, decompose, triage
from conveyor.domain.issue_queue import IssueQueue, QueueStatus
from conveyor.domain.loop_summary import LoopOutcome, render_summary
from conveyor.domain.run_state import RunQueue, RunState
from conveyor.domain.scan import ScanFinding, ScanResult
from conveyor.domain.ticket import Ticket
from conveyor.ports import Clock
from conveyor.services.backlog_loader import RUN_QUEUE_PATH, RUN_STATE_PATH, TASKS_PATH, load_backlog
from conveyor.settings import Settings

LOOP_SUMMARY_PATH = "automations/memory/loop_summary.md"
ARCHIVE_DIR = "docs/tasks"
_ANY_ID = re.compile(r"\b[A-Z][A-Z0-9]*-[A-Z][A-Z0-9]*-\d{3,}\b")

Research = Callable[[list[ScanResult], str], list[ScanFinding]]


def _backlog(root: Path) -> list[Ticket]:
    return list(load_backlog(root).backlog) if (root / TASKS_PATH).exists() else []


def readiness(root: Path) -> str | None:
    """Why the loop may not run yet (the initial backlog is not complete), or None. Tickets an earlier loop filed
    don't count: they are the loops' own."""
    auto = load_queue(root).filed_tickets()
    left = [t.id for t in _backlog(root) if not t.state.is_terminal and t.id not in auto]
    if not left:
        return None
    shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    return f"the initial backlog is not complete: {len(left)} ticket(s) still open ({shown}); run `conveyor run` first"


def previous_summary(root: Path) -> str:
    path = root / LOOP_SUMMARY_PATH
    return path.read_text(encoding="utf-8") if path.exists() else ""


@dataclass
class LoopPlan:
    loop: int
    before: list[ScanResult]
    research: list[ScanFinding]
    triage: Triage
    filed: list[Filed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_loop(
    root: Path, settings: Settings, *, deterministic: bool, max_tickets: int | None, research: Research | None
) -> LoopPlan:
    spec = settings.improvement
    queue = load_queue(root)  # parsed first: a malformed queue stops the loop before any tool runs
    backlog = _backlog(root)
    loop = queue.last_loop + 1
    before = run_scanners(root, spec)
    found = research(before, previous_summary(root)) if research is not None else []
    tri = triage(queue, before, found, loop=loop, ticket_states={t.id: t.state for t in backlog})
    filed_ids = tri.queue.filed_tickets()
    open_auto = sum(1 for t in backlog if t.id in filed_ids and not t.state.is_terminal)
    room = min(max_tickets or spec.max_tickets_per_loop, spec.max_open_tickets - open_auto)
    plan = LoopPlan(loop=loop, before=before, research=found, triage=tri)
    if room <= 0:
        plan.notes.append(
            f"no ticket filed: {open_auto} auto-created ticket(s) still open (cap {spec.max_open_tickets})"
        )
    taken = {t.id for t in backlog} | filed_ids | _archived_ids(root)
    plan.filed = decompose(
        tri.candidates,
        max_tickets=room,
        max_files=spec.max_diff_files,
        fixable_only=deterministic,
        prefix=settings.task_prefix,
        taken_ids=taken,
    )
    if deterministic:
        manual = sum(1 for f in tri.candidates if not f.fixable)
        if manual:
            plan.notes.append(f"{manual} finding(s) left open: no mechanical fixer, and no model (deterministic mode)")
    for note in (r.note for r in before if not r.available):
        plan.notes.append(f"scanner unavailable: {note}")
    return plan


def _archived_ids(root: Path) -> set[str]:
    folder = root / ARCHIVE_DIR
    found: set[str] = set()
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        found.update(_ANY_ID.findall(path.read_text(encoding="utf-8", errors="replace")))
    return found


def file_tickets(root: Path, settings: Settings, plan: LoopPlan, clock: Clock) -> IssueQueue:
    """Add the plan's tickets to TASKS.md, run-queue.json and run-state.json, mark their findings filed in the
    queue, and commit those files when tickets were filed."""
    owner = {f.fingerprint: filed.ticket.id for filed in plan.filed for f in filed.findings}
    entries = tuple(
        e.model_copy(update={"status": QueueStatus.FILED, "ticket": owner[e.fingerprint]})
        if e.fingerprint in owner
        else e
        for e in plan.triage.queue.entries
    )
    queue = plan.triage.queue.model_copy(update={"entries": entries})
    tickets = [filed.ticket for filed in plan.filed]
    save_queue(root, queue)
    if tickets:
        _add_to_backlog(root, settings, tickets, clock)
        # Committed before delivery: the execution loop starts from a clean checkout, and the record of what
        # was filed survives a crash of the run.
        GitRepo(root).commit_paths(
            [ISSUE_QUEUE_PATH, TASKS_PATH, RUN_QUEUE_PATH, RUN_STATE_PATH],
            f"chore(improve): Improvement loop {plan.loop}: file {len(tickets)} ticket(s)\n\n"
            + "\n".join(f"{t.id}: {t.title}" for t in tickets),
            settings.git.bot_name,
            settings.git.bot_email,
        )
    return queue


def _add_to_backlog(root: Path, settings: Settings, tickets: list[Ticket], clock: Clock) -> None:
    now = clock()
    existing = _backlog(root)
    path = root / TASKS_PATH
    document = read_tasks_file(path, TASKS_PATH) if path.exists() else new_tasks_document()
    write_tasks_file(path, document.sync(tickets))
    queue = RunQueue.of([*existing, *tickets], settings.task_prefix, settings.milestone.name)
    save_run_queue(run_queue_path(root), queue, display=RUN_QUEUE_PATH)
    state = load_run_state_if_exists(run_state_path(root), RUN_STATE_PATH) or RunState.start(
        RunStore(root).next_run_id(now), root.resolve().name, now, milestone=settings.milestone.name
    )
    for ticket in tickets:
        state = state.record(ticket, now)
    save_run_state(run_state_path(root), state, display=RUN_STATE_PATH)


def finish_loop(
    root: Path, settings: Settings, plan: LoopPlan, *, backend_label: str, run_id: str | None, clock: Clock
) -> LoopOutcome:
    """Scan again, mark fixed findings, write the loop summary and commit "Improvement loop N" (pushed to the remote
    when there is one)."""
    after = run_scanners(root, settings.improvement)
    backlog = _backlog(root)
    states = {t.id: t for t in backlog}
    queue = load_queue(root)
    tri = triage(queue, after, plan.research, loop=plan.loop, ticket_states={k: v.state for k, v in states.items()})
    save_queue(root, tri.queue)
    notes = list(plan.notes)
    if tri.recurring:
        notes.append(
            f"{len(tri.recurring)} finding(s) reported although their ticket is done (same rule, file and symbol; "
            f"not filed again): {', '.join(tri.recurring[:5])}"
        )
    outcome = LoopOutcome(
        loop=plan.loop,
        at=clock(),
        backend=backend_label,
        run_id=run_id,
        before=plan.before,
        after=after,
        tickets=[states.get(f.ticket.id, f.ticket) for f in plan.filed],
        findings_fixed=len(tri.fixed),
        suppressed=[s.fingerprint + f" ({s.reason})" for s in tri.newly_suppressed],
        notes=notes,
        queue=tri.queue,
        blocked=_blocked(root, [t for t in states.values() if t.is_held]),
    )
    write_text(root / LOOP_SUMMARY_PATH, render_summary(outcome))
    git = GitRepo(root)
    paths = [
        p
        for p in (ISSUE_QUEUE_PATH, LOOP_SUMMARY_PATH, TASKS_PATH, RUN_QUEUE_PATH, RUN_STATE_PATH)
        if (root / p).exists()
    ]
    outcome.commit = git.commit_paths(
        paths, f"Improvement loop {plan.loop}\n\n{outcome.headline()}", settings.git.bot_name, settings.git.bot_email
    )
    if outcome.commit and git.has_remote(settings.git.remote):
        git.push(settings.git.remote, f"HEAD:refs/heads/{settings.git.main_branch}")
    return outcome


def _blocked(root: Path, held: list[Ticket]) -> dict[str, str]:
    """Held tickets and the last reason recorded for each (the summary's gotchas)."""
    state = load_run_state_if_exists(run_state_path(root), RUN_STATE_PATH)
    out: dict[str, str] = {}
    for ticket in held:
        blockers = state.ticket(ticket.id).blockers if state is not None else ()
        out[ticket.id] = blockers[-1].reason if blockers else "held"
    return out


def counts(results: Sequence[ScanResult]) -> int:
    return sum(r.count for r in results if r.available)
