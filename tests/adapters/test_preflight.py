"""Preflight of the execution loop (issue 5 §0) against real git repositories: every problem is listed."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor.adapters.lease import RepositoryLease, lease_path, read_lease
from conveyor.domain.budget import derive_soft_cap, open_estimates_usd
from conveyor.domain.run_state import RunState
from conveyor.services.agents import model_table
from conveyor.services.backlog_loader import load_backlog
from conveyor.services.preflight import PreflightReport, preflight
from conveyor.settings import load_settings
from tests.conftest import git

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-repo"
SPEC = "automations/build-spec.yaml"
TASKS = "docs/TASKS.md"
SPEC_TEXT = """\
project: notes-api
task_prefix: NA
budget:
  cap_usd: 5.0
quality_gates:
  - name: tests
    argv: ["git", "--version"]
"""


def commit_all(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    """A ready repository: the sample backlog and a valid build-spec, committed on main."""
    (scratch_repo / "docs").mkdir()
    shutil.copy(SAMPLE / TASKS, scratch_repo / TASKS)
    (scratch_repo / "automations").mkdir()
    (scratch_repo / SPEC).write_text(SPEC_TEXT)
    commit_all(scratch_repo, "conveyor files")
    return scratch_repo


def set_spec(repo: Path, text: str) -> None:
    (repo / SPEC).write_text(text)
    commit_all(repo, "build-spec")


def one(report: PreflightReport, *needles: str) -> str:
    """The single problem that contains every needle."""
    hits = [p for p in report.problems if all(n in p for n in needles)]
    assert len(hits) == 1, report.describe()
    return hits[0]


def test_a_clean_valid_repository_passes(repo: Path) -> None:
    report = preflight(repo)
    assert report.ok, report.describe()
    assert report.problems == []
    assert report.backend == "deterministic"
    assert report.cap_usd == 5.0
    assert report.cap_source == "explicit"
    assert any(
        n.startswith("agents: deterministic mode (no LLM)") and "cannot be implemented" in n for n in report.notes
    )
    assert any(n.startswith("budget: cap $5.00 set explicitly") for n in report.notes)
    assert report.describe().startswith("Preflight passed.")


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(SAMPLE / TASKS, tmp_path / TASKS)
    report = preflight(tmp_path)
    assert not report.ok
    one(report, "is not a git repository")


def test_a_missing_directory_is_one_problem(tmp_path: Path) -> None:
    report = preflight(tmp_path / "nowhere")
    assert report.problems == [f"repository: {tmp_path / 'nowhere'} does not exist or is not a directory."]


def test_dirty_checkout_lists_the_paths_but_not_conveyor_state(repo: Path) -> None:
    (repo / "README.md").write_text("# edited\n")
    (repo / "src").mkdir()
    (repo / "src" / "new.py").write_text("x = 1\n")
    (repo / ".conveyor").mkdir()
    (repo / ".conveyor" / "scratch.json").write_text("{}")  # no .gitignore: preflight ignores it anyway
    report = preflight(repo)
    problem = one(report, "not clean")
    assert "README.md" in problem
    assert "src/new.py" in problem
    assert ".conveyor" not in problem
    assert "2 changed or untracked path(s)" in problem


def test_not_on_the_main_branch_of_the_build_spec(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    one(preflight(repo), "on branch feature, not on main")
    set_spec(repo, SPEC_TEXT + "git:\n  main_branch: feature\n")
    assert preflight(repo).ok


def test_detached_head_is_reported(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    one(preflight(repo), "HEAD is detached")


def test_invalid_build_spec_names_file_and_line(repo: Path) -> None:
    set_spec(repo, SPEC_TEXT + "workerz: 3\n")
    report = preflight(repo)
    problem = one(report, "build-spec: automations/build-spec.yaml:")
    assert "workerz" in problem
    assert report.backend == "unknown"
    assert report.cap_source == "none"


def test_malformed_tasks_md_names_file_and_line(repo: Path) -> None:
    path = repo / TASKS
    path.write_text(path.read_text().replace("| NA-CQ-002 | not-started |", "| bad id | not-started |"))
    commit_all(repo)
    problem = one(preflight(repo), "backlog: docs/TASKS.md:", "malformed ticket id 'bad id'")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "| bad id |" in text)
    assert f"docs/TASKS.md:{line}:" in problem


def test_malformed_run_state_names_the_file(repo: Path) -> None:
    (repo / "automations" / "run-state.json").write_text("{not json\n")
    commit_all(repo)
    one(preflight(repo), "backlog: automations/run-state.json")


def test_no_backlog(repo: Path) -> None:
    git(repo, "rm", "-q", TASKS)
    commit_all(repo)
    one(preflight(repo), "docs/TASKS.md", "no backlog yet")


def test_dependency_cycle_and_unknown_dependency(repo: Path) -> None:
    path = repo / TASKS
    text = path.read_text()
    cyclic = text.replace("| conveyor/na-sec-001 | |", "| conveyor/na-sec-001 | NA-SEC-002 |")
    assert cyclic != text
    path.write_text(cyclic)
    commit_all(repo)
    one(preflight(repo), "docs/TASKS.md:", "cycle")

    path.write_text(text.replace("| conveyor/na-cq-001 | NA-SEC-003 |", "| conveyor/na-cq-001 | NA-SEC-099 |"))
    commit_all(repo)
    one(preflight(repo), "docs/TASKS.md:", "NA-SEC-099")


def test_gate_commands_must_exist_on_path_or_in_the_repo(repo: Path) -> None:
    (repo / "scripts").mkdir()
    (repo / "scripts" / "check.sh").write_text("#!/bin/sh\nexit 0\n")
    set_spec(
        repo,
        SPEC_TEXT
        + '  - name: lint\n    argv: ["no-such-tool-3f9a", "."]\n'
        + '  - name: local\n    argv: ["scripts/check.sh"]\n',
    )
    report = preflight(repo)
    problem = one(report, "quality gate 'lint'")
    assert "no-such-tool-3f9a" in problem
    assert len(report.problems) == 1, report.describe()


def test_scripted_backend_needs_an_existing_script(repo: Path) -> None:
    set_spec(repo, SPEC_TEXT + "agents:\n  backend: scripted\n")
    one(preflight(repo), "scripted but agents.script names no script file")

    set_spec(repo, SPEC_TEXT + "agents:\n  backend: scripted\n  script: automations/demo.script.json\n")
    report = preflight(repo)
    assert report.backend == "scripted"
    one(report, "automations/demo.script.json", "does not exist")

    (repo / "automations" / "demo.script.json").write_text("[]\n")
    commit_all(repo)
    report = preflight(repo)
    assert report.ok, report.describe()
    assert any("scripted backend named explicitly" in n for n in report.notes)


@pytest.mark.parametrize("backend", ["anthropic", "claude-code"])
def test_llm_backends_need_an_api_key(repo: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_spec(repo, SPEC_TEXT + f"agents:\n  backend: {backend}\n")
    one(preflight(repo), f"agents.backend is {backend} but ANTHROPIC_API_KEY is not set")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    report = preflight(repo)
    assert report.ok, report.describe()
    assert report.backend == backend


def test_auto_backend_with_a_key_is_anthropic(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    report = preflight(repo)
    assert report.ok
    assert report.backend == "anthropic"
    assert not any("deterministic" in n for n in report.notes)


def test_without_a_cap_a_soft_cap_is_derived_and_noted(repo: Path) -> None:
    set_spec(repo, SPEC_TEXT.replace("budget:\n  cap_usd: 5.0\n", "budget:\n  soft_cap_factor: 2.0\n"))
    report = preflight(repo)
    assert report.ok, report.describe()
    settings = load_settings(repo)
    estimates = open_estimates_usd(load_backlog(repo).backlog, model_table(settings.agents).prices())
    assert len(estimates) == 7  # two of the sample's nine tickets are done
    assert report.cap_source == "derived"
    assert report.cap_usd == derive_soft_cap(sum(estimates.values()), 2.0)
    assert any(n.startswith("budget: no cap set; soft cap $") and "factor 2" in n for n in report.notes)


def test_nothing_to_estimate_means_no_cap(repo: Path) -> None:
    set_spec(repo, SPEC_TEXT.replace("budget:\n  cap_usd: 5.0\n", ""))
    path = repo / TASKS
    text = path.read_text().replace("| in-progress |", "| done |").replace("| not-started |", "| done |")
    path.write_text(text)
    commit_all(repo)
    report = preflight(repo)
    assert report.ok, report.describe()
    assert (report.cap_usd, report.cap_source) == (None, "none")


def test_explicit_settings_are_used_as_given(repo: Path) -> None:
    settings = load_settings(repo, {"budget": {"cap_usd": 12.5}})
    report = preflight(repo, settings)
    assert (report.cap_usd, report.cap_source) == (12.5, "explicit")


def test_resume_ignores_dirty_tracking_files_but_not_code(repo: Path) -> None:
    path = repo / TASKS
    path.write_text(path.read_text().replace("| not-started |", "| in-progress |", 1))
    now = datetime.now(UTC)
    state = RunState(run_id="RUN-20260101-0000", repo=str(repo), started_at=now, updated_at=now)
    (repo / "automations" / "run-state.json").write_text(state.model_dump_json(indent=2))
    record = repo / "automations" / "runs" / "RUN-20260101-0000" / "record"
    record.mkdir(parents=True)
    (record / "RUN.json").write_text("{}")

    fresh = one(preflight(repo), "not clean")
    assert "docs/TASKS.md" in fresh
    assert "automations/run-state.json" in fresh
    assert "automations/runs/RUN-20260101-0000/record/RUN.json" in fresh
    assert preflight(repo, resume=True).ok

    (repo / "app.py").write_text("print('half done')\n")
    problem = one(preflight(repo, resume=True), "not clean")
    assert "app.py" in problem
    assert "docs/TASKS.md" not in problem
    assert "1 changed or untracked path(s)" in problem


def test_a_live_foreign_lease_is_a_problem(repo: Path) -> None:
    lease = RepositoryLease(repo, run_id="RUN-20260101-0900", command="run", heartbeat=False)
    lease.acquire()
    try:
        one(preflight(repo), "lease:", "RUN-20260101-0900")
        assert preflight(repo, own_run_id="RUN-20260101-0900").ok
        assert preflight(repo, check_lease=False).ok
    finally:
        lease.release()
    assert preflight(repo).ok


def test_a_dead_lease_is_not_a_problem(repo: Path) -> None:
    lease = RepositoryLease(repo, run_id="RUN-20260101-0900", command="run", heartbeat=False)
    lease.acquire()
    held = read_lease(repo)
    assert held is not None
    past = datetime.now(UTC) - timedelta(minutes=5)
    expired = held.model_copy(update={"heartbeat": past, "expiry": past + timedelta(seconds=60)})
    lease_path(repo).write_text(expired.model_dump_json())
    report = preflight(repo)
    assert report.ok, report.describe()
    assert any(n.startswith("lease: the stale lease of run RUN-20260101-0900") for n in report.notes)


def test_several_problems_are_all_listed(repo: Path) -> None:
    set_spec(
        repo,
        SPEC_TEXT.replace('["git", "--version"]', '["no-such-tool-3f9a"]') + "agents:\n  backend: scripted\n",
    )
    git(repo, "switch", "-q", "-c", "feature")
    (repo / "stray.txt").write_text("left over\n")
    lease = RepositoryLease(repo, run_id="RUN-20260101-0900", command="run", heartbeat=False)
    lease.acquire()
    try:
        report = preflight(repo)
    finally:
        lease.release()
    assert not report.ok
    for needles in [
        ("not clean", "stray.txt"),
        ("on branch feature, not on main",),
        ("quality gate 'tests'", "no-such-tool-3f9a"),
        ("scripted but agents.script names no script file",),
        ("lease:", "RUN-20260101-0900"),
    ]:
        one(report, *needles)
    assert len(report.problems) == 5
    text = report.describe()
    assert text.startswith("Preflight failed with 5 problem(s); nothing was started:")
    assert text.index("stray.txt") < text.index("Notes:")
