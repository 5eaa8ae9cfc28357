"""The execution loop flow (issue 5): tickets delivered in parallel subflows, integrated by one merge queue.

Composition only: preflight, lease, reconciliation, scheduling, delivery and integration are conveyor's
services. Per turn the loop re-reads TASKS.md (a person's edits win), syncs with origin, plans a dispatch
(ready set by critical path, touch sets and predicted conflicts apart, budget mode), starts one
``deliver-ticket`` subflow per ticket, and hands each READY ticket to the merge queue. It stops when the
backlog is finished, on a deadlock (reported), on ``abort``, on a frozen budget, or when rewards decline
and build-spec ``on_decline`` is ``halt`` (with ``replan``, the default, the remaining tickets are re-planned
and the run goes on). Tracking files are committed at the end (and within squash
commits), and the final report goes to an artifact and to automations/runs/<run-id>/record/REPORT.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from blocks.github_token import resolve_github_token
from blocks.settings_layer import use_blocks
from conveyor.adapters.atomic import write_text
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.lease import RepositoryLease
from conveyor.adapters.run_store import RunStore
from conveyor.adapters.state_files import load_run_state_if_exists, run_state_path
from conveyor.domain.budget import BudgetMode
from conveyor.domain.errors import ConveyorError
from conveyor.domain.run import RunStatus, append_event, complete_run
from conveyor.domain.scheduling import plan_dispatch
from conveyor.domain.ticket import State, Ticket
from conveyor.ports import utcnow
from conveyor.services.agents import agent_backend, backend_name
from conveyor.services.completion import on_done, reward_declining
from conveyor.services.delivery import hold_if_open
from conveyor.services.escalation import Next
from conveyor.services.integration import IntegrationStatus, integrate
from conveyor.services.loop_setup import build_workspace, reconcile, remove_stray_temp_files, sync_with_origin
from conveyor.services.preflight import preflight
from conveyor.services.qa_records import run_record
from conveyor.services.replan import replan
from conveyor.services.run_report import RunOutcome, backlog_table, final_report, ticket_markdown
from conveyor.services.tracker import TRACKED_STATE_FILES
from conveyor.services.workspace import Workspace, register, unregister
from conveyor.settings import Settings, load_settings
from flows.deliver_ticket import deliver_ticket
from tasks.artifacts import PrefectArtifacts, ProgressArtifact, artifact_key
from tasks.events import PrefectEvents
from tasks.limiter import PrefectLimiter, limit_name
from tasks.repo_slot import repo_slot
from tasks.ticket_gate import ask_run_budget

BetweenTickets = Callable[[Workspace, str], None]
_hooks: list[BetweenTickets] = []


def add_between_tickets_hook(hook: BetweenTickets) -> None:
    """Run ``hook(workspace, ticket_id)`` after each ticket finishes (the optimiser of a later issue uses it)."""
    _hooks.append(hook)


def _run_name() -> str:
    from prefect.runtime import flow_run

    return str((flow_run.parameters or {}).get("run_id") or "execution-loop")


def _settings(root: Path, workers: int | None, backend: str | None) -> Settings:
    use_blocks()  # the Prefect block layer of the settings, when CONVEYOR_BLOCKS names one
    settings = load_settings(root, {"workers": workers})
    if backend:
        settings = settings.model_copy(update={"agents": settings.agents.model_copy(update={"backend": backend})})
    return settings


def resolve_run_id(root: Path, run_id: str | None, resume: bool) -> str:
    if run_id:
        return run_id
    if resume:
        state = load_run_state_if_exists(run_state_path(root))
        if state is not None:
            return state.run_id
    return RunStore(root).next_run_id(utcnow())


class _Loop:
    def __init__(self, ws: Workspace, *, interactive: bool, timeout_s: float, slug: str) -> None:
        self.ws = ws
        self.interactive = interactive
        self.timeout_s = timeout_s
        self.slug = slug
        self.outcome = RunOutcome(run_id=ws.run_id, backend=ws.backend_label)
        self.running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self.rewards: list[float] = []
        self.completed: list[str] = []  # tickets done this run, in order (the re-plan's brief)
        self.waiting: set[str] = set()  # held tickets whose subflow returned without a decision this run
        self.sink = PrefectArtifacts()
        self.progress = ProgressArtifact(artifact_key(slug, "progress"), f"Execution loop {ws.run_id} of {slug}")
        self.logger = get_run_logger()

    def _start(self, ticket_id: str) -> None:
        coro = deliver_ticket(
            str(self.ws.repo),
            self.ws.run_id,
            ticket_id,
            interactive=self.interactive,
            escalation_timeout_s=self.timeout_s,
        )
        self.running[ticket_id] = asyncio.ensure_future(coro)

    def _resumable(self) -> list[Ticket]:
        """Tickets under way (a resumed run, or sent back by the merge queue) that no subflow is delivering.

        In an interactive run a held ticket (blocked, awaiting approval) is dispatched too, once: its subflow asks
        the person again. Without anyone to answer it stays held for the policy, a TASKS.md edit or a later run.
        """
        found = []
        for ticket in self.ws.tracker.backlog:
            if ticket.id in self.running or ticket.id in self.waiting or ticket.state.is_terminal:
                continue
            if (ticket.is_held and self.interactive) or (ticket.state.is_active and not ticket.is_held):
                found.append(ticket)
        return found

    def _conflicts(self, a: Ticket, b: Ticket) -> bool:
        entry_a, entry_b = self.ws.worktrees.get(a.id), self.ws.worktrees.get(b.id)
        if entry_a is None or entry_b is None:
            return False
        return bool(self.ws.worktrees.predict_conflict(entry_a.branch, entry_b.branch))

    def _dispatch(self) -> BudgetMode:
        tracker = self.ws.tracker
        for taken in tracker.refresh():
            self.logger.info("TASKS.md edit honoured: %s", taken)
            self.outcome.notes.append(f"TASKS.md edit honoured: {taken}")
        note = sync_with_origin(self.ws)
        if note:
            self.logger.info("%s", note)
            self.outcome.notes.append(note)
        mode = tracker.position().mode
        for ticket in self._resumable():
            self._start(ticket.id)
        running = [tracker.ticket(tid) for tid in self.running]
        plan = plan_dispatch(
            tracker.backlog, running, workers=self.ws.settings.workers, mode=mode, conflicts=self._conflicts
        )
        for ticket in plan.start:
            self.logger.info("dispatch %s: %s", ticket.id, ticket.title)
            self._start(ticket.id)
        return mode

    async def run(self) -> None:
        while True:
            mode = self._dispatch()
            if not self.running:
                if mode is BudgetMode.FROZEN and self.ws.tracker.backlog.ready():
                    if await self._budget_answered():
                        continue
                    self.outcome.stopped = "budget frozen: the projected cost is over the cap; no new tickets start"
                    self.ws.tracker.run_blocker(self.outcome.stopped)
                    return
                deadlock = self.ws.tracker.backlog.deadlock()
                if deadlock is not None:
                    self.outcome.stopped = f"deadlock: {deadlock.describe()}"
                    self.ws.tracker.run_blocker(self.outcome.stopped)
                    return
                return
            finished, _ = await asyncio.wait(self.running.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                result = task.result()
                ticket_id = result["ticket_id"]
                del self.running[ticket_id]
                if await self._finished(ticket_id, result) is Next.ABORT:
                    await self._abort(ticket_id, result)
                    return

    async def _budget_answered(self) -> bool:
        """A frozen budget pauses the whole run for a person (interactive runs); True when the cap was raised."""
        if not self.interactive:
            return False
        position = self.ws.tracker.position()
        question = (
            f"Budget frozen: projected ${position.projected_usd:.4f} is {position.percent:.0f} % of the "
            f"${position.cap_usd:.2f} cap; no new ticket starts. Raise the cap or stop."
        )
        self.logger.warning("%s (answer in the UI or with `conveyor answer run`)", question)
        answer = await ask_run_budget(question, self.timeout_s)
        if answer is None or answer.action == "stop" or answer.new_cap_usd is None:
            return False
        with self.ws.tracker.lock:
            caps = self.ws.tracker.ledger.caps.model_copy(update={"run_usd": answer.new_cap_usd})
            self.ws.tracker.ledger = self.ws.tracker.ledger.model_copy(update={"caps": caps})
        self.outcome.notes.append(f"budget cap raised to ${answer.new_cap_usd:.2f} by a person")
        return True

    async def _finished(self, ticket_id: str, result: dict[str, Any]) -> Next:
        status = result["status"]
        if status == Next.ABORT.value:
            return Next.ABORT
        if status == Next.WAIT.value:
            self.waiting.add(ticket_id)
        if status == "ready":
            try:
                merged = await asyncio.to_thread(integrate, self.ws, ticket_id, result["qa_tree"])
            except Exception as exc:
                self.logger.exception("%s: integration failed", ticket_id)
                reason = f"integration failed: {type(exc).__name__}: {exc}"
                await asyncio.to_thread(hold_if_open, self.ws, ticket_id, reason)
                self.outcome.notes.append(f"{ticket_id}: {reason}")
                return Next.CONTINUE
            if merged.status is IntegrationStatus.MERGED and merged.commit:
                self.outcome.merges.append((ticket_id, merged.commit))
            elif merged.status is IntegrationStatus.REVERTED:
                self.outcome.notes.append(f"{ticket_id}: {merged.detail}; merge reverted")
        ticket = self.ws.tracker.ticket(ticket_id)
        if ticket.state is State.DONE and not ticket.reward:
            total = await asyncio.to_thread(on_done, self.ws, ticket)
            self.completed.append(ticket_id)
            if self.rewards:
                self.outcome.reward_deltas.append((ticket_id, round(total - self.rewards[-1], 4)))
            self.rewards.append(total)
            if reward_declining(self.rewards) and self.ws.settings.on_decline == "halt":
                self.outcome.stopped = "rewards declined three completions in a row (on_decline: halt)"
                self.ws.tracker.run_blocker(self.outcome.stopped)
                return Next.ABORT
            if reward_declining(self.rewards):
                report = await asyncio.to_thread(replan, self.ws, self.completed)
                note = f"rewards declined three completions in a row after {ticket_id}: re-plan, {report.describe()}"
                self.logger.warning("%s", note)
                self.outcome.notes.append(note)
                self.rewards = [total]  # the re-planned backlog starts a new trend
        await asyncio.to_thread(self._publish, ticket_id)  # off the event loop: sibling subflows keep going
        for hook in _hooks:
            hook(self.ws, ticket_id)
        return Next.CONTINUE

    async def _abort(self, ticket_id: str, result: dict[str, Any]) -> None:
        if not self.outcome.stopped:
            self.outcome.stopped = f"aborted at {ticket_id}: {result.get('reason') or 'abort'}"
        for task in self.running.values():
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)
        self.running.clear()

    def _publish(self, ticket_id: str) -> None:
        tracker = self.ws.tracker
        ticket = tracker.ticket(ticket_id)
        self.sink.markdown(
            artifact_key(self.slug, f"ticket-{ticket_id}"),
            ticket_markdown(ticket, tracker.journal_of(ticket_id)),
            f"{ticket_id} in run {self.ws.run_id}",
        )
        tickets = list(tracker.backlog)
        finished = sum(1 for t in tickets if t.state.is_terminal)
        self.progress.update(100.0 * finished / max(1, len(tickets)))


@flow(name="execution-loop", flow_run_name=_run_name, validate_parameters=True)
async def execution_loop(
    repo: str,
    *,
    run_id: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    backend: str | None = None,
    interactive: bool = False,
    escalation_timeout_s: float = 3600.0,
    cap_usd: float | None = None,
    announce_milestone: bool = True,
) -> dict[str, Any]:
    """Deliver the backlog of ``repo``; ``resume`` continues the run recorded in run-state.json; ``cap_usd``
    replaces the build-spec's budget cap for this run (an improvement loop's budget); ``announce_milestone``:
    emit ``conveyor.milestone.ready`` when the backlog is finished (an improvement loop's run does not, so a
    nightly loop does not cut a release each night through the release automation)."""
    logger = get_run_logger()
    root = Path(repo).resolve()
    settings = _settings(root, workers, backend)
    if cap_usd is not None:
        settings = settings.model_copy(update={"budget": settings.budget.model_copy(update={"cap_usd": cap_usd})})
    run = resolve_run_id(root, run_id, resume)
    if resume:
        for path in remove_stray_temp_files(root):
            logger.info("removed %s (an interrupted write)", path)
    check = preflight(root, settings, resume=resume, own_run_id=run)
    if not check.ok:
        raise ConveyorError(check.describe())
    for note in check.notes:
        logger.info("preflight: %s", note)
    mode = backend_name(settings)
    logger.info("run %s, agents: %s", run, "deterministic mode (no LLM)" if mode == "deterministic" else mode)
    slug = root.name
    async with repo_slot(root, inner=RepositoryLease(root, run_id=run, command="run")):
        backend_ = agent_backend(root, settings)
        token = None
        if settings.forge == "github":  # the Secret block is loaded off the event loop (a sync Prefect call)
            token = await asyncio.to_thread(resolve_github_token, settings.github.token_block)
        ws = build_workspace(
            root,
            run,
            settings,
            backend_,
            clock=utcnow,
            events=PrefectEvents(),
            cap_usd=check.cap_usd,
            cap_source=check.cap_source,
            github_token=token,
        )
        if mode in ("anthropic", "claude-code"):  # the scripted backend makes no LLM call: nothing to cap
            ws.limiter = PrefectLimiter(max(1, settings.workers), name=limit_name(slug))
        register(ws)
        try:
            with ws.worktrees.runs_without_gc():
                reconciled = reconcile(ws)
                run_record(ws)
                loop = _Loop(ws, interactive=interactive, timeout_s=escalation_timeout_s, slug=slug)
                loop.outcome.notes += check.notes + reconciled.notes
                await loop.run()
            report = final_report(ws.tracker, loop.outcome)
            write_text(ws.store.record_dir(run) / "REPORT.md", report)
            _close_record(ws, loop.outcome.stopped)
            if announce_milestone and not loop.outcome.stopped and not ws.tracker.backlog.remaining():
                # Every ticket is finished: what a milestone-release automation waits for.
                ws.tracker.events.emit(
                    "conveyor.milestone.ready",
                    resource={"id": settings.milestone.name, "run": run, "repo": slug, "path": str(root)},
                    payload={"milestone": settings.milestone.name, "version": settings.milestone.version},
                )
            commit = _checkpoint(ws, f"chore(orchestrator): Run {run} checkpoint")
        finally:
            unregister(ws)
    sink = PrefectArtifacts()
    sink.table(artifact_key(slug, "backlog"), backlog_table(ws.tracker), f"Backlog of {slug} after run {run}")
    sink.markdown(artifact_key(slug, "run-report"), report, f"Run report {run} of {slug}")
    tickets = list(ws.tracker.backlog)
    return {
        "run_id": run,
        "stopped": loop.outcome.stopped,
        "done": sorted(t.id for t in tickets if t.state is State.DONE),
        "open": sorted(t.id for t in tickets if not t.state.is_terminal),
        "merges": [sha for _, sha in loop.outcome.merges],
        "checkpoint": commit,
        "report": report,
    }


def _close_record(ws: Workspace, stopped: str) -> None:
    """RUN.json: PASSED when the run finished its work; a stopped run stays open for its resume."""
    record = run_record(ws)
    now = utcnow()
    if stopped:
        ws.store.save(append_event(record, "run.stopped", stopped, now))
    elif not record.is_finished:
        ws.store.save(complete_run(record, RunStatus.PASSED, now))


def _checkpoint(ws: Workspace, message: str) -> str | None:
    """Commit the tracking files (and the run's records) on main, if they changed since the last commit."""
    with ws.integration_lock, ws.tracker.lock:
        paths = [p for p in TRACKED_STATE_FILES if (ws.repo / p).exists()]
        paths += [
            p
            for p in (
                "docs/tasks/orchestrator-learnings.json",
                "docs/reports/deferred/deferred-errors.md",
                f"automations/runs/{ws.run_id}",
                "automations/runs/.gitignore",
            )
            if (ws.repo / p).exists()
        ]
        git = GitRepo(ws.repo)
        sha = git.commit_paths(paths, message, ws.settings.git.bot_name, ws.settings.git.bot_email)
        if sha is not None:
            ws.forge.push_main()
        return sha
