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
