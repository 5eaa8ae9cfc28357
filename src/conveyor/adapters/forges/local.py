"""The ``local`` forge: squash-merges a ready ticket branch into main in the repository itself.

The squash commit is built with plumbing, never with a merge in the working tree: ``git merge-tree
--write-tree`` merges main and the branch in memory; Conveyor's tracking files (TASKS.md, run-state ...) are
overlaid from the main checkout's working tree through a temporary index, so the commit that merges a ticket
also records it (N merged tickets cost N commits); ``git reset --keep`` then moves main. Guarantees:

- the code of the squash commit (every path but the tracking paths) is exactly the tree that passed QA;
  otherwise nothing moves and the answer is REFUSED;
- a branch whose base is behind main *in code* is not merged (NEEDS_REBASE): the queue rebases it and runs QA
  again; commits that touched only tracking paths do not count;
- a ticket already merged (its trailer is on main: a killed run merged it before recording it) is never
  merged again (ALREADY_MERGED);
- after the merge, main is pushed to the remote when one exists.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from conveyor.adapters.crash import crash_point
from conveyor.adapters.forges.trailers import merged_commit_on
from conveyor.adapters.git_repo import GitRepo, GitRepoError
from conveyor.domain.merge import (
    REVERT_TRAILER,
    MergeOutcome,
    MergeRequest,
    MergeStatus,
    squash_message,
    ticket_of,
)
from conveyor.domain.tracking import TRACKING_FILES, TRACKING_PREFIXES, code_paths, is_tracking_path

REPLAY_TRACES = "automations/memory/replay"


class LocalForge:
    name = "local"

    def __init__(
        self, repo: Path, *, main_branch: str, remote: str, author_name: str, author_email: str, push: bool = True
    ) -> None:
        self.repo = repo
        self.main_branch = main_branch
        self.remote = remote
        self.author_name = author_name
        self.author_email = author_email
        self.push_enabled = push

    def merged_commit(self, ticket_id: str) -> str | None:
        """The ticket's squash commit on main, unless a later commit reverted it (then it may merge again)."""
        return merged_commit_on(GitRepo(self.repo), self.main_branch, ticket_id)

    def integrate(self, request: MergeRequest) -> MergeOutcome:
        git = GitRepo(self.repo)
        already = self.merged_commit(request.ticket_id)
        if already is not None:
            return MergeOutcome(status=MergeStatus.ALREADY_MERGED, commit=already, detail="found on main by trailer")
        main = git.rev_parse(self.main_branch)
        head = git.rev_parse(request.branch)
        base = git.merge_base(main, head) or main
        touched = [p for p in git.diff_names(base, head) if is_tracking_path(p)]
        if touched:
            return MergeOutcome(
                status=MergeStatus.REFUSED,
                detail="the change touches Conveyor's tracking files, which only the loop writes: "
                + ", ".join(touched),
            )
        moved = code_paths(git.diff_names(base, main))
        if moved:
            return MergeOutcome(status=MergeStatus.NEEDS_REBASE, moved_paths=tuple(moved))
        merged, conflicts = git.merge_tree(main, head)
        if merged is None:
            return MergeOutcome(status=MergeStatus.CONFLICT, conflicts=tuple(conflicts))
        drift = code_paths(git.diff_names(request.qa_tree, merged))
        if drift:
            return MergeOutcome(
                status=MergeStatus.REFUSED,
                detail=f"the merged code differs from the tree that passed QA in {', '.join(drift)}",
            )
        tree = self._with_tracking_files(git, merged)
        message = squash_message(request.ticket_id, request.title, request.run_id)
        commit = git.commit_tree(tree, [main], message, self.author_name, self.author_email)
        self._stage_tracking_files(git)
        git.reset_keep(commit)
        crash_point("after-squash-commit")
        return MergeOutcome(status=MergeStatus.MERGED, commit=commit, pushed=self.push_main(git))

    def revert(self, commit: str, message: str) -> str:
        """Undo ``commit`` (main's tip) with a new commit whose code is its parent's; tracking files as written."""
        git = GitRepo(self.repo)
        main = git.rev_parse(self.main_branch)
        ticket = ticket_of(git.commit_info(commit)[2])
        if ticket is not None:
            message = f"{message.rstrip()}\n\n{REVERT_TRAILER}: {ticket}\n"
        tree = self._with_tracking_files(git, git.tree_of(f"{commit}^"))
        reverted = git.commit_tree(tree, [main], message, self.author_name, self.author_email)
        self._stage_tracking_files(git)
        git.reset_keep(reverted)
        self.push_main(git)
        return reverted

    def push_main(self, git: GitRepo | None = None) -> bool:
        git = git or GitRepo(self.repo)
        if not self.push_enabled or not git.has_remote(self.remote):
            return False
        try:
            git.push(self.remote, f"{self.main_branch}:{self.main_branch}")
        except GitRepoError:
            return False  # the next dispatch syncs with the remote and says what happened
        return True

    def _tracking_pathspecs(self) -> list[str]:
        specs = [p for p in sorted(TRACKING_FILES) if (self.repo / p).exists()]
        specs += [p.rstrip("/") for p in TRACKING_PREFIXES if p != ".conveyor/" and (self.repo / p).exists()]
        if specs and not GitRepo(self.repo).is_ignored(REPLAY_TRACES):
            # Full agent traces are never committed (ARCHITECTURE.md §2), even where .gitignore does not say so;
            # delivery threads append to them while a squash commit is being built. (Naming an ignored path in a
            # pathspec is an error for `git add`, hence only when it is not ignored already.)
            specs.append(f":(exclude){REPLAY_TRACES}")
        return specs

    def _with_tracking_files(self, git: GitRepo, tree: str) -> str:
        """``tree`` with the tracking files as they are in the main checkout's working tree."""
        specs = self._tracking_pathspecs()
        if not specs:
            return tree
        handle, index = tempfile.mkstemp(prefix="conveyor-index-", dir=self.repo / ".git")
        os.close(handle)
        try:
            env = {**os.environ, "GIT_INDEX_FILE": index}
            git.run_git("read-tree", tree, env=env)
            git.run_git("add", "-A", "--", *specs, env=env)
            return git.run_git("write-tree", env=env).strip()
        finally:
            Path(index).unlink(missing_ok=True)

    def _stage_tracking_files(self, git: GitRepo) -> None:
        """The index takes the tracking files as written, so ``reset --keep`` sees no local change in them."""
        specs = self._tracking_pathspecs()
        if specs:
            git.run_git("add", "-A", "--", *specs)
