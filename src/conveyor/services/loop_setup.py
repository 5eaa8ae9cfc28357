"""Setting up an execution-loop run: the workspace, crash reconciliation, and the sync with origin.

Resume (issue 5 §7) never depends on Prefect marking a killed run Crashed: the lease (a dead holder's lease is
reclaimed), run-state.json, TASKS.md, the worktree ledger and git decide. Reconciliation:

- stray temporary files of an interrupted atomic write are removed (the file itself is whole, old or new);
- the worktree ledger is brought in line with git (commits made after the last ledger write are recorded);
- a ticket whose squash commit is on main (its trailer) is done, whatever the state files say: never merged
  twice; a ticket recorded in a later stage whose branch is gone goes back to the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conveyor.adapters.git_repo import GitRepo, GitRepoError
from conveyor.adapters.run_store import RunStore
from conveyor.adapters.sandbox.select import select_sandbox
from conveyor.adapters.worktrees import WorktreeManager
from conveyor.domain.budget import CapSource
from conveyor.domain.errors import ConveyorError
from conveyor.domain.ticket import State, Ticket, transition
from conveyor.domain.tracking import is_tracking_path
from conveyor.ports import AgentBackend, Clock, EventSink
from conveyor.services.agents import backend_name, model_table
from conveyor.services.forges import make_forge
from conveyor.services.tracker import Tracker
from conveyor.services.workspace import Workspace
from conveyor.settings import Settings


def build_workspace(
    repo: Path,
    run_id: str,
    settings: Settings,
    backend: AgentBackend | None,
    *,
    clock: Clock,
    events: EventSink | None,
    cap_usd: float | None,
    cap_source: str,
    github_token: str | None = None,
) -> Workspace:
    models = model_table(settings.agents)
    tracker = Tracker(
        repo,
        run_id,
        settings,
        models,
        clock=clock,
        events=events,
        cap_usd=cap_usd,
        cap_source=CapSource.EXPLICIT if cap_source == "explicit" else CapSource.DERIVED,
    )
    store = RunStore(repo)
    store.ensure_gitignore()
    git = settings.git
    return Workspace(
        repo=repo,
        run_id=run_id,
        settings=settings,
        backend=backend,
        backend_label=backend_name(settings),
        sandbox=select_sandbox(settings.agents.sandbox),
        worktrees=WorktreeManager(
            repo, main_branch=git.main_branch, author_name=git.bot_name, author_email=git.bot_email, clock=clock
        ),
        store=store,
        tracker=tracker,
        forge=make_forge(repo, settings, github_token),
        models=models,
        clock=clock,
    )


def remove_stray_temp_files(repo: Path) -> list[str]:
    """``.<name>.<random>.tmp`` files an interrupted atomic write left next to Conveyor's files."""
    removed = []
    # .conveyor itself shallow (its worktrees are the tickets' checkouts); the replay cache below it in full.
    folders = (
        (repo / "docs", True),
        (repo / "automations", True),
        (repo / ".conveyor", False),
        (repo / ".conveyor" / "replay", True),
    )
    for folder, deep in folders:
        if not folder.is_dir():
            continue
        for path in folder.rglob(".*.tmp") if deep else folder.glob(".*.tmp"):
            rel = path.relative_to(repo).as_posix()
            path.unlink(missing_ok=True)
            removed.append(rel)
    return removed


@dataclass
class Reconciled:
    notes: list[str]


def reconcile(ws: Workspace) -> Reconciled:
    """Bring state files in line with git after a crash (module docstring); returns what changed."""
    notes: list[str] = []
    ws.worktrees.reconcile()
    for ticket in list(ws.tracker.backlog):
        if ticket.state.is_terminal and ticket.state is not State.DONE:
            continue
        merged = ws.forge.merged_commit(ticket.id)
        recorded = ws.tracker.state.ticket(ticket.id).stage.stage
        if ticket.state is State.DONE and merged is None and recorded in (State.INTEGRATING, State.OPS):
            # Killed while the files were being written just before the squash commit: TASKS.md already says
            # done, run-state.json still says integrating, and main has no squash commit. It was never merged.
            back = ticket.model_copy(update={"state": State.INTEGRATING, "completed_at": None})
            ws.tracker.apply(back, event="requeued", detail="recorded done, but not on main: merging it again")
            notes.append(f"{ticket.id}: recorded done but not merged; back to the merge queue")
            continue
        if merged is not None and ticket.state is not State.DONE:
            done = _force_done(ticket, ws.clock)
            ws.tracker.apply(done, event="done", detail=f"found merged on main as {merged[:10]} (resumed run)")
            notes.append(f"{ticket.id}: already merged as {merged[:10]}; marked done")
        elif ticket.state.is_active and ws.worktrees.get(ticket.id) is None and ticket.state is not State.QA:
            requeued = ticket.model_copy(update={"state": State.QUEUED})
            ws.tracker.apply(requeued, event="requeued", detail="its worktree is gone; starting again")
            notes.append(f"{ticket.id}: no worktree left for stage {ticket.state.value}; queued again")
    return Reconciled(notes)


def _force_done(ticket: Ticket, clock: Clock) -> Ticket:
    state = ticket
    for target in (State.INTEGRATING, State.DONE):
        try:
            state = transition(state, target, at=clock())
        except ConveyorError:
            break
    if state.state is not State.DONE:
        state = ticket.model_copy(update={"state": State.DONE, "completed_at": clock(), "flags": frozenset()})
    return state


def sync_with_origin(ws: Workspace) -> str | None:
    """Fetch, and take in what people pushed to main (seed 001 step 1); None, or what happened.

    A fast-forward keeps the working tree's tracking files; a pushed change to the tracking files themselves
    is a conflict that stops the run (ConveyorError) with a report.
    """
    git = GitRepo(ws.repo)
    remote = ws.settings.git.remote
    main = ws.settings.git.main_branch
    if not git.has_remote(remote):
        return None
    try:
        git.fetch(remote)
    except GitRepoError as exc:
        return f"sync: fetch from {remote} failed ({exc}); working on the local main"
    upstream = f"{remote}/{main}"
    try:
        theirs = git.rev_parse(upstream)
    except GitRepoError:
        return None
    ours = git.rev_parse(main)
    if git.is_ancestor(theirs, ours):
        return None
    with ws.integration_lock, ws.tracker.lock:
        touched = [p for p in git.diff_names(git.merge_base(ours, theirs) or ours, theirs) if is_tracking_path(p)]
        if touched:
            raise ConveyorError(
                f"sync with {upstream}: someone pushed changes to Conveyor's tracking files ({', '.join(touched)}); "
                "the run stops so that nothing is overwritten. Merge them by hand, then run `conveyor run --resume`."
            )
        if git.is_ancestor(ours, theirs):
            git.reset_keep(theirs)
            return f"sync: fast-forwarded main to {upstream} ({theirs[:10]})"
        merged, conflicts = git.merge_tree(theirs, ours)
        if merged is None:
            raise ConveyorError(f"sync with {upstream}: main and {upstream} conflict in {', '.join(conflicts)}")
        commit = git.commit_tree(
            merged,
            [ours, theirs],
            f"Merge {upstream} into {main}",
            ws.settings.git.bot_name,
            ws.settings.git.bot_email,
        )
        git.reset_keep(commit)
        return f"sync: merged {upstream} ({theirs[:10]}) into main"
