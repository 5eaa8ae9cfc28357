"""`conveyor init`, `status` and `validate` on scratch git repositories, through the real CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.adapters.tasks_md import read_tasks_file
from conveyor.cli.app import main
from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample-repo"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_scaffolds_and_never_overwrites(scratch_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scratch_repo / ".gitignore").write_text("node_modules/\n.conveyor/")  # no final newline
    code, out, _ = run(capsys, "init", str(scratch_repo))
    assert code == 0
    for path in (
        "automations/build-spec.yaml",
        "docs/TASKS.md",
        "docs/reports/deferred/.gitkeep",
        "docs/tasks/.gitkeep",
    ):
        assert (scratch_repo / path).exists(), path
        assert f"created {path}" in out
    gitignore = (scratch_repo / ".gitignore").read_text()
    assert gitignore.startswith("node_modules/\n.conveyor/\n")
    assert gitignore.count(".conveyor/") == 1 and "automations/runs/*/logs/" in gitignore
    assert read_tasks_file(scratch_repo / "docs/TASKS.md").tickets() == []
    assert not (scratch_repo / ".conveyor/lease").exists()  # released

    spec = scratch_repo / "automations/build-spec.yaml"
    spec.write_text("task_prefix: MS\n")
    before = {p: p.read_bytes() for p in scratch_repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    code, out, _ = run(capsys, "init", str(scratch_repo))
    assert code == 0 and "created" not in out and "kept    automations/build-spec.yaml" in out
    after = {p: p.read_bytes() for p in scratch_repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert {p: b for p, b in after.items() if p.name not in {"lease.lock"}} == {
        p: b for p, b in before.items() if p.name not in {"lease.lock"}
    }
    git(scratch_repo, "add", "-A")
    tracked = git(scratch_repo, "ls-files").split()
    assert not any(t.startswith(".conveyor") for t in tracked)


def test_init_then_validate_and_status_on_an_empty_backlog(
    scratch_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "init", str(scratch_repo))[0] == 0
    code, out, err = run(capsys, "validate", "--repo", str(scratch_repo))
    assert code == 0, err
    assert "valid" in out
    code, out, _ = run(capsys, "status", "--repo", str(scratch_repo))
    assert code == 0 and "0 tickets" in out and "deterministic mode" in out


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE, target)
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "sample")
    return target


def test_status_of_the_bundled_example(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "--repo", str(sample))
    assert code == 0
    assert "notes-api" in out and "9 tickets" in out
    assert "not-started │       6" in out and "done        │       2" in out
    assert "Running: NA-SEC-003" in out
    assert "Critical path: NA-SEC-003 → NA-CQ-002 → NA-CQ-003 → NA-TEST-001 → NA-TEST-002" in out
    assert "of $5.00 (cap)" in out and "mode normal" in out


def test_status_honours_a_hand_edit(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = sample / "docs/TASKS.md"
    tasks.write_text(tasks.read_text().replace("| NA-SEC-003 | in-progress |", "| NA-SEC-003 | done |"))
    code, out, _ = run(capsys, "status", "--repo", str(sample))
    assert code == 0
    ready_section = out.split("Ready (2)")[1].split("Critical path")[0]
    assert "NA-CQ-001" in ready_section and "NA-CQ-002" in ready_section


def test_status_reports_unknown_status_and_deadlock(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = sample / "docs/TASKS.md"
    text = tasks.read_text().replace("| NA-SEC-003 | in-progress |", "| NA-SEC-003 | failed |")
    tasks.write_text(text.replace("| NA-CQ-001 | not-started |", "| NA-CQ-001 | wip |"))
    code, out, _ = run(capsys, "status", "--repo", str(sample))
    assert code == 0
    assert "wip" in out and "deadlock" in out
    assert "NA-CQ-002: waits on NA-SEC-003 (failed)" in out
    assert tasks.read_text() == text.replace("| NA-CQ-001 | not-started |", "| NA-CQ-001 | wip |")  # untouched


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (lambda t: t.replace("| NA-CQ-001 | not-started |", "| NA-CQ-001 | not-started | extra |"), 11, "cells"),
        (lambda t: t.replace("| NA-CQ-002 |", "| NA-CQ-001 |"), 12, "duplicate"),
        (lambda t: t.replace("na-cq-001 | NA-SEC-003 |", "na-cq-001 | NA-SEC-099 |"), 11, "NA-SEC-099"),
        (lambda t: t.replace("na-cq-001 | NA-SEC-003 |", "na-cq-001 | NA-CQ-003 |"), 11, "cycle"),
        (lambda t: t.replace("| NA-CQ-001 |", "| na-cq-1 |"), 11, "PREFIX-CAT-NNN"),
    ],
)
def test_validate_rejects_malformed_tasks_md_with_file_and_line(
    sample: Path, capsys: pytest.CaptureFixture[str], edit: object, line: int | None, message: str
) -> None:
    tasks = sample / "docs/TASKS.md"
    broken = edit(tasks.read_text())  # type: ignore[operator]
    tasks.write_text(broken)
    for command in ("validate", "status"):
        code, _, err = run(capsys, command, "--repo", str(sample))
        assert code == 2
        assert "docs/TASKS.md:" in err and message in err
        if line is not None:
            assert f"docs/TASKS.md:{line}:" in err
    assert tasks.read_text() == broken


def test_validate_reports_every_broken_file_at_once(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (sample / "automations/build-spec.yaml").write_text("workers: 0\n")
    (sample / "automations/run-queue.json").write_text('{\n  "schema_version": 1,\n  "task_prefix": 7\n}\n')
    code, _, err = run(capsys, "validate", "--repo", str(sample))
    assert code == 2
    assert "automations/build-spec.yaml:1:" in err and "workers" in err
    assert "automations/run-queue.json:3:" in err


def test_installed_entry_point_runs_status(sample: Path) -> None:
    exe = Path(sys.executable).parent / "conveyor"
    done = subprocess.run([str(exe), "status", "--repo", str(sample)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "9 tickets" in done.stdout
    bad = subprocess.run(
        [str(exe), "status", "--repo", str(sample / "nope")], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "docs/TASKS.md" in bad.stderr


def test_a_usage_error_is_a_message_and_exit_2_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --bogus" in err and "Traceback" not in err
