"""A small git wrapper over GitPython (ARCHITECTURE.md §4): the only module that imports ``git``.

Commits are made with an identity passed per command (``GIT_AUTHOR_*`` / ``GIT_COMMITTER_*`` in the
environment of that one git process), never by changing the user's git config. A ``GitRepo`` works on a
main checkout or on a linked worktree (.conveyor/worktrees/<ticket>) alike; one instance is not meant to be
shared between threads (make one per thread, they are cheap).

Nothing is lost: :meth:`GitRepo.rescue_uncommitted` snapshots uncommitted work (tracked changes and untracked,
non-ignored files) to a branch without touching the current branch, the index or the files; callers run it
before :meth:`GitRepo.reset_hard`, which discards uncommitted work by design.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from conveyor.domain.errors import ConveyorError

DEFAULT_AUTHOR_NAME = "Conveyor"
DEFAULT_AUTHOR_EMAIL = "conveyor@localhost"


class GitRepoError(ConveyorError):
    """A git command failed, or the path is not a git checkout."""


def identity_env(name: str, email: str) -> dict[str, str]:
    """The environment that makes one git process author and commit as ``name <email>``."""
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


class GitRepo:
    """One checkout (main or a linked worktree) at ``path``, which must be the top of the working tree."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._repo = git.Repo(self.path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise GitRepoError(f"{self.path}: not a git checkout ({type(exc).__name__})") from None

    def __repr__(self) -> str:
        return f"GitRepo({str(self.path)!r})"

    # --- plumbing ----------------------------------------------------------------------------------

    def _git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> tuple[int, str, str]:
        """Run ``git args...`` in the checkout; returns (exit status, stdout, stderr)."""
        status, out, err = self._repo.git.execute(
            ["git", *args],
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=False,
            env=env,
        )
        if check and status != 0:
            raise GitRepoError(f"{self.path}: git {' '.join(args)} failed ({status}): {err.strip() or out.strip()}")
        return status, out, err

    def _out(self, *args: str, env: dict[str, str] | None = None) -> str:
        return self._git(*args, env=env)[1].strip()

    # --- queries -----------------------------------------------------------------------------------

    def head_sha(self) -> str:
        return self._out("rev-parse", "--verify", "HEAD^{commit}")

    def rev_parse(self, ref: str) -> str:
        """The commit sha ``ref`` names (a branch, tag, sha or expression)."""
        return self._out("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}")

    def is_clean(self) -> bool:
        """No staged, unstaged or untracked (non-ignored) change."""
        return self._out("status", "--porcelain", "--untracked-files=all") == ""

    def branch_of(self) -> str | None:
        """The checked-out branch (short name), or None on a detached HEAD."""
        status, out, _ = self._git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return out.strip() if status == 0 and out.strip() else None

    def branch_exists(self, name: str) -> bool:
        status, _, _ = self._git("show-ref", "--verify", "--quiet", f"refs/heads/{name}", check=False)
        return status == 0

    def commit_exists(self, sha: str) -> bool:
        """True when the object database holds a commit ``sha`` (reachable or not)."""
        if not sha or sha.startswith("-"):
            return False
        status, _, _ = self._git("cat-file", "-e", f"{sha}^{{commit}}", check=False)
        return status == 0

    def is_ancestor(self, a: str, b: str) -> bool:
        """True when commit ``a`` is an ancestor of (or equal to) commit ``b``."""
        status, _, err = self._git("merge-base", "--is-ancestor", a, b, check=False)
        if status in (0, 1):
            return status == 0
        raise GitRepoError(f"{self.path}: git merge-base --is-ancestor {a} {b} failed ({status}): {err.strip()}")

    def diff_names(self, base: str, head: str = "HEAD") -> list[str]:
        """Paths that differ between two commits (renames listed as delete + add), sorted."""
        out = self._git("diff", "--name-only", "--no-renames", "-z", base, head, "--")[1]
        return sorted(name for name in out.split("\0") if name)

    def has_changes_since(self, base: str) -> bool:
        """True when the working tree differs from ``base``: committed since, staged, unstaged or untracked."""
        status, _, err = self._git("diff", "--quiet", base, "--", check=False)
        if status not in (0, 1):
            raise GitRepoError(f"{self.path}: git diff --quiet {base} failed ({status}): {err.strip()}")
        if status == 1:
            return True
        return self._out("ls-files", "--others", "--exclude-standard") != ""

    # --- changes -----------------------------------------------------------------------------------

    def commit_all(
        self,
        message: str,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
    ) -> str | None:
        """Stage everything (``add -A``, .gitignore respected) and commit on the current branch.

        Returns the new commit's sha, or None when there was nothing to commit.
        """
        self._git("add", "-A")
        status, _, err = self._git("diff", "--cached", "--quiet", check=False)
        if status == 0:
            return None
        if status != 1:
            raise GitRepoError(f"{self.path}: git diff --cached failed ({status}): {err.strip()}")
        self._git("commit", "--quiet", "--no-edit", "-m", message, env=identity_env(author_name, author_email))
        return self.head_sha()

    def commit_paths(
        self,
        paths: list[str],
        message: str,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
    ) -> str | None:
        """Commit only ``paths`` (what else is staged or changed stays as it was); None when they did not change."""
        if not paths:
            return None
        self._git("add", "--", *paths)
        status, _, err = self._git("diff", "--cached", "--quiet", "--", *paths, check=False)
        if status == 0:
            return None
        if status != 1:
            raise GitRepoError(f"{self.path}: git diff --cached failed ({status}): {err.strip()}")
        self._git(
            "commit", "--quiet", "--no-edit", "-m", message, "--", *paths, env=identity_env(author_name, author_email)
        )
        return self.head_sha()

    def create_branch(self, name: str, sha: str) -> None:
        """Create branch ``name`` at ``sha`` (fails if it exists); the checkout is not touched."""
        self._git("branch", "--no-track", "--end-of-options", name, sha)

    def rescue_uncommitted(
        self,
        branch: str,
        message: str,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
    ) -> str | None:
        """Commit the uncommitted work (tracked changes and untracked, non-ignored files) onto a new branch.

        The commit's parent is HEAD; the current branch, the index and the files are left as they were
        (a temporary index is used). ``branch`` gets ``-2``, ``-3``... if it exists. Returns the rescue
        commit's sha, or None when the checkout was clean.
        """
        if self.is_clean():
            return None
        head = self.head_sha()
        with tempfile.TemporaryDirectory(prefix="conveyor-rescue-") as tmp:
            env = {**identity_env(author_name, author_email), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", head, env=env)
            self._git("add", "-A", env=env)
            tree = self._out("write-tree", env=env)
            sha = self._out("commit-tree", tree, "-p", head, "-m", message, env=env)
        name, n = branch, 1
        while self.branch_exists(name):
            n += 1
            name = f"{branch}-{n}"
        self.create_branch(name, sha)
        return sha

    def reset_hard(self, sha: str, *, clean_untracked: bool = True) -> None:
        """Move the current branch (or detached HEAD) to ``sha`` and make the files match it exactly.

        Uncommitted changes are discarded and, with ``clean_untracked``, untracked non-ignored files are
        removed (``git clean -fd``; ignored files such as .conveyor/ stay). Call :meth:`rescue_uncommitted`
        first when the work must be kept.
        """
        if not self.commit_exists(sha):
            raise GitRepoError(f"{self.path}: cannot reset to {sha}: no such commit")
        self._git("reset", "--hard", "--quiet", sha)
        if clean_untracked:
            self._git("clean", "-fd", "--quiet")

    # --- worktrees, merges and rebases (ARCHITECTURE.md §4, §9; used by conveyor.adapters.worktrees) --------

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of ``a`` and ``b``, or None when their histories are unrelated."""
        status, out, err = self._git("merge-base", "--end-of-options", a, b, check=False)
        if status == 0:
            return out.strip()
        if status == 1 and not err.strip():
            return None
        raise GitRepoError(f"{self.path}: git merge-base {a} {b} failed ({status}): {err.strip()}")

    def config_get(self, key: str) -> str | None:
        """The value of ``key`` in the repository's local config (.git/config) only, or None when unset there."""
        status, out, err = self._git("config", "--local", "--get", key, check=False)
        if status == 0:
            return out.rstrip("\n")
        if status == 1:
            return None
        raise GitRepoError(f"{self.path}: git config --local --get {key} failed ({status}): {err.strip()}")

    def config_set(self, key: str, value: str) -> None:
        """Set ``key`` in the repository's local config; user and system config are never touched."""
        self._git("config", "--local", "--replace-all", key, value)

    def config_unset(self, key: str) -> None:
        """Remove ``key`` from the repository's local config (no error when it was not set)."""
        status, _, err = self._git("config", "--local", "--unset-all", key, check=False)
        if status not in (0, 5):  # 5: the key was not set
            raise GitRepoError(f"{self.path}: git config --local --unset-all {key} failed ({status}): {err.strip()}")

    def worktrees(self) -> list[WorktreeInfo]:
        """Every working tree of the repository (the main one first), from ``git worktree list --porcelain``."""
        out = self._git("worktree", "list", "--porcelain", "-z")[1]
        found: list[WorktreeInfo] = []
        fields: dict[str, str] = {}
        for line in [*out.split("\0"), ""]:
            if line:
                key, _, value = line.partition(" ")
                fields[key] = value
                continue
            if "worktree" in fields:
                branch = fields.get("branch")
                found.append(
                    WorktreeInfo(
                        path=Path(fields["worktree"]),
                        head=fields.get("HEAD"),
                        branch=branch.removeprefix("refs/heads/") if branch else None,
                        locked=fields.get("locked"),
                        prunable="prunable" in fields,
                        bare="bare" in fields,
                    )
                )
            fields = {}
        return found

    def worktree_add(self, path: Path, branch: str) -> None:
        """Check out the existing branch ``branch`` in a new linked worktree at ``path``."""
        self._git("worktree", "add", "--quiet", "--end-of-options", str(path), branch)

    def worktree_remove(self, path: Path, *, force: bool = False) -> None:
        """Unregister and delete the linked worktree at ``path`` (a vanished directory is only unregistered).

        Without ``force`` git refuses a worktree with uncommitted or untracked (non-ignored) files; with it the
        files are deleted and a lock is overridden: commit or rescue the work first.
        """
        self._git("worktree", "remove", *(["--force", "--force"] if force else []), "--end-of-options", str(path))

    def commits_between(self, base: str, head: str) -> list[tuple[str, str, str]]:
        """Commits reachable from ``head`` but not ``base``, oldest first: (sha, committer date ISO 8601, message)."""
        out = self._git("log", "-z", "--reverse", "--format=%H%n%cI%n%B", f"{base}..{head}", "--")[1]
        commits: list[tuple[str, str, str]] = []
        for record in out.split("\0"):
            if record.strip():
                sha, at, message = [*record.split("\n", 2), "", ""][:3]
                commits.append((sha, at, message.strip()))
        return commits

    def commit_info(self, sha: str) -> tuple[str, str, str]:
        """(full sha, committer date ISO 8601, message) of one commit."""
        out = self._git("log", "-1", "-z", "--format=%H%n%cI%n%B", "--end-of-options", sha, "--")[1]
        full, at, message = [*out.rstrip("\0").split("\n", 2), "", ""][:3]
        return full, at, message.strip()

    def branches_at(self, sha: str) -> list[str]:
        """The local branches whose tip is ``sha``, sorted."""
        out = self._out("for-each-ref", "--format=%(refname:short)", f"--points-at={sha}", "refs/heads/")
        return sorted(line for line in out.splitlines() if line)

    def merge_tree_conflicts(self, a: str, b: str) -> list[str]:
        """The paths that merging ``a`` and ``b`` would leave in conflict (empty: they merge cleanly), sorted.

        ``git merge-tree --write-tree`` (git >= 2.38) merges in memory: no worktree, index or ref changes; only
        unreferenced tree objects are written, which a later gc reclaims.
        """
        status, out, err = self._git(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", "--end-of-options", a, b, check=False
        )
        if status not in (0, 1):
            raise GitRepoError(f"{self.path}: git merge-tree {a} {b} failed ({status}): {err.strip()}")
        names = out.split("\0")[1:]  # the tree's oid comes first, then the conflicted paths, then an empty field
        return sorted(set(names[: names.index("")] if "" in names else names)) if status == 1 else []

    def run_git(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run one git command (GitRepoError when it fails) and return its stdout."""
        return self._git(*args, env=env)[1]

    def is_ignored(self, path: str) -> bool:
        """True when .gitignore (or info/exclude) ignores ``path``."""
        status, _, err = self._git("check-ignore", "--quiet", "--", path, check=False)
        if status in (0, 1):
            return status == 0
        raise GitRepoError(f"{self.path}: git check-ignore {path} failed ({status}): {err.strip()}")

    def tree_of(self, ref: str) -> str:
        return self._out("rev-parse", "--verify", f"{ref}^{{tree}}")

    def merge_tree(self, a: str, b: str) -> tuple[str | None, list[str]]:
        """Merge ``a`` and ``b`` in memory: (the merged tree, []) or (None, the conflicted paths)."""
        status, out, err = self._git(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", "--end-of-options", a, b, check=False
        )
        if status not in (0, 1):
            raise GitRepoError(f"{self.path}: git merge-tree {a} {b} failed ({status}): {err.strip()}")
        fields = out.split("\0")
        if status == 0:
            return fields[0].strip(), []
        names = fields[1:]
        return None, sorted(set(names[: names.index("")] if "" in names else names))

    def commit_tree(
        self,
        tree: str,
        parents: list[str],
        message: str,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
    ) -> str:
        """A commit object for ``tree`` with ``parents``; no ref moves."""
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self._out(*args, "-m", message, env=identity_env(author_name, author_email))

    def reset_keep(self, sha: str) -> None:
        """Move the checked-out branch to ``sha``, updating only files that differ; local changes elsewhere stay.

        Refused (GitRepoError, nothing changed) when a file with local changes would have to change.
        """
        self._git("reset", "--quiet", "--keep", sha)

    def diff_text(self, base: str, head: str = "HEAD", *, paths: list[str] | None = None) -> str:
        return self._git("diff", "--no-color", "--no-ext-diff", base, head, "--", *(paths or []))[1]

    def show_file(self, ref: str, path: str) -> str | None:
        """The text of ``path`` at ``ref``, or None when it does not exist there."""
        status, out, _ = self._git("show", f"{ref}:{path}", check=False)
        return out if status == 0 else None

    def commits_matching(self, ref: str, pattern: str) -> list[str]:
        """Shas of commits reachable from ``ref`` with a message line matching ``pattern`` (ERE), newest first."""
        out = self._out("log", "--format=%H", "--extended-regexp", f"--grep={pattern}", ref, "--")
        return [line for line in out.splitlines() if line]

    def messages_matching(self, ref: str, *patterns: str) -> list[tuple[str, str]]:
        """(sha, message) of commits reachable from ``ref`` with a line matching any of ``patterns`` (ERE),
        newest first: one process where :meth:`commits_matching` would take one per pattern."""
        greps = [f"--grep={pattern}" for pattern in patterns]
        out = self._git("log", "--format=%H%x00%B%x1e", "--extended-regexp", *greps, ref, "--")[1]
        found = []
        for record in out.split("\x1e"):
            sha, _, message = record.strip("\n").partition("\x00")
            if sha:
                found.append((sha, message))
        return found

    def has_remote(self, name: str) -> bool:
        # Read from the config in-process: the loop asks before every dispatch and after every merge.
        return any(remote.name == name for remote in self._repo.remotes)

    def fetch(self, remote: str) -> None:
        self._git("fetch", "--quiet", remote)

    def push(self, remote: str, refspec: str) -> None:
        self._git("push", "--quiet", remote, refspec)

    def operation_in_progress(self) -> str | None:
        """``rebase``, ``merge``, ``cherry-pick`` or ``revert`` when one was stopped (a conflict, a crash)."""
        markers = {
            "rebase": ("rebase-merge", "rebase-apply"),
            "merge": ("MERGE_HEAD",),
            "cherry-pick": ("CHERRY_PICK_HEAD",),
            "revert": ("REVERT_HEAD",),
        }
        names = [name for group in markers.values() for name in group]
        # One process for every marker path (worktrees keep them in their own git dir).
        out = self._git("rev-parse", *(arg for name in names for arg in ("--git-path", name)))[1]
        paths = dict(zip(names, out.splitlines(), strict=True))
        for operation, group in markers.items():
            if any((self.path / paths[name]).exists() for name in group):
                return operation
        return None

    def abort_operation(self) -> str | None:
        """Abort a stopped rebase, merge, cherry-pick or revert (back to where it started); returns which one."""
        operation = self.operation_in_progress()
        if operation is not None:
            self._git(operation, "--abort")
        return operation

    def rebase(
        self,
        onto: str,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
    ) -> RebaseOutcome:
        """Rebase the checked-out branch onto ``onto``; on a conflict, report the paths and abort.

        The checkout must be clean. After a conflict the branch, index and files are as before the call.
        Rewritten commits get the given committer identity; autostash and ref updates are off whatever the
        user's config says.
        """
        env = {**identity_env(author_name, author_email), "GIT_EDITOR": "true"}
        status, out, err = self._git(
            "-c", "rebase.autoStash=false", "-c", "rebase.updateRefs=false",
            "rebase", "--quiet", "--end-of-options", onto, env=env, check=False,
        )  # fmt: skip
        if status == 0:
            return RebaseOutcome(ok=True, conflicts=(), stopped_at=None)
        if self.operation_in_progress() != "rebase":
            raise GitRepoError(f"{self.path}: git rebase {onto} failed ({status}): {err.strip() or out.strip()}")
        unmerged = self._git("diff", "--name-only", "--diff-filter=U", "-z")[1]
        conflicts = tuple(sorted({name for name in unmerged.split("\0") if name}))
        stopped = self._git("rev-parse", "--quiet", "--verify", "REBASE_HEAD", check=False)[1].strip() or None
        self._git("rebase", "--abort")
        if not conflicts:
            raise GitRepoError(f"{self.path}: git rebase {onto} stopped without a conflict: {err.strip()}")
        return RebaseOutcome(ok=False, conflicts=conflicts, stopped_at=stopped)


@dataclass(frozen=True)
class WorktreeInfo:
    """One entry of ``git worktree list``: ``branch`` is a short name (None when detached or bare)."""

    path: Path
    head: str | None
    branch: str | None
    locked: str | None  # the reason ("" when locked without one), None when not locked
    prunable: bool
    bare: bool = False


@dataclass(frozen=True)
class RebaseOutcome:
    ok: bool
    conflicts: tuple[str, ...]  # paths in conflict where the rebase stopped (empty when ok)
    stopped_at: str | None  # the commit being replayed when it stopped
