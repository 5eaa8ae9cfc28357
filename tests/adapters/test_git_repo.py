"""GitRepo against real repositories in tmp dirs (ARCHITECTURE.md §4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.adapters.git_repo import GitRepo, GitRepoError
from tests.conftest import git


def test_head_clean_and_branch(scratch_repo: Path) -> None:
    repo = GitRepo(scratch_repo)
    assert repo.head_sha() == git(scratch_repo, "rev-parse", "HEAD").strip()
    assert repo.is_clean()
    assert repo.branch_of() == "main"
    (scratch_repo / "new.txt").write_text("x\n")
    assert not repo.is_clean()
    git(scratch_repo, "checkout", "-q", "--detach")
    assert repo.branch_of() is None


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitRepoError, match="not a git checkout"):
        GitRepo(tmp_path)
    with pytest.raises(GitRepoError):
        GitRepo(tmp_path / "missing")


def test_commit_all_uses_the_given_identity_without_touching_config(scratch_repo: Path) -> None:
    repo = GitRepo(scratch_repo)
    config_before = (scratch_repo / ".git" / "config").read_text()
    assert repo.commit_all("nothing") is None
    (scratch_repo / "a.txt").write_text("a\n")
    (scratch_repo / "README.md").write_text("# changed\n")
    sha = repo.commit_all("T-1: change", "Bot", "bot@example.invalid")
    assert sha is not None and sha == repo.head_sha()
    author = git(scratch_repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s").strip()
    assert author == "Bot <bot@example.invalid>|Bot <bot@example.invalid>|T-1: change"
    assert (scratch_repo / ".git" / "config").read_text() == config_before
    assert repo.is_clean()
    (scratch_repo / "b.txt").write_text("b\n")
    repo.commit_all("default identity")
    assert git(scratch_repo, "log", "-1", "--format=%an <%ae>").strip() == "Conveyor <conveyor@localhost>"


def test_diff_names_and_changes_since(scratch_repo: Path) -> None:
    repo = GitRepo(scratch_repo)
    base = repo.head_sha()
    assert not repo.has_changes_since(base)
    (scratch_repo / "untracked.txt").write_text("u\n")
    assert repo.has_changes_since(base)  # untracked counts
    (scratch_repo / "untracked.txt").unlink()
    (scratch_repo / "README.md").write_text("# edited\n")
    assert repo.has_changes_since(base)  # unstaged counts
    (scratch_repo / "src").mkdir()
    (scratch_repo / "src" / "m.py").write_text("x = 1\n")
    head = repo.commit_all("two files")
    assert head is not None
    assert repo.diff_names(base, head) == ["README.md", "src/m.py"]
    assert repo.diff_names(base) == ["README.md", "src/m.py"]
    assert repo.has_changes_since(base)  # committed counts
    assert not repo.has_changes_since(head)
    (scratch_repo / ".gitignore").write_text("ignored/\n")
    repo.commit_all("ignore")
    after_ignore = repo.head_sha()
    (scratch_repo / "ignored").mkdir()
    (scratch_repo / "ignored" / "x.log").write_text("log\n")
    assert not repo.has_changes_since(after_ignore)  # ignored files do not
    assert repo.is_clean()


def test_ancestry_and_existence(scratch_repo: Path) -> None:
    repo = GitRepo(scratch_repo)
    base = repo.head_sha()
    (scratch_repo / "a.txt").write_text("a\n")
    head = repo.commit_all("a")
    assert head is not None
    assert repo.is_ancestor(base, head)
    assert repo.is_ancestor(head, head)
    assert not repo.is_ancestor(head, base)
    assert repo.commit_exists(head)
    assert not repo.commit_exists("0" * 40)
    assert not repo.commit_exists("--all")
    assert not repo.commit_exists("")
    assert repo.rev_parse("main") == head
    with pytest.raises(GitRepoError):
        repo.is_ancestor("no-such-ref", head)


def test_reset_hard_restores_a_recorded_commit(scratch_repo: Path) -> None:
    repo = GitRepo(scratch_repo)
    (scratch_repo / "a.txt").write_text("a\n")
    recorded = repo.commit_all("a")
    assert recorded is not None
    (scratch_repo / "b.txt").write_text("b\n")
    repo.commit_all("b")
    (scratch_repo / "a.txt").write_text("dirty\n")
    (scratch_repo / "stray.txt").write_text("stray\n")
    repo.reset_hard(recorded)
    assert repo.head_sha() == recorded
    assert repo.branch_of() == "main"
    assert repo.is_clean()
    assert not (scratch_repo / "b.txt").exists() and not (scratch_repo / "stray.txt").exists()
    assert (scratch_repo / "a.txt").read_text() == "a\n"
    with pytest.raises(GitRepoError, match="no such commit"):
        repo.reset_hard("f" * 40)


def test_rescue_uncommitted_keeps_work_and_leaves_checkout_alone(scratch_repo: Path) -> None:
    repo = GitRepo(scratch_repo)
    head = repo.head_sha()
    assert repo.rescue_uncommitted("conveyor/rescue/x", "rescue") is None
    (scratch_repo / "README.md").write_text("# work in progress\n")
    (scratch_repo / "new.txt").write_text("new\n")
    git(scratch_repo, "add", "new.txt")
    status_before = git(scratch_repo, "status", "--porcelain")
    sha = repo.rescue_uncommitted("conveyor/rescue/x", "rescue")
    assert sha is not None
    assert repo.head_sha() == head and repo.branch_of() == "main"
    assert git(scratch_repo, "status", "--porcelain") == status_before  # index and files untouched
    assert git(scratch_repo, "show", "conveyor/rescue/x:README.md") == "# work in progress\n"
    assert git(scratch_repo, "show", "conveyor/rescue/x:new.txt") == "new\n"
    assert repo.is_ancestor(head, sha)
    again = repo.rescue_uncommitted("conveyor/rescue/x", "rescue again")
    assert again is not None and repo.branch_exists("conveyor/rescue/x-2")


def test_works_in_a_linked_worktree(scratch_repo: Path) -> None:
    worktree = scratch_repo.parent / "wt"
    git(scratch_repo, "worktree", "add", "-q", "-b", "conveyor/t-1", str(worktree))
    repo = GitRepo(worktree)
    assert repo.branch_of() == "conveyor/t-1"
    base = repo.head_sha()
    (worktree / "f.txt").write_text("f\n")
    sha = repo.commit_all("T-1: f")
    assert sha is not None
    assert GitRepo(scratch_repo).rev_parse("conveyor/t-1") == sha
    assert GitRepo(scratch_repo).head_sha() == base  # main untouched
    (worktree / "g.txt").write_text("g\n")
    assert repo.rescue_uncommitted("conveyor/rescue/t-1", "rescue") is not None
    repo.reset_hard(base)
    assert repo.head_sha() == base and not (worktree / "g.txt").exists()
    assert GitRepo(scratch_repo).commit_exists(sha)


def test_commit_paths_commits_only_those_paths(tmp_path: Path) -> None:
    import subprocess

    repo_dir = tmp_path / "r"
    repo_dir.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo_dir, check=True)
    (repo_dir / "a.txt").write_text("a\n")
    (repo_dir / "b.txt").write_text("b\n")
    repo = GitRepo(repo_dir)
    sha = repo.commit_paths(["a.txt"], "only a", "Bot", "bot@localhost")
    assert sha is not None
    shown = subprocess.run(
        ["git", "show", "--name-only", "--format=%an %s", "HEAD"],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == ["Bot", "only", "a", "a.txt"]
    assert not repo.is_clean()  # b.txt untouched, still untracked
    assert repo.commit_paths(["a.txt"], "again") is None
