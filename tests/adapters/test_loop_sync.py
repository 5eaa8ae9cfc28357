"""sync_with_origin against real repositories: a bare ``origin`` and a colleague's clone that pushes to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conveyor.domain.errors import ConveyorError
from conveyor.ports import utcnow
from conveyor.services.loop_setup import build_workspace, remove_stray_temp_files, sync_with_origin
from conveyor.services.workspace import Workspace
from conveyor.settings import load_settings
from tests.conftest import git

RUN = "RUN-20250101-1200"
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-repo"
LOCAL_TASKS_EDIT = "\n<!-- the loop is writing here -->\n"


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "--", *files)
    git(repo, "commit", "-q", "-m", message)
    return tip(repo)


def workspace(repo: Path) -> Workspace:
    return build_workspace(
        repo, RUN, load_settings(repo), None, clock=utcnow, events=None, cap_usd=5.0, cap_source="explicit"
    )


def edit_tasks_locally(repo: Path) -> str:
    """An uncommitted tracking-file edit in the main checkout, as the loop makes between merges."""
    text = (repo / "docs/TASKS.md").read_text() + LOCAL_TASKS_EDIT
    (repo / "docs/TASKS.md").write_text(text)
    return text


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    """A repository with the sample's TASKS.md and build-spec (sandbox none) and some code on main."""
    (scratch_repo / "docs").mkdir()
    (scratch_repo / "automations").mkdir()
    shutil.copy(SAMPLE / "docs" / "TASKS.md", scratch_repo / "docs" / "TASKS.md")
    spec = (SAMPLE / "automations" / "build-spec.yaml").read_text()
    (scratch_repo / "automations" / "build-spec.yaml").write_text(spec + "agents:\n  sandbox: none\n")
    commit(scratch_repo, {"src/app.py": "A = 1\n"}, "code")
    git(scratch_repo, "add", "-A")
    git(scratch_repo, "commit", "-q", "-m", "seed")
    return scratch_repo


@pytest.fixture
def colleague(repo: Path, tmp_path: Path) -> Path:
    """A clone of ``origin`` (a bare repository ``repo`` pushed main to) where someone else works."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    clone = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    return clone


def test_without_a_remote_there_is_nothing_to_sync(repo: Path) -> None:
    before = tip(repo)
    assert sync_with_origin(workspace(repo)) is None
    assert tip(repo) == before


def test_an_unchanged_or_older_remote_changes_nothing(repo: Path, colleague: Path) -> None:
    ws = workspace(repo)
    assert sync_with_origin(ws) is None
    ahead = commit(repo, {"src/local.py": "L = 1\n"}, "local work not pushed yet")
    assert sync_with_origin(ws) is None
    assert tip(repo) == ahead


def test_a_remote_ahead_is_fast_forwarded_and_tracking_edits_stay(repo: Path, colleague: Path) -> None:
    ws = workspace(repo)
    theirs = commit(colleague, {"src/app.py": "A = 2\n", "src/theirs.py": "T = 1\n"}, "a colleague's fix")
    git(colleague, "push", "-q", "origin", "main")
    tasks = edit_tasks_locally(repo)

    note = sync_with_origin(ws)

    assert note is not None and "fast-forwarded" in note and theirs[:10] in note
    assert tip(repo) == theirs
    assert (repo / "src/app.py").read_text() == "A = 2\n"
    assert (repo / "src/theirs.py").read_text() == "T = 1\n"
    assert (repo / "docs/TASKS.md").read_text() == tasks  # the loop's uncommitted edit is kept
    assert " M docs/TASKS.md" in git(repo, "status", "--porcelain").splitlines()


def test_a_diverged_main_gets_a_merge_commit_with_both_parents(repo: Path, colleague: Path) -> None:
    ws = workspace(repo)
    theirs = commit(colleague, {"src/theirs.py": "T = 1\n"}, "a colleague's change")
    git(colleague, "push", "-q", "origin", "main")
    squash_tasks = (repo / "docs/TASKS.md").read_text() + "\n<!-- NA-SEC-003 done -->\n"
    ours = commit(
        repo,
        {"src/ours.py": "O = 1\n", "docs/TASKS.md": squash_tasks},
        "NA-SEC-003: Phase 1 verification\n\nConveyor-Ticket: NA-SEC-003\nConveyor-Run: " + RUN,
    )
    tasks = edit_tasks_locally(repo)

    note = sync_with_origin(ws)

    assert note is not None and "merged" in note
    merge = tip(repo)
    assert set(git(repo, "rev-list", "--parents", "-n1", merge).split()[1:]) == {theirs, ours}
    assert git(repo, "log", "-1", "--format=%an <%ae>", merge).strip() == "Conveyor <conveyor@localhost>"
    assert git(repo, "show", f"{merge}:src/theirs.py") == "T = 1\n"
    assert git(repo, "show", f"{merge}:src/ours.py") == "O = 1\n"
    assert git(repo, "show", f"{merge}:docs/TASKS.md") == squash_tasks  # our committed tracking files
    assert (repo / "src/theirs.py").read_text() == "T = 1\n"
    assert (repo / "docs/TASKS.md").read_text() == tasks


def test_a_pushed_change_to_tracking_files_stops_the_run(repo: Path, colleague: Path) -> None:
    ws = workspace(repo)
    commit(colleague, {"docs/TASKS.md": "# Tasks\n\nedited by hand\n", "src/app.py": "A = 3\n"}, "hand edit")
    git(colleague, "push", "-q", "origin", "main")
    before = tip(repo)
    tasks = edit_tasks_locally(repo)

    with pytest.raises(ConveyorError, match=r"docs/TASKS\.md"):
        sync_with_origin(ws)

    assert tip(repo) == before
    assert (repo / "docs/TASKS.md").read_text() == tasks
    assert (repo / "src/app.py").read_text() == "A = 1\n"


def test_conflicting_code_on_both_sides_stops_the_run(repo: Path, colleague: Path) -> None:
    ws = workspace(repo)
    commit(colleague, {"src/app.py": "A = 'theirs'\n"}, "theirs")
    git(colleague, "push", "-q", "origin", "main")
    ours = commit(repo, {"src/app.py": "A = 'ours'\n"}, "ours")

    with pytest.raises(ConveyorError, match=r"src/app\.py"):
        sync_with_origin(ws)

    assert tip(repo) == ours and (repo / "src/app.py").read_text() == "A = 'ours'\n"


def test_a_failed_fetch_is_reported_and_the_run_works_on_local_main(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", str(tmp_path / "missing.git"))
    before = tip(repo)

    note = sync_with_origin(workspace(repo))

    assert note is not None and "fetch from origin failed" in note
    assert tip(repo) == before


def test_stray_temp_files_of_interrupted_writes_are_removed_but_not_in_worktrees(tmp_path: Path) -> None:
    strays = [
        "docs/.TASKS.md.ab12.tmp",
        "automations/runs/RUN-1/record/.RUN.json.cd34.tmp",
        ".conveyor/.ledger.json.ef56.tmp",
        ".conveyor/replay/.484e6734.json.gh78.tmp",  # a replay entry being stored when the process was killed
    ]
    kept = ".conveyor/worktrees/TK-FEAT-001/.user.file.tmp"  # a ticket's checkout: not Conveyor's to clean
    for rel in [*strays, kept]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("half")
    assert sorted(remove_stray_temp_files(tmp_path)) == sorted(strays)
    assert (tmp_path / kept).exists()
