"""WorktreeManager and the worktree ledger against real git repositories (ARCHITECTURE.md §4, §9)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.worktrees import RebaseResult, WorktreeError, WorktreeManager
from conveyor.adapters.worktrees_ledger import LedgerFileError
from conveyor.domain.errors import NotFoundError
from conveyor.domain.ledger import CommitSource, Operation, WorktreeState, default_branch
from tests.conftest import git

RUN = "RUN-20250101-1200"
RUN2 = "RUN-20250101-1300"
BOT = "Conveyor <conveyor@localhost>"


def manager(repo: Path) -> WorktreeManager:
    return WorktreeManager(repo, author_name="Conveyor", author_email="conveyor@localhost")


def open_worktree(wm: WorktreeManager, ticket_id: str) -> Path:
    wm.ensure(ticket_id, RUN)
    return wm.worktree_path(ticket_id)


def git_status(cwd: Path, *args: str) -> int:
    """Exit status of a git command expected to fail (conftest's ``git`` raises on failure)."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@localhost"}
    env |= {"GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@localhost"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False).returncode


def commit_on_main(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"main: {name}")
    return git(repo, "rev-parse", "HEAD").strip()


def tip(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", ref).strip()


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def ledger_json(repo: Path) -> dict[str, object]:
    data = json.loads((repo / ".conveyor" / "ledger.json").read_text())
    assert isinstance(data, dict)
    return data


# --- ensure -----------------------------------------------------------------------------------------------


def test_ensure_creates_the_branch_and_worktree_and_reuses_them(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    main_tip = tip(scratch_repo, "main")
    entry = wm.ensure("MS-SEC-001", RUN)
    path = scratch_repo / ".conveyor" / "worktrees" / "MS-SEC-001"
    assert entry.branch == "conveyor/ms-sec-001" == default_branch("MS-SEC-001")
    assert entry.worktree == ".conveyor/worktrees/MS-SEC-001" and wm.worktree_path("MS-SEC-001") == path
    assert entry.base == main_tip and entry.state is WorktreeState.ACTIVE and entry.run_ids == (RUN,)
    assert GitRepo(path).branch_of() == "conveyor/ms-sec-001" and tip(scratch_repo, "conveyor/ms-sec-001") == main_tip
    assert git(scratch_repo, "status", "--porcelain") == ""  # .conveyor/ is ignored: main stays clean

    (path / "work.txt").write_text("in progress\n")
    again = wm.ensure("MS-SEC-001", RUN2)  # a resumed run finds the same worktree, work and all
    assert (path / "work.txt").read_text() == "in progress\n"
    assert again.run_ids == (RUN, RUN2) and again.created_at == entry.created_at
    assert again.base == main_tip and again.last_operation is Operation.ENSURE
    assert [e.ticket_id for e in wm.list()] == ["MS-SEC-001"]
    assert len([line for line in git(scratch_repo, "worktree", "list").splitlines() if "MS-SEC-001" in line]) == 1


def test_ensure_from_a_base_and_with_a_named_branch(scratch_repo: Path) -> None:
    first = tip(scratch_repo, "main")
    commit_on_main(scratch_repo, "later.txt", "later\n")
    wm = manager(scratch_repo)
    entry = wm.ensure("MS-SEC-002", RUN, base=first, branch="feature/sec-two")
    assert entry.branch == "feature/sec-two" and entry.base == first
    assert tip(scratch_repo, "feature/sec-two") == first
    assert not (wm.worktree_path("MS-SEC-002") / "later.txt").exists()
    # An existing branch is used as it is: ``base`` only applies to a new branch.
    assert wm.ensure("MS-SEC-002", RUN, base="main").base == first


def test_ensure_from_the_remote_main_of_a_bare_origin(scratch_repo: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(scratch_repo, "remote", "add", "origin", str(origin))
    git(scratch_repo, "push", "-q", "origin", "main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    pushed = commit_on_main(other, "pushed.txt", "from a colleague\n")
    git(other, "push", "-q", "origin", "main")
    git(scratch_repo, "fetch", "-q", "origin")
    wm = manager(scratch_repo)
    entry = wm.ensure("MS-SEC-003", RUN, base="origin/main")
    assert entry.base == pushed and (wm.worktree_path("MS-SEC-003") / "pushed.txt").exists()
    (wm.worktree_path("MS-SEC-003") / "f.txt").write_text("f\n")
    wm.remove("MS-SEC-003")
    git(scratch_repo, "push", "-q", "origin", "conveyor/ms-sec-003")  # the kept branch is what delivery pushes
    assert git(origin, "show", "conveyor/ms-sec-003:f.txt") == "f\n"


def test_ensure_repairs_what_a_crash_leaves(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    path = wm.worktree_path("MS-SEC-004")
    wm.ensure("MS-SEC-004", RUN)
    (scratch_repo / ".conveyor" / "ledger.json").unlink()  # killed between `worktree add` and the ledger write
    entry = wm.ensure("MS-SEC-004", RUN)
    assert entry.run_ids == (RUN,) and entry.base == tip(scratch_repo, "main")

    # `git worktree add` killed during its checkout: git's "initializing" lock is still there, files are missing.
    admin = Path(git(path, "rev-parse", "--absolute-git-dir").strip())
    (admin / "locked").write_text("initializing")
    (path / "README.md").unlink()
    wm.ensure("MS-SEC-004", RUN)
    assert (path / "README.md").exists() and not (admin / "locked").exists() and GitRepo(path).is_clean()
    assert wm.save("MS-SEC-004", "nothing to save") is None  # the half checkout was not taken for deletions

    git(scratch_repo, "worktree", "remove", "--force", str(path))  # the directory vanished
    wm.ensure("MS-SEC-004", RUN)
    assert GitRepo(path).branch_of() == "conveyor/ms-sec-004"


def test_ensure_aborts_a_stopped_rebase_and_keeps_its_files(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    path = open_worktree(wm, "MS-SEC-005")
    (path / "README.md").write_text("# ticket\n")
    before = wm.save("MS-SEC-005", "MS-SEC-005: readme")
    commit_on_main(scratch_repo, "README.md", "# main\n")
    assert git_status(path, "rebase", "main") != 0 and GitRepo(path).operation_in_progress() == "rebase"
    (path / "notes.txt").write_text("written while the rebase was stopped\n")
    entry = wm.ensure("MS-SEC-005", RUN)  # a crash left the rebase stopped
    worktree = GitRepo(path)
    assert worktree.operation_in_progress() is None and worktree.branch_of() == "conveyor/ms-sec-005"
    assert worktree.head_sha() == before and (path / "README.md").read_text() == "# ticket\n"
    assert git(path, "status", "--porcelain") == "?? notes.txt\n"  # the abort leaves new files: work, kept
    rescue = [c for c in entry.commits if c.source is CommitSource.RESCUE]
    assert len(rescue) == 1 and rescue[0].branch == "conveyor/ms-sec-005-rescue"
    assert git(scratch_repo, "show", "conveyor/ms-sec-005-rescue:notes.txt") == "written while the rebase was stopped\n"


def test_ensure_refuses_what_it_cannot_take_over(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    with pytest.raises(ValueError, match="run id"):
        wm.ensure("MS-SEC-006", "not-a-run")
    with pytest.raises(ValueError):
        wm.ensure("../escape", RUN)
    stray = wm.worktree_path("MS-SEC-006")
    stray.mkdir(parents=True)
    (stray / "keep.txt").write_text("someone's files\n")
    with pytest.raises(WorktreeError, match="not a worktree"):
        wm.ensure("MS-SEC-006", RUN)
    assert (stray / "keep.txt").read_text() == "someone's files\n"
    wm.ensure("MS-SEC-007", RUN)
    git(wm.worktree_path("MS-SEC-007"), "checkout", "-q", "-b", "elsewhere")
    with pytest.raises(WorktreeError, match="elsewhere"):
        wm.ensure("MS-SEC-007", RUN)


# --- save and remove --------------------------------------------------------------------------------------


def test_save_commits_with_the_bot_identity_and_records_it(scratch_repo: Path) -> None:
    config_before = (scratch_repo / ".git" / "config").read_text()
    wm = manager(scratch_repo)
    path = open_worktree(wm, "MS-CQ-001")
    assert wm.save("MS-CQ-001", "nothing") is None
    (path / "a.py").write_text("a = 1\n")
    sha = wm.save("MS-CQ-001", "MS-CQ-001: a")
    assert sha is not None and sha == tip(scratch_repo, "conveyor/ms-cq-001")
    assert git(scratch_repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip() == f"{BOT}|{BOT}"
    assert tip(scratch_repo, "main") != sha and git(scratch_repo, "status", "--porcelain") == ""
    entry = wm.get("MS-CQ-001")
    assert entry is not None and entry.last_operation is Operation.SAVE
    (commit,) = entry.commits
    assert (commit.sha, commit.message, commit.source, commit.run_id) == (sha, "MS-CQ-001: a", CommitSource.SAVE, RUN)
    assert commit.branch == "conveyor/ms-cq-001" and commit.at.tzinfo is not None
    assert (scratch_repo / ".git" / "config").read_text() == config_before
    with pytest.raises(NotFoundError):
        wm.save("MS-CQ-999", "no such worktree")


def test_remove_saves_uncommitted_work_first_and_keeps_the_branch(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    path = open_worktree(wm, "MS-CQ-002")
    (path / "README.md").write_text("# edited, not committed\n")
    (path / "new").mkdir()
    (path / "new" / "file.txt").write_text("untracked\n")
    entry = wm.remove("MS-CQ-002")
    assert not path.exists()
    assert "MS-CQ-002" not in git(scratch_repo, "worktree", "list")
    branch = "conveyor/ms-cq-002"
    assert git(scratch_repo, "show", f"{branch}:README.md") == "# edited, not committed\n"
    assert git(scratch_repo, "show", f"{branch}:new/file.txt") == "untracked\n"
    assert entry.state is WorktreeState.REMOVED and entry.last_operation is Operation.REMOVE
    assert [c.sha for c in entry.commits] == [tip(scratch_repo, branch)]
    assert entry.commits[0].source is CommitSource.SAVE
    assert wm.list() == [] and [e.ticket_id for e in wm.list(include_removed=True)] == ["MS-CQ-002"]
    assert wm.remove("MS-CQ-002").state is WorktreeState.REMOVED  # idempotent
    with pytest.raises(NotFoundError):
        wm.remove("MS-CQ-998")
    again = wm.ensure("MS-CQ-002", RUN2)  # back on the same branch, with the saved work
    assert again.state is WorktreeState.ACTIVE and (path / "new" / "file.txt").exists()


def test_remove_rescues_work_found_off_the_ticket_branch(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    path = open_worktree(wm, "MS-CQ-003")
    git(path, "checkout", "-q", "--detach")
    (path / "detached.txt").write_text("work on a detached HEAD\n")
    git(path, "add", "detached.txt")
    git(path, "commit", "-q", "-m", "detached commit")
    detached = tip(path, "HEAD")
    (path / "loose.txt").write_text("uncommitted\n")
    with pytest.raises(WorktreeError, match="detached HEAD"):
        wm.save("MS-CQ-003", "refused: not on the ticket branch")
    entry = wm.remove("MS-CQ-003")
    assert not path.exists()
    (rescue,) = [c for c in entry.commits if c.source is CommitSource.RESCUE]
    assert git(scratch_repo, "show", f"{rescue.branch}:loose.txt") == "uncommitted\n"
    assert git(scratch_repo, "rev-parse", f"{rescue.sha}^").strip() == detached  # the detached commit is kept too


# --- rebase ------------------------------------------------------------------------------------------------


def test_rebase_onto_a_moved_main(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    path = open_worktree(wm, "MS-HIGH-001")
    (path / "ticket.txt").write_text("ticket\n")
    first = wm.save("MS-HIGH-001", "MS-HIGH-001: ticket")
    main_tip = commit_on_main(scratch_repo, "main.txt", "main\n")
    (path / "pending.txt").write_text("not committed yet\n")
    result = wm.rebase("MS-HIGH-001", "main")
    assert isinstance(result, RebaseResult) and result.ok and result.conflicts == ()
    assert result.onto == main_tip and result.head == tip(scratch_repo, "conveyor/ms-high-001")
    assert GitRepo(scratch_repo).is_ancestor(main_tip, result.head) and GitRepo(path).is_clean()
    assert (path / "pending.txt").exists() and (path / "main.txt").exists()
    entry = wm.get("MS-HIGH-001")
    assert entry is not None and entry.base == main_tip and entry.last_operation is Operation.REBASE
    shas = entry.shas
    assert first in shas  # the pre-rebase commit stays in the ledger
    rewritten = [sha for sha, _, _ in GitRepo(scratch_repo).commits_between(main_tip, "conveyor/ms-high-001")]
    assert len(rewritten) == 2 and set(rewritten) <= set(shas)
    assert git(scratch_repo, "log", "-1", "--format=%cn <%ce>", result.head).strip() == BOT


def test_rebase_conflict_is_aborted_and_reported(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    path = open_worktree(wm, "MS-HIGH-002")
    (path / "README.md").write_text("# ticket version\n")
    (path / "other.txt").write_text("no conflict here\n")
    head = wm.save("MS-HIGH-002", "MS-HIGH-002: readme")
    main_tip = commit_on_main(scratch_repo, "README.md", "# main version\n")
    result = wm.rebase("MS-HIGH-002", "main")
    assert not result.ok and result.conflicts == ("README.md",) and result.stopped_at == head
    assert result.head == head == tip(scratch_repo, "conveyor/ms-high-002") and result.onto == main_tip
    worktree = GitRepo(path)
    assert worktree.is_clean() and worktree.operation_in_progress() is None
    assert worktree.branch_of() == "conveyor/ms-high-002" and (path / "README.md").read_text() == "# ticket version\n"
    entry = wm.get("MS-HIGH-002")
    assert entry is not None and entry.base != main_tip and entry.last_operation is Operation.REBASE


# --- merge-tree prediction ---------------------------------------------------------------------------------


def test_predict_conflict_touches_no_worktree_or_ref(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    for ticket, files in {
        "MS-PERF-001": {"README.md": "# one\n", "a.txt": "a\n"},
        "MS-PERF-002": {"README.md": "# two\n", "b.txt": "b\n"},
        "MS-PERF-003": {"c.txt": "c\n"},
    }.items():
        path = open_worktree(wm, ticket)
        for name, text in files.items():
            (path / name).write_text(text)
        wm.save(ticket, f"{ticket}: files")
    dirty = wm.worktree_path("MS-PERF-001") / "a.txt"
    dirty.write_text("uncommitted\n")
    snapshot = (
        refs(scratch_repo),
        [git(wm.worktree_path(t), "status", "--porcelain") for t in ("MS-PERF-001", "MS-PERF-002", "MS-PERF-003")],
        git(scratch_repo, "status", "--porcelain"),
        (scratch_repo / ".git" / "index").read_bytes(),
        [tip(wm.worktree_path(t), "HEAD") for t in ("MS-PERF-001", "MS-PERF-002")],
    )
    assert wm.predict_conflict("conveyor/ms-perf-001", "conveyor/ms-perf-002") == ["README.md"]
    assert wm.predict_conflict("conveyor/ms-perf-001", "conveyor/ms-perf-003") == []
    assert wm.predict_conflict("conveyor/ms-perf-002", "main") == []
    assert snapshot == (
        refs(scratch_repo),
        [git(wm.worktree_path(t), "status", "--porcelain") for t in ("MS-PERF-001", "MS-PERF-002", "MS-PERF-003")],
        git(scratch_repo, "status", "--porcelain"),
        (scratch_repo / ".git" / "index").read_bytes(),
        [tip(wm.worktree_path(t), "HEAD") for t in ("MS-PERF-001", "MS-PERF-002")],
    )
    assert dirty.read_text() == "uncommitted\n"


def test_predict_conflict_reports_modify_delete_and_add_add(scratch_repo: Path) -> None:
    git(scratch_repo, "branch", "left")
    git(scratch_repo, "branch", "right")
    git(scratch_repo, "checkout", "-q", "left")
    git(scratch_repo, "rm", "-q", "README.md")
    (scratch_repo / "both.txt").write_text("left\n")
    git(scratch_repo, "add", "both.txt")
    git(scratch_repo, "commit", "-q", "-m", "left")
    git(scratch_repo, "checkout", "-q", "right")
    (scratch_repo / "README.md").write_text("# changed\n")
    (scratch_repo / "both.txt").write_text("right\n")
    git(scratch_repo, "add", "README.md", "both.txt")
    git(scratch_repo, "commit", "-q", "-m", "right")
    assert manager(scratch_repo).predict_conflict("left", "right") == ["README.md", "both.txt"]


# --- prune, gc.auto, reconcile -------------------------------------------------------------------------------


def test_prune_forgets_vanished_worktrees_only(scratch_repo: Path, tmp_path: Path) -> None:
    wm = manager(scratch_repo)
    wm.ensure("MS-DOC-001", RUN)
    wm.ensure("MS-DOC-002", RUN)
    (wm.worktree_path("MS-DOC-001") / "x.txt").write_text("x\n")
    wm.save("MS-DOC-001", "MS-DOC-001: x")
    users = tmp_path / "users-worktree"
    git(scratch_repo, "worktree", "add", "-q", "-b", "users-branch", str(users))
    shutil.rmtree(users)
    shutil.rmtree(wm.worktree_path("MS-DOC-001"))
    assert wm.prune() == ["MS-DOC-001"]
    listed = git(scratch_repo, "worktree", "list", "--porcelain")
    assert "MS-DOC-001" not in listed and "MS-DOC-002" in listed
    assert str(users) in listed  # a worktree of the user's is none of Conveyor's business
    assert GitRepo(scratch_repo).branch_exists("conveyor/ms-doc-001")
    entry = wm.get("MS-DOC-001")
    assert entry is not None and entry.state is WorktreeState.REMOVED and entry.last_operation is Operation.PRUNE
    assert [e.ticket_id for e in wm.list()] == ["MS-DOC-002"]
    assert wm.prune() == []


def test_runs_without_gc_restores_the_previous_value(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    repo = GitRepo(scratch_repo)
    home_config = Path.home() / ".gitconfig"
    home_before = home_config.read_text() if home_config.exists() else None
    assert repo.config_get("gc.auto") is None
    with wm.runs_without_gc():
        assert repo.config_get("gc.auto") == "0"
        with wm.runs_without_gc():  # nested: the inner exit keeps it off
            pass
        assert repo.config_get("gc.auto") == "0"
    assert repo.config_get("gc.auto") is None  # was unset: removed again
    git(scratch_repo, "config", "--local", "gc.auto", "1234")
    with pytest.raises(RuntimeError), wm.runs_without_gc():
        assert repo.config_get("gc.auto") == "0"
        raise RuntimeError("the run failed")
    assert repo.config_get("gc.auto") == "1234"
    assert not (scratch_repo / ".conveyor" / "gc-auto.json").exists()
    assert (home_config.read_text() if home_config.exists() else None) == home_before


def test_runs_without_gc_repairs_what_a_crashed_run_left(scratch_repo: Path) -> None:
    repo = GitRepo(scratch_repo)
    # A run killed inside the context: gc.auto is 0 and the saved previous value is on disk.
    git(scratch_repo, "config", "--local", "gc.auto", "0")
    (scratch_repo / ".conveyor").mkdir()
    (scratch_repo / ".conveyor" / "gc-auto.json").write_text('{"key": "gc.auto", "previous": "250"}\n')
    with manager(scratch_repo).runs_without_gc():
        assert repo.config_get("gc.auto") == "0"
    assert repo.config_get("gc.auto") == "250"


def test_reconcile_records_what_a_crash_kept_from_the_ledger(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    path = open_worktree(wm, "MS-TEST-001")
    wm.ensure("MS-TEST-002", RUN)
    (path / "agent.txt").write_text("the agent committed this itself\n")
    git(path, "add", "agent.txt")
    git(path, "commit", "-q", "-m", "agent commit")
    (scratch_repo / ".conveyor" / "ledger.json").unlink()
    shutil.rmtree(wm.worktree_path("MS-TEST-002"))
    wm.ensure("MS-TEST-003", RUN)
    wm.ensure("MS-TEST-004", RUN)
    removed = wm.remove("MS-TEST-004")
    wm.remove("MS-TEST-003")
    # A resumed ensure re-made MS-TEST-003's worktree and was killed before its ledger write.
    git(scratch_repo, "worktree", "add", "-q", str(wm.worktree_path("MS-TEST-003")), "conveyor/ms-test-003")
    active = wm.reconcile()
    assert [e.ticket_id for e in active] == ["MS-TEST-001", "MS-TEST-003"]
    assert wm.get("MS-TEST-004") == removed  # removed entries are left as they are
    assert wm.get("MS-TEST-002") is None  # never recorded, and its directory is gone
    (commit,) = active[0].commits
    assert active[1].state is WorktreeState.ACTIVE and active[1].last_operation is Operation.RECONCILE
    assert commit.sha == tip(path, "HEAD") and commit.source is CommitSource.BRANCH and commit.message == "agent commit"
    assert active[0].base == tip(scratch_repo, "main") and active[0].last_operation is Operation.RECONCILE


# --- the ledger ----------------------------------------------------------------------------------------------


def test_the_ledger_records_every_operation(scratch_repo: Path) -> None:
    times = iter(datetime(2025, 1, 1, 12, minute, tzinfo=UTC) for minute in range(60))
    wm = WorktreeManager(scratch_repo, author_name="Bot", author_email="bot@localhost", clock=lambda: next(times))
    path = open_worktree(wm, "MS-SEC-010")
    (path / "one.txt").write_text("1\n")
    one = wm.save("MS-SEC-010", "MS-SEC-010: one")
    (path / "two.txt").write_text("2\n")
    git(path, "add", "two.txt")
    git(path, "commit", "-q", "-m", "agent: two")  # made in the worktree, not through the manager
    two = tip(path, "HEAD")
    wm.ensure("MS-SEC-010", RUN2)
    (path / "three.txt").write_text("3\n")
    wm.remove("MS-SEC-010")
    three = tip(scratch_repo, "conveyor/ms-sec-010")
    data = ledger_json(scratch_repo)
    assert data["schema_version"] == 1
    tickets = data["tickets"]
    assert isinstance(tickets, dict)
    entry = tickets["MS-SEC-010"]
    assert entry["branch"] == "conveyor/ms-sec-010" and entry["worktree"] == ".conveyor/worktrees/MS-SEC-010"
    assert entry["run_ids"] == [RUN, RUN2] and entry["state"] == "removed" and entry["last_operation"] == "remove"
    assert [(c["sha"], c["source"], c["run_id"]) for c in entry["commits"]] == [
        (one, "save", RUN),
        (two, "branch", RUN2),
        (three, "save", RUN2),
    ]
    assert [c["message"] for c in entry["commits"]] == [
        "MS-SEC-010: one",
        "agent: two",
        "MS-SEC-010: save uncommitted work before removing the worktree",
    ]
    assert entry["created_at"] == "2025-01-01T12:00:00Z" and entry["updated_at"] > entry["created_at"]
    assert all(datetime.fromisoformat(c["at"]).tzinfo is not None for c in entry["commits"])


def test_an_unreadable_ledger_is_refused_not_overwritten(scratch_repo: Path) -> None:
    wm = manager(scratch_repo)
    ledger = scratch_repo / ".conveyor" / "ledger.json"
    ledger.parent.mkdir()
    ledger.write_text('{"schema_version": 99, "tickets": {}}\n')
    with pytest.raises(LedgerFileError, match="schema_version 99"):
        wm.ensure("MS-SEC-011", RUN)
    ledger.write_text("{not json")
    with pytest.raises(LedgerFileError, match="not JSON"):
        wm.list()
    assert ledger.read_text() == "{not json"


# --- concurrency ---------------------------------------------------------------------------------------------


def test_worktrees_used_from_threads_at_once_do_not_corrupt_each_other(scratch_repo: Path) -> None:
    tickets = [f"MS-PERF-{n:03d}" for n in range(10, 14)]
    rounds = 12
    errors: list[BaseException] = []
    start = threading.Barrier(len(tickets))

    def work(ticket: str) -> None:
        try:
            wm = manager(scratch_repo)  # one manager per thread, as a flow's task would have
            start.wait()
            path = open_worktree(wm, ticket)
            for n in range(rounds):
                (path / f"{ticket}-{n}.txt").write_text(f"{ticket} {n}\n")
                assert wm.save(ticket, f"{ticket}: round {n}") is not None
            rebased = wm.rebase(ticket, "main")  # main moves meanwhile, as the merge queue would move it
            assert rebased.ok and GitRepo(scratch_repo).is_ancestor(rebased.onto, rebased.head)
            wm.remove(ticket)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    wm = manager(scratch_repo)
    with wm.runs_without_gc():
        threads = [threading.Thread(target=work, args=(t,)) for t in tickets]
        for thread in threads:
            thread.start()
        for n in range(5):
            commit_on_main(scratch_repo, f"main-{n}.txt", f"{n}\n")
        for thread in threads:
            thread.join()
    assert errors == []
    assert git(scratch_repo, "fsck", "--no-progress", "--strict").strip() == ""
    for ticket in tickets:
        branch = default_branch(ticket)
        files = set(git(scratch_repo, "ls-tree", "--name-only", branch).split())
        assert files >= {"README.md", *(f"{ticket}-{n}.txt" for n in range(rounds))}
        assert git(scratch_repo, "rev-list", "--count", f"main..{branch}").strip() == str(rounds)
        entry = wm.get(ticket)
        assert entry is not None and entry.state is WorktreeState.REMOVED
        saves = [c for c in entry.commits if c.source is CommitSource.SAVE]
        assert len(saves) == rounds and set(entry.shas) >= {
            sha for sha, _, _ in GitRepo(scratch_repo).commits_between(entry.base, branch)
        }
    assert git(scratch_repo, "worktree", "list").count("\n") == 1
    assert GitRepo(scratch_repo).config_get("gc.auto") is None


def test_git_repo_lists_worktrees_with_their_state(scratch_repo: Path, tmp_path: Path) -> None:
    repo = GitRepo(scratch_repo)
    git(scratch_repo, "worktree", "add", "-q", "-b", "one", str(tmp_path / "one"))
    git(scratch_repo, "worktree", "add", "-q", "--detach", str(tmp_path / "two"))
    git(scratch_repo, "worktree", "lock", "--reason", "on a stick", str(tmp_path / "two"))
    shutil.rmtree(tmp_path / "one")
    main, one, two = repo.worktrees()
    assert (main.path, main.branch, main.locked, main.prunable) == (scratch_repo, "main", None, False)
    assert (one.branch, one.prunable, one.head) == ("one", True, tip(scratch_repo, "main"))
    assert (two.branch, two.locked, two.prunable) == (None, "on a stick", False)
    assert repo.merge_base("main", "one") == tip(scratch_repo, "main")


def test_ensure_the_same_ticket_from_two_threads_makes_one_worktree(scratch_repo: Path) -> None:
    entries = []
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        entries.append(manager(scratch_repo).ensure("MS-SEC-020", RUN))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(entries) == 4 and {e.branch for e in entries} == {"conveyor/ms-sec-020"}
    assert git(scratch_repo, "worktree", "list").count("MS-SEC-020") == 1
    assert [e.ticket_id for e in manager(scratch_repo).list()] == ["MS-SEC-020"]


def test_ledger_models_refuse_what_cannot_be_true() -> None:
    from pydantic import ValidationError

    from conveyor.domain.ledger import Ledger, LedgerCommit, WorktreeEntry

    at = datetime(2025, 1, 1, tzinfo=UTC)
    entry = WorktreeEntry.new("MS-SEC-030", branch="conveyor/ms-sec-030", base="a" * 40, run_id=RUN, at=at,
                              operation=Operation.ENSURE)  # fmt: skip
    commit = LedgerCommit(sha="b" * 40, message="m", at=at, source=CommitSource.SAVE, branch=entry.branch)
    assert entry.with_commits([commit, commit]).with_commits([commit]).shas == ("b" * 40,)
    assert entry.touched(Operation.SAVE, at, run_id=RUN).run_ids == (RUN,)
    with pytest.raises(ValidationError, match="full commit sha"):
        LedgerCommit(sha="HEAD", message="m", at=at, source=CommitSource.SAVE, branch="b")
    with pytest.raises(ValidationError):
        LedgerCommit(sha="b" * 40, message="m", at=datetime(2025, 1, 1), source=CommitSource.SAVE, branch="b")
    with pytest.raises(ValidationError, match="same sha twice"):
        WorktreeEntry.model_validate({**entry.model_dump(), "commits": [commit.model_dump()] * 2})
    with pytest.raises(ValidationError, match="holds the entry"):
        Ledger(tickets={"MS-SEC-031": entry})
    with pytest.raises(ValueError):
        default_branch("not a ticket")
