"""The local forge against real git repositories: squash merges, tracking files, the QA-tree invariant, pushes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.adapters.forges.local import LocalForge
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.merge import MergeRequest, MergeStatus, squash_message
from conveyor.domain.tracking import code_paths, is_tracking_path
from tests.conftest import git

RUN = "RUN-20250101-1200"
RUN2 = "RUN-20250101-1300"
BOT_NAME = "Conveyor Bot"
BOT_EMAIL = "bot@conveyor.test"
TICKET = "TK-FEAT-001"
TITLE = "Add the greeting"


def write(repo: Path, files: dict[str, str | None]) -> None:
    """Write (or, for None, delete) files relative to ``repo``."""
    for name, text in files.items():
        path = repo / name
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def tree(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", f"{ref}^{{tree}}").strip()


def changed(repo: Path, a: str, b: str) -> list[str]:
    return sorted(line for line in git(repo, "diff", "--name-only", a, b).splitlines() if line)


def status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def show(repo: Path, ref: str, path: str) -> str:
    return git(repo, "show", f"{ref}:{path}")


def commit_on_main(repo: Path, files: dict[str, str | None], message: str = "main moved") -> str:
    write(repo, files)
    git(repo, "add", "-A", "--", *files)
    git(repo, "commit", "-q", "-m", message)
    return tip(repo)


def commit_on_branch(repo: Path, branch: str, files: dict[str, str | None], message: str = "work") -> str:
    """Commit on ``branch`` (created from main when missing) in a linked worktree outside the repository."""
    worktree = repo.parent / "worktrees" / branch.replace("/", "-")
    if not worktree.exists():
        exists = git(repo, "branch", "--list", branch).strip() != ""
        git(
            repo,
            "worktree",
            "add",
            "-q",
            *([] if exists else ["-b", branch]),
            str(worktree),
            branch if exists else "main",
        )
    write(worktree, files)
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", message)
    return tip(worktree, "HEAD")


def request(repo: Path, ticket: str = TICKET, *, branch: str | None = None, qa_tree: str | None = None) -> MergeRequest:
    branch = branch or f"conveyor/{ticket.lower()}"
    return MergeRequest(ticket_id=ticket, title=TITLE, branch=branch, qa_tree=qa_tree or tree(repo, branch), run_id=RUN)


def make_forge(repo: Path, *, push: bool = True) -> LocalForge:
    return LocalForge(
        repo, main_branch="main", remote="origin", author_name=BOT_NAME, author_email=BOT_EMAIL, push=push
    )


def trailer_count(repo: Path, ticket: str) -> int:
    found = git(repo, "log", "--format=%H", "--extended-regexp", f"--grep=^Conveyor-Ticket: {ticket}$", "main")
    return len(found.split())


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    """scratch_repo with code and Conveyor's tracking files committed on main."""
    commit_on_main(
        scratch_repo,
        {
            "src/app.py": "def main():\n    return 1\n",
            "src/util.py": "X = 1\n",
            "docs/TASKS.md": "# Tasks\n\n| id | status |\n",
            "automations/run-state.json": '{"run": 0}\n',
        },
        "seed",
    )
    return scratch_repo


# --- merged -----------------------------------------------------------------------------------------------


def test_a_ready_branch_lands_as_one_squash_commit_by_the_bot(repo: Path) -> None:
    old_main = tip(repo)
    branch = "conveyor/tk-feat-001"
    commit_on_branch(repo, branch, {"src/app.py": "def main():\n    return 2\n"}, "first")
    commit_on_branch(repo, branch, {"src/greet.py": "print('hi')\n", "src/util.py": None}, "second")
    req = request(repo)

    outcome = make_forge(repo).integrate(req)

    assert outcome.status is MergeStatus.MERGED and outcome.commit == tip(repo)
    assert outcome.pushed is False  # no remote
    commit = outcome.commit
    assert git(repo, "rev-list", "--parents", "-n1", commit).split() == [commit, old_main]  # one commit, no merge
    assert git(repo, "rev-list", "--count", f"{old_main}..main").strip() == "1"
    message = git(repo, "log", "-1", "--format=%B", commit)
    assert message.strip() == squash_message(TICKET, TITLE, RUN).strip()
    assert message.splitlines()[0] == f"{TICKET}: {TITLE}"
    assert git(repo, "log", "-1", "--format=%(trailers:key=Conveyor-Ticket,valueonly)", commit).strip() == TICKET
    assert git(repo, "log", "-1", "--format=%(trailers:key=Conveyor-Run,valueonly)", commit).strip() == RUN
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", commit).strip() == (
        f"{BOT_NAME} <{BOT_EMAIL}>|{BOT_NAME} <{BOT_EMAIL}>"
    )
    # the main checkout follows main
    assert (repo / "src/app.py").read_text() == "def main():\n    return 2\n"
    assert (repo / "src/greet.py").read_text() == "print('hi')\n"
    assert not (repo / "src/util.py").exists()
    assert status(repo) == ""
    # the invariant: the squash commit's code is exactly the tree that passed QA (no tracking change here)
    assert changed(repo, req.qa_tree, tree(repo, commit)) == []
    assert tree(repo, commit) == req.qa_tree


def test_tracking_files_from_the_working_tree_are_recorded_by_the_squash_commit(repo: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    req = request(repo)
    tasks = "# Tasks\n\n| id | status |\n| TK-FEAT-001 | done |\n"
    state = '{"run": 1, "merged": ["TK-FEAT-001"]}\n'
    report = "# report of the run\n"
    write(
        repo,
        {"docs/TASKS.md": tasks, "automations/run-state.json": state, f"automations/runs/{RUN}/report.md": report},
    )
    write(repo, {"scratch.txt": "a person's notes\n"})  # not a tracking path: never committed by the forge

    outcome = make_forge(repo).integrate(req)

    assert outcome.status is MergeStatus.MERGED and outcome.commit == tip(repo)
    commit = outcome.commit
    assert show(repo, commit, "docs/TASKS.md") == tasks
    assert show(repo, commit, "automations/run-state.json") == state
    assert show(repo, commit, f"automations/runs/{RUN}/report.md") == report
    assert show(repo, commit, "src/app.py") == "def main():\n    return 2\n"
    assert "scratch.txt" not in git(repo, "ls-tree", "-r", "--name-only", commit).split()
    # the tracking edits were committed by the squash: nothing left over but the person's file
    assert status(repo) == "?? scratch.txt\n"
    assert (repo / "docs/TASKS.md").read_text() == tasks
    # the invariant: the squash commit differs from the QA tree only in tracking paths
    drift = changed(repo, req.qa_tree, tree(repo, commit))
    assert drift == sorted(["docs/TASKS.md", "automations/run-state.json", f"automations/runs/{RUN}/report.md"])
    assert all(is_tracking_path(p) for p in drift)


# --- main moved -------------------------------------------------------------------------------------------


def test_main_moving_only_in_tracking_paths_does_not_need_a_rebase(repo: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    req = request(repo)  # QA passed on the branch before main moved
    checkpoint = commit_on_main(
        repo, {"docs/TASKS.md": "# Tasks\n\ncheckpoint\n", "automations/run-state.json": '{"run": 9}\n'}, "checkpoint"
    )

    outcome = make_forge(repo).integrate(req)

    assert outcome.status is MergeStatus.MERGED and outcome.moved_paths == ()
    assert outcome.commit is not None
    assert git(repo, "rev-list", "--parents", "-n1", outcome.commit).split() == [outcome.commit, checkpoint]
    assert show(repo, outcome.commit, "docs/TASKS.md") == "# Tasks\n\ncheckpoint\n"  # main's tracking files kept
    assert show(repo, outcome.commit, "src/app.py") == "def main():\n    return 2\n"
    drift = changed(repo, req.qa_tree, tree(repo, outcome.commit))
    assert drift == ["automations/run-state.json", "docs/TASKS.md"] and code_paths(drift) == []
    assert status(repo) == ""


def test_main_moving_in_code_needs_a_rebase_and_main_stays(repo: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    req = request(repo)
    commit_on_main(repo, {"docs/TASKS.md": "# Tasks\n\nbusy\n"}, "checkpoint")
    moved = commit_on_main(repo, {"src/util.py": "X = 2\n", "src/extra.py": "Y = 1\n"}, "someone's change")
    write(repo, {"docs/TASKS.md": "# Tasks\n\nbeing written\n"})

    outcome = make_forge(repo).integrate(req)

    assert outcome.status is MergeStatus.NEEDS_REBASE
    assert outcome.moved_paths == ("src/extra.py", "src/util.py")  # code only, not the checkpoint's TASKS.md
    assert outcome.commit is None
    assert tip(repo) == moved
    assert status(repo) == " M docs/TASKS.md\n"  # the working tree's tracking edit is untouched, not staged
    assert (repo / "src/app.py").read_text() == "def main():\n    return 1\n"


def test_a_conflicting_edit_on_main_is_needs_rebase_and_main_stays(repo: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    req = request(repo)
    moved = commit_on_main(repo, {"src/app.py": "def main():\n    return 3\n"})

    outcome = make_forge(repo).integrate(req)

    assert outcome.status is MergeStatus.NEEDS_REBASE and outcome.moved_paths == ("src/app.py",)
    assert tip(repo) == moved and status(repo) == ""
    assert (repo / "src/app.py").read_text() == "def main():\n    return 3\n"


def test_merge_tree_reports_conflicts_in_memory_and_merges_clean_changes(repo: Path) -> None:
    ours = commit_on_branch(repo, "conveyor/a", {"src/app.py": "def main():\n    return 2\n"})
    theirs = commit_on_branch(repo, "conveyor/b", {"src/app.py": "def main():\n    return 3\n"})
    other = commit_on_branch(repo, "conveyor/c", {"src/util.py": "X = 9\n"})
    main_before, refs_before = tip(repo), git(repo, "for-each-ref")
    gr = GitRepo(repo)

    merged, conflicts = gr.merge_tree(ours, theirs)
    assert merged is None and conflicts == ["src/app.py"]

    clean, none = gr.merge_tree(ours, other)
    assert none == [] and clean is not None
    assert show(repo, clean, "src/app.py") == "def main():\n    return 2\n"
    assert show(repo, clean, "src/util.py") == "X = 9\n"
    assert tip(repo) == main_before and git(repo, "for-each-ref") == refs_before and status(repo) == ""


# --- refused ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["docs/TASKS.md", "automations/run-state.json", "automations/runs/x/notes.md"])
def test_a_branch_touching_tracking_files_is_refused(repo: Path, path: str) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n", path: "mine\n"})
    before = tip(repo)

    outcome = make_forge(repo).integrate(request(repo))

    assert outcome.status is MergeStatus.REFUSED and path in outcome.detail and outcome.commit is None
    assert tip(repo) == before and status(repo) == ""
    assert (repo / "src/app.py").read_text() == "def main():\n    return 1\n"


def test_a_merge_whose_code_is_not_the_qa_tree_is_refused(repo: Path) -> None:
    first = commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/greet.py": "print('after QA')\n"})
    before = tip(repo)
    write(repo, {"docs/TASKS.md": "# Tasks\n\nworking\n"})

    outcome = make_forge(repo).integrate(request(repo, qa_tree=tree(repo, first)))

    assert outcome.status is MergeStatus.REFUSED and "src/greet.py" in outcome.detail and outcome.commit is None
    assert tip(repo) == before
    assert status(repo) == " M docs/TASKS.md\n"
    assert not (repo / "src/greet.py").exists()


# --- already merged ---------------------------------------------------------------------------------------


def test_a_ticket_is_never_merged_twice(repo: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    forge = make_forge(repo)
    first = forge.integrate(request(repo))
    assert first.status is MergeStatus.MERGED and first.commit is not None
    assert forge.merged_commit(TICKET) == first.commit

    again = forge.integrate(request(repo).model_copy(update={"run_id": RUN2}))

    assert again.status is MergeStatus.ALREADY_MERGED and again.commit == first.commit
    assert tip(repo) == first.commit
    assert trailer_count(repo, TICKET) == 1


def test_a_ticket_id_that_prefixes_another_is_not_confused(repo: Path) -> None:
    forge = make_forge(repo)
    commit_on_branch(repo, "conveyor/tk-feat-001-qa", {"src/qa.py": "QA = 1\n"})
    qa = forge.integrate(request(repo, "TK-FEAT-001-QA"))
    assert qa.status is MergeStatus.MERGED and qa.commit is not None
    assert forge.merged_commit(TICKET) is None
    assert forge.merged_commit("TK-FEAT-00") is None

    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/feat.py": "F = 1\n"})
    feat = forge.integrate(request(repo))

    assert feat.status is MergeStatus.MERGED and feat.commit not in (None, qa.commit)
    assert forge.merged_commit(TICKET) == feat.commit
    assert forge.merged_commit("TK-FEAT-001-QA") == qa.commit
    assert trailer_count(repo, TICKET) == 1 and trailer_count(repo, "TK-FEAT-001-QA") == 1
    assert (repo / "src/qa.py").exists() and (repo / "src/feat.py").exists()


# --- push -------------------------------------------------------------------------------------------------


@pytest.fixture
def origin(repo: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    return bare


def test_main_is_pushed_to_the_remote_after_a_merge(repo: Path, origin: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})

    outcome = make_forge(repo).integrate(request(repo))

    assert outcome.status is MergeStatus.MERGED and outcome.pushed is True
    assert tip(origin, "main") == outcome.commit


def test_no_push_when_pushing_is_off_or_the_remote_refuses(repo: Path, origin: Path, tmp_path: Path) -> None:
    published = tip(origin, "main")
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    off = make_forge(repo, push=False).integrate(request(repo))
    assert off.status is MergeStatus.MERGED and off.pushed is False
    assert tip(origin, "main") == published

    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    pushed = commit_on_main(other, {"NEWS.md": "news\n"})
    git(other, "push", "-q", "origin", "main")
    commit_on_branch(repo, "conveyor/tk-feat-002", {"src/util.py": "X = 2\n"})

    refused = make_forge(repo).integrate(request(repo, "TK-FEAT-002"))

    assert refused.status is MergeStatus.MERGED and refused.pushed is False  # non-fast-forward: not forced
    assert tip(origin, "main") == pushed and tip(repo) == refused.commit


def test_without_a_remote_nothing_is_pushed(repo: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n"})
    outcome = make_forge(repo).integrate(request(repo))
    assert outcome.status is MergeStatus.MERGED and outcome.pushed is False
    assert make_forge(repo).push_main() is False


# --- revert -----------------------------------------------------------------------------------------------


def test_revert_restores_the_code_of_the_squash_commits_parent(repo: Path, origin: Path) -> None:
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/app.py": "def main():\n    return 2\n", "src/new.py": "N\n"})
    forge = make_forge(repo)
    write(repo, {"docs/TASKS.md": "# Tasks\n\nmerged\n"})
    merged = forge.integrate(request(repo))
    assert merged.status is MergeStatus.MERGED and merged.commit is not None
    write(repo, {"docs/TASKS.md": "# Tasks\n\nreverted\n"})

    reverted = forge.revert(merged.commit, f"Revert {TICKET}\n")

    assert reverted == tip(repo) != merged.commit
    assert git(repo, "rev-list", "--parents", "-n1", reverted).split() == [reverted, merged.commit]
    assert (
        git(repo, "log", "-1", "--format=%s|%an <%ae>", reverted).strip() == f"Revert {TICKET}|{BOT_NAME} <{BOT_EMAIL}>"
    )
    assert code_paths(changed(repo, tree(repo, f"{merged.commit}^"), tree(repo, reverted))) == []
    assert show(repo, reverted, "docs/TASKS.md") == "# Tasks\n\nreverted\n"  # tracking files as written
    assert (repo / "src/app.py").read_text() == "def main():\n    return 1\n"
    assert not (repo / "src/new.py").exists()
    assert status(repo) == ""
    assert tip(origin, "main") == reverted


def test_replay_traces_never_enter_the_squash_commit(repo: Path) -> None:
    """Even without a .gitignore entry: delivery threads append to them while a squash commit is built."""
    write(repo, {"automations/memory/replay/RUN-20260101-0000.jsonl": '{"call": 1}\n'})
    write(repo, {"automations/memory/loop_summary.md": "patterns\n"})
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/new.py": "x = 1\n"})
    outcome = make_forge(repo).integrate(request(repo))
    assert outcome.status is MergeStatus.MERGED
    files = git(repo, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert "automations/memory/loop_summary.md" in files
    assert [f for f in files if f.startswith("automations/memory/replay/")] == []


def test_ignored_replay_traces_do_not_break_the_squash_commit(repo: Path) -> None:
    write(repo, {".gitignore": "automations/memory/replay/\n"})
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore traces")
    write(repo, {"automations/memory/replay/RUN-20260101-0000.jsonl": '{"call": 1}\n'})
    commit_on_branch(repo, "conveyor/tk-feat-001", {"src/new.py": "x = 1\n"})
    outcome = make_forge(repo).integrate(request(repo))
    assert outcome.status is MergeStatus.MERGED
    assert "automations/memory/replay" not in git(repo, "ls-tree", "-r", "--name-only", "HEAD")
