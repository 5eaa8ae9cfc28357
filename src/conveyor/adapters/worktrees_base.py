"""The worktree manager's plumbing (conveyor.adapters.worktrees): locks, ledger records, commit records, rescues."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conveyor.adapters.git_repo import DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME, GitRepo, WorktreeInfo
from conveyor.adapters.worktrees_ledger import LOCKS, LedgerFile, repo_key
from conveyor.domain.errors import ConveyorError, NotFoundError
from conveyor.domain.ledger import (
    WORKTREES_DIR,
    CommitSource,
    Ledger,
    LedgerCommit,
    Operation,
    WorktreeEntry,
    WorktreeState,
    worktree_relpath,
)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WorktreeError(ConveyorError):
    """A ticket's worktree is not in a state the manager can act on without risking work (the message says why)."""


@dataclass(frozen=True)
class RebaseResult:
    """``ok``: the branch now sits on ``onto``. Otherwise ``conflicts`` lists the paths in conflict where the rebase
    stopped (at commit ``stopped_at``); the rebase was aborted and the branch, index and files are as before."""

    ticket_id: str
    ok: bool
    onto: str  # the sha rebased onto
    head: str  # the branch's tip afterwards (unchanged after a conflict)
    conflicts: tuple[str, ...] = ()
    stopped_at: str | None = None


class WorktreeBase:
    """State and helpers of :class:`conveyor.adapters.worktrees.WorktreeManager`."""

    def __init__(
        self,
        repo: Path,
        *,
        main_branch: str = "main",
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
        clock: Clock = _utcnow,
    ) -> None:
        self.repo = Path(repo)
        GitRepo(self.repo)  # fail early when it is not a checkout
        self.main_branch = main_branch
        self.author_name, self.author_email = author_name, author_email
        self.clock = clock
        self.ledger_file = LedgerFile(self.repo)
        self._key = repo_key(self.repo)
        self._git_lock = LOCKS.get(self._key, "git")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.repo)!r})"

    # --- queries -----------------------------------------------------------------------------------

    def worktree_path(self, ticket_id: str) -> Path:
        return self.repo / worktree_relpath(ticket_id)

    def ledger(self) -> Ledger:
        return self.ledger_file.read()

    def get(self, ticket_id: str) -> WorktreeEntry | None:
        return self.ledger().get(ticket_id)

    def _unrecorded(self, ticket_id: str, main: GitRepo, branch: str, operation: Operation) -> WorktreeEntry:
        """An entry for a ticket worktree git has and the ledger does not; its base is where it left main."""
        start = main.merge_base(self.main_branch, branch) if main.branch_exists(branch) else None
        now = self.clock()
        return WorktreeEntry(
            ticket_id=ticket_id,
            branch=branch,
            worktree=worktree_relpath(ticket_id),
            base=start or main.rev_parse(self.main_branch),
            created_at=now,
            updated_at=now,
            last_operation=operation,
        )

    # --- helpers -----------------------------------------------------------------------------------

    def _ticket_lock(self, ticket_id: str) -> threading.RLock:
        worktree_relpath(ticket_id)  # a valid ticket id, or ValueError
        return LOCKS.get(self._key, "ticket", ticket_id)

    def _registered(self, main: GitRepo, path: Path) -> WorktreeInfo | None:
        target = path.resolve()
        return next((info for info in main.worktrees() if info.path.resolve() == target), None)

    def _ticket_worktrees(self, main: GitRepo) -> builtins.list[WorktreeInfo]:
        home = (self.repo / WORKTREES_DIR).resolve()
        return [info for info in main.worktrees() if info.path.resolve().parent == home]

    @staticmethod
    def _known(entry: WorktreeEntry | None, ticket_id: str) -> WorktreeEntry:
        if entry is None:
            raise NotFoundError(f"{ticket_id}: its ledger entry vanished during the operation")
        return entry

    def _require(self, ticket_id: str) -> WorktreeEntry:
        entry = self.get(ticket_id)
        if entry is None:
            raise NotFoundError(f"{ticket_id}: no worktree in the ledger (call ensure first)")
        return entry

    def _open(self, entry: WorktreeEntry) -> GitRepo:
        path = self.repo / entry.worktree
        if not path.is_dir():
            raise WorktreeError(f"{entry.ticket_id}: the worktree {path} does not exist (call ensure first)")
        return GitRepo(path)

    @staticmethod
    def _require_on_branch(worktree: GitRepo, entry: WorktreeEntry) -> None:
        current = worktree.branch_of()
        if current != entry.branch:
            raise WorktreeError(
                f"{worktree.path} has {current or 'a detached HEAD'} checked out, not {entry.branch}: "
                "nothing was committed"
            )

    def _touch(
        self,
        entry: WorktreeEntry,
        operation: Operation,
        kept: Iterable[LedgerCommit] = (),
        *,
        state: WorktreeState | None = None,
        base: str | None = None,
        run_id: str | None = None,
        branch: str | None = None,
    ) -> WorktreeEntry:
        """``entry`` after ``operation``: the commits ``kept`` by it, then those made on the branch since."""
        touched = entry.touched(operation, self.clock(), state=state, base=base, run_id=run_id, branch=branch)
        touched = touched.with_commits(kept)
        return touched.with_commits(self._branch_commits(touched))

    def _branch_commits(self, entry: WorktreeEntry) -> builtins.list[LedgerCommit]:
        main = GitRepo(self.repo)
        if not main.branch_exists(entry.branch) or not main.commit_exists(entry.base):
            return []
        return [
            self._to_commit(info, CommitSource.BRANCH, entry.branch, entry.run_id)
            for info in main.commits_between(entry.base, entry.branch)
        ]

    def _commit(self, repo: GitRepo, sha: str, source: CommitSource, branch: str, run_id: str | None) -> LedgerCommit:
        return self._to_commit(repo.commit_info(sha), source, branch, run_id)

    @staticmethod
    def _to_commit(info: tuple[str, str, str], source: CommitSource, branch: str, run_id: str | None) -> LedgerCommit:
        sha, at, message = info
        return LedgerCommit(
            sha=sha, message=message, at=datetime.fromisoformat(at), source=source, branch=branch, run_id=run_id
        )

    def _recover(
        self, worktree: GitRepo, ticket_id: str, branch: str, run_id: str | None
    ) -> builtins.list[LedgerCommit]:
        """Abort a rebase, merge, cherry-pick or revert left stopped (by a crash), keeping its files on a rescue
        branch first."""
        operation = worktree.operation_in_progress()
        if operation is None:
            return []
        kept = self._rescue(worktree, GitRepo(self.repo), ticket_id, branch, run_id, f"a stopped {operation}")
        worktree.abort_operation()
        return kept

    def _rescue(
        self, worktree: GitRepo, main: GitRepo, ticket_id: str, branch: str, run_id: str | None, why: str
    ) -> builtins.list[LedgerCommit]:
        """Keep what is in ``worktree`` off the ticket branch on ``<branch>-rescue[-N]``: the uncommitted work
        (a commit on top of HEAD), and a detached HEAD's commits the ticket branch does not have."""
        rescue = f"{branch}-rescue"
        message = f"{ticket_id}: rescue uncommitted work ({why})"
        with self._git_lock:
            sha = worktree.rescue_uncommitted(rescue, message, self.author_name, self.author_email)
            if sha is None and worktree.branch_of() is None:
                head = worktree.head_sha()
                if main.branch_exists(branch) and not main.is_ancestor(head, branch) and not main.branches_at(head):
                    name, n = rescue, 1
                    while main.branch_exists(name):
                        n += 1
                        name = f"{rescue}-{n}"
                    main.create_branch(name, head)
                    sha = head
        if sha is None:
            return []
        names = [b for b in main.branches_at(sha) if b.startswith(rescue)]
        return [self._commit(main, sha, CommitSource.RESCUE, names[0] if names else rescue, run_id)]

    def _record(self, ticket_id: str, change: Callable[[WorktreeEntry | None], WorktreeEntry]) -> WorktreeEntry:
        result: builtins.list[WorktreeEntry] = []

        def apply(ledger: Ledger) -> Ledger:
            entry = change(ledger.get(ticket_id))
            result.append(entry)
            return ledger.put(entry)

        self.ledger_file.update(apply)
        return result[-1]
