"""One git worktree per ticket (ARCHITECTURE.md §4): .conveyor/worktrees/<ticket-id> on the ticket's branch.

The branch (``conveyor/<ticket-id-lowercase>`` unless TASKS.md names another) starts from main's tip, or from a
given base; :meth:`WorktreeManager.ensure` is idempotent, so a run resumed after a crash finds the worktree it left
(and repairs what a crash can leave: a worktree whose ``git worktree add`` never finished, a vanished directory, a
rebase stopped half-way). Nothing is lost: uncommitted work is committed to the ticket branch before a removal or a
rebase, and work found off the branch (a stopped rebase, a detached HEAD) is kept on a ``<branch>-rescue`` branch
first. The branch always outlives its worktree.

Commits use the bot identity given to the manager, passed per git command; the user's config is never changed.
Every operation updates the ledger (.conveyor/ledger.json, conveyor.domain.ledger): branch, worktree, runs and
every commit seen on the branch. Threads may work in different tickets' worktrees at once: commits and rebases in
separate worktrees run in parallel, while what changes the repository's shared administrative state (creating
branches and worktrees, removing them, config) is serialised per repository. Keep automatic gc off meanwhile:
:meth:`WorktreeManager.runs_without_gc` (conveyor.adapters.worktrees_gc says why).
"""

from __future__ import annotations

import builtins
import functools
from contextlib import AbstractContextManager

from conveyor.adapters.crash import crash_point
from conveyor.adapters.git_repo import GitRepo, WorktreeInfo
from conveyor.adapters.worktrees_base import RebaseResult, WorktreeBase, WorktreeError
from conveyor.adapters.worktrees_gc import runs_without_gc
from conveyor.adapters.worktrees_ledger import ensure_conveyor_dir
from conveyor.domain.errors import NotFoundError
from conveyor.domain.ids import is_run_id, is_ticket_id
from conveyor.domain.ledger import (
    CommitSource,
    Ledger,
    LedgerCommit,
    Operation,
    WorktreeEntry,
    WorktreeState,
    default_branch,
)

__all__ = ["RebaseResult", "WorktreeError", "WorktreeManager"]


class WorktreeManager(WorktreeBase):
    """The ticket worktrees of the repository at ``repo`` (the main checkout's top directory).

    ``WorktreeManager(repo, *, main_branch="main", author_name=..., author_email=..., clock=...)``.
    """

    # --- queries -----------------------------------------------------------------------------------

    def list(self, *, include_removed: bool = False) -> builtins.list[WorktreeEntry]:
        """The ledger's entries by ticket id: the active worktrees, and the removed ones with ``include_removed``."""
        return self.ledger().entries(include_removed=include_removed)

    def predict_conflict(self, branch_a: str, branch_b: str) -> builtins.list[str]:
        """The paths that merging the two branches would leave in conflict; empty when they merge cleanly.

        ``git merge-tree --write-tree`` merges in memory: no worktree, index or ref changes.
        """
        return GitRepo(self.repo).merge_tree_conflicts(branch_a, branch_b)

    def runs_without_gc(self) -> AbstractContextManager[None]:
        """``gc.auto=0`` in the repository's local config for the block, then the previous value again."""
        return runs_without_gc(self.repo)

    # --- operations --------------------------------------------------------------------------------

    def ensure(
        self, ticket_id: str, run_id: str, *, base: str | None = None, branch: str | None = None
    ) -> WorktreeEntry:
        """The ticket's worktree, made if missing, reused as it is otherwise (idempotent: resume finds it).

        A missing branch is created from ``base`` (any commit-ish) or main's tip; an existing branch is used as it
        is and ``base`` is ignored. ``branch`` overrides the default name (the TASKS.md branch column).
        """
        if not is_run_id(run_id):
            raise ValueError(f"{run_id!r} is not a run id (RUN-YYYYMMDD-HHMM[-N])")
        path = self.worktree_path(ticket_id)
        with self._ticket_lock(ticket_id):
            known = self.get(ticket_id)
            name = branch or (known.branch if known else default_branch(ticket_id))
            created_base: str | None = None
            rescued: builtins.list[LedgerCommit] = []
            with self._git_lock:
                main = GitRepo(self.repo)
                ensure_conveyor_dir(self.repo)
                info = self._registered(main, path)
                if info is not None and (info.prunable or not path.is_dir() or info.locked == "initializing"):
                    # The directory vanished, or `git worktree add` was killed before it finished the checkout:
                    # no one has worked in it, so it is made again.
                    main.worktree_remove(path, force=True)
                    info = None
                if not main.branch_exists(name):
                    created_base = main.rev_parse(base or self.main_branch)
                    main.create_branch(name, created_base)
                if info is None:
                    if path.exists() and any(path.iterdir()):
                        raise WorktreeError(f"{path} exists but is not a worktree of {self.repo}: move it away first")
                    path.parent.mkdir(parents=True, exist_ok=True)
                    main.worktree_add(path, name)
            worktree = GitRepo(path)
            rescued = self._recover(worktree, ticket_id, name, known.run_id if known else run_id)
            if worktree.branch_of() != name:
                raise WorktreeError(
                    f"{path} has {worktree.branch_of() or 'a detached HEAD'} checked out, not {name}; "
                    "check out the ticket branch there, or remove the worktree"
                )
            if created_base is not None:
                start = created_base
            elif known is not None and known.branch == name:
                start = known.base
            else:
                start = main.merge_base(self.main_branch, name) or main.rev_parse(name)

            def change(entry: WorktreeEntry | None) -> WorktreeEntry:
                if entry is None:
                    entry = WorktreeEntry.new(
                        ticket_id, branch=name, base=start, run_id=run_id, at=self.clock(), operation=Operation.ENSURE
                    )
                return self._touch(
                    entry, Operation.ENSURE, rescued, state=WorktreeState.ACTIVE, run_id=run_id, base=start, branch=name
                )

            return self._record(ticket_id, change)

    def save(self, ticket_id: str, message: str) -> str | None:
        """Commit the worktree's uncommitted work (``add -A``, .gitignore respected) on the ticket branch.

        Returns the commit's sha, or None when there was nothing to commit.
        """
        with self._ticket_lock(ticket_id):
            entry = self._require(ticket_id)
            worktree = self._open(entry)
            self._require_on_branch(worktree, entry)
            sha = worktree.commit_all(message, self.author_name, self.author_email)
            crash_point("worktree-commit-before-ledger")
            saved = [self._commit(worktree, sha, CommitSource.SAVE, entry.branch, entry.run_id)] if sha else []
            self._record(ticket_id, lambda e: self._touch(self._known(e, ticket_id), Operation.SAVE, saved))
            return sha

    def remove(self, ticket_id: str, *, message: str | None = None) -> WorktreeEntry:
        """Save the uncommitted work, then remove the worktree; the branch stays. Idempotent.

        Work found off the ticket branch (a stopped rebase, another branch or a detached HEAD checked out) is
        committed to a ``<branch>-rescue`` branch first. Raises NotFoundError for a ticket neither the ledger nor
        git knows.
        """
        path = self.worktree_path(ticket_id)
        with self._ticket_lock(ticket_id):
            known = self.get(ticket_id)
            main = GitRepo(self.repo)
            info = self._registered(main, path)
            if known is None and info is None:
                raise NotFoundError(f"{ticket_id}: no worktree in the ledger or in git")
            branch = known.branch if known else (info.branch if info and info.branch else default_branch(ticket_id))
            run_id = known.run_id if known else None
            kept: builtins.list[LedgerCommit] = []
            force = False
            if info is not None and path.is_dir():
                worktree = GitRepo(path)
                kept += self._recover(worktree, ticket_id, branch, run_id)
                if worktree.branch_of() == branch:
                    text = message or f"{ticket_id}: save uncommitted work before removing the worktree"
                    sha = worktree.commit_all(text, self.author_name, self.author_email)
                    if sha:
                        kept.append(self._commit(worktree, sha, CommitSource.SAVE, branch, run_id))
                else:
                    kept += self._rescue(worktree, main, ticket_id, branch, run_id, "the worktree was removed")
                force = not worktree.is_clean()
                if force and not kept:
                    raise WorktreeError(f"{path}: uncommitted changes git cannot commit; left in place")
            if info is not None:
                with self._git_lock:
                    main.worktree_remove(path, force=force)

            def change(entry: WorktreeEntry | None) -> WorktreeEntry:
                if entry is None:  # a worktree made by a run that crashed before it wrote the ledger
                    entry = self._unrecorded(ticket_id, main, branch, Operation.REMOVE)
                return self._touch(entry, Operation.REMOVE, kept, state=WorktreeState.REMOVED)

            return self._record(ticket_id, change)

    def rebase(self, ticket_id: str, onto: str) -> RebaseResult:
        """Rebase the ticket branch onto ``onto`` in its worktree (uncommitted work is saved first).

        On a conflict the rebase is aborted (the worktree is left clean, the branch where it was) and the result
        lists the conflicting paths.
        """
        with self._ticket_lock(ticket_id):
            entry = self._require(ticket_id)
            worktree = self._open(entry)
            kept = self._recover(worktree, ticket_id, entry.branch, entry.run_id)
            self._require_on_branch(worktree, entry)
            onto_sha = worktree.rev_parse(onto)
            text = f"{ticket_id}: save uncommitted work before rebasing onto {onto}"
            sha = worktree.commit_all(text, self.author_name, self.author_email)
            if sha:
                kept.append(self._commit(worktree, sha, CommitSource.SAVE, entry.branch, entry.run_id))
            outcome = worktree.rebase(onto_sha, self.author_name, self.author_email)
            result = RebaseResult(
                ticket_id, outcome.ok, onto_sha, worktree.head_sha(), outcome.conflicts, outcome.stopped_at
            )
            new_base = onto_sha if outcome.ok else None
            self._record(
                ticket_id, lambda e: self._touch(self._known(e, ticket_id), Operation.REBASE, kept, base=new_base)
            )
            return result

    def prune(self) -> builtins.list[str]:
        """Forget the ticket worktrees whose directory vanished; returns their ticket ids (branches stay).

        Only worktrees under .conveyor/worktrees are touched (unlike ``git worktree prune``); their ledger entries
        become ``removed``.
        """
        pruned: set[str] = set()
        with self._git_lock:
            main = GitRepo(self.repo)
            for info in self._ticket_worktrees(main):
                if info.prunable or not info.path.is_dir():
                    main.worktree_remove(info.path)
                    pruned.add(info.path.name)

            def change(ledger: Ledger) -> Ledger:
                for entry in ledger.entries():
                    if not self.worktree_path(entry.ticket_id).is_dir():
                        pruned.add(entry.ticket_id)
                        ledger = ledger.put(self._touch(entry, Operation.PRUNE, state=WorktreeState.REMOVED))
                return ledger

            self.ledger_file.update(change)
        return sorted(pruned)

    def reconcile(self) -> builtins.list[WorktreeEntry]:
        """Bring the ledger in line with git after a crash; returns the active entries.

        Worktrees whose directory vanished are pruned; ticket worktrees git has but the ledger misses are
        recorded; every entry whose branch exists gets the commits made on it since the last ledger write.
        """
        self.prune()
        main = GitRepo(self.repo)
        registered = {info.path.name: info for info in self._ticket_worktrees(main) if is_ticket_id(info.path.name)}
        active = {entry.ticket_id for entry in self.list()}
        for ticket_id in sorted({*(t for t, info in registered.items() if info.branch), *active}):
            with self._ticket_lock(ticket_id):
                self._record(ticket_id, functools.partial(self._reconciled, main=main, info=registered.get(ticket_id)))
        return self.list()

    def _reconciled(self, entry: WorktreeEntry | None, main: GitRepo, info: WorktreeInfo | None) -> WorktreeEntry:
        if entry is None:  # a worktree made by a run that crashed before it wrote the ledger
            if info is None or info.branch is None:
                raise WorktreeError("reconcile: no ledger entry and no worktree on a branch")
            entry = self._unrecorded(info.path.name, main, info.branch, Operation.RECONCILE)
        state = WorktreeState.ACTIVE if info is not None else None  # re-made by a run that crashed before its record
        return self._touch(entry, Operation.RECONCILE, state=state)
