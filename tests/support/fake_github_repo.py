"""Set-up for the github forge's tests: the fake GitHub with its bare repository, a checkout, a test clock."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import git
from tests.support.fake_github import OPERATIONS, FakeGitHub
from tests.support.fake_github_openapi import DescriptionMissingError, github_description

SEED = {
    "README.md": "# widgets\n",
    "src/widgets.py": "def widget() -> str:\n    return 'widget'\n",
    "docs/TASKS.md": "# Tasks\n",
}


class Clock:
    """A monotonic and a wall clock that only ``sleep`` moves; ``then`` queues what happens during a sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.during_sleeps: list[Callable[[], object]] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.during_sleeps:
            self.during_sleeps.pop(0)()

    def then(self, action: Callable[[], object]) -> None:
        self.during_sleeps.append(action)


@contextmanager
def fake_github(root: Path, *, name: str = "widgets", seed: dict[str, str] | None = SEED) -> Iterator[FakeGitHub]:
    """A running fake GitHub (owner acme) whose bare repository ``name`` has ``seed`` on main (None: empty, for a
    test that pushes its own); its traffic must be valid at the end."""
    try:
        description = github_description(OPERATIONS)
    except DescriptionMissingError as exc:
        pytest.fail(str(exc))
    remote = root / "github" / f"{name}.git"
    remote.parent.mkdir(parents=True)
    git(root, "init", "-q", "--bare", "-b", "main", str(remote))
    if seed is not None:
        first = root / "seed"
        first.mkdir()
        git(first, "init", "-q", "-b", "main")
        write(first, seed)
        git(first, "add", "-A")
        git(first, "commit", "-q", "-m", "initial")
        git(first, "push", "-q", str(remote), "main")
    fake = FakeGitHub(remote, description, name=name).start()
    try:
        yield fake
    finally:
        fake.stop()
    assert not fake.violations, "traffic that GitHub's OpenAPI description rejects:\n" + "\n".join(fake.violations)


def clone(remote: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", "-b", "main", str(remote), str(where))
    return where


def write(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit_on_branch(repo: Path, branch: str, files: dict[str, str], message: str = "work") -> str:
    """Commit on ``branch`` (made from main when missing) in a worktree beside the checkout; the tip's sha."""
    worktree = repo.parent / "worktrees" / branch.replace("/", "-")
    if not worktree.exists():
        git(repo, "worktree", "add", "-q", "-b", branch, str(worktree), "main")
    write(worktree, files)
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", message)
    return git(worktree, "rev-parse", "HEAD").strip()


def rebase_branch(repo: Path, branch: str) -> str:
    """Rebase ``branch`` onto main in its worktree, as the merge queue does on NEEDS_REBASE; the new tip."""
    worktree = repo.parent / "worktrees" / branch.replace("/", "-")
    git(worktree, "rebase", "-q", "main")
    return git(worktree, "rev-parse", "HEAD").strip()


def show(repo: Path, ref: str, path: str) -> str:
    done = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=repo, capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""
