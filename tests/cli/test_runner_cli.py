"""The runner's commands end to end, on a scratch git repository holding the example design-doc workflow.

Driven through ``conveyor.cli.app.main`` in-process and through the installed ``conveyor`` script as real
subprocesses: a terminal answering on stdin, and a second shell finishing gates while the runner waits.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli.app import main
from conveyor.services.runner import Runner, RunnerClock
from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sample-repo" / "automations"
CONVEYOR = Path(sys.executable).parent / "conveyor"
ARTIFACTS = "docs/designs/robot"
OUTPUTS = {
    "G1": ("BRIEF.md", "# Brief\n\n## Problem\n\nx\n\n## Goals\n\ny\n\n## Non-goals\n\nz\n"),
    "G2": ("SOURCES.md", "# Sources\n\n- https://example.org/a\n- https://example.org/b\n1. A book\n"),
    "G3": ("DESIGN.md", "# Design doc\n\n## Context\n\n## Design\n\n## Alternatives\n\n## Risks\n"),
}


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    for folder in ("workflows", "gates"):
        shutil.copytree(EXAMPLE / folder, scratch_repo / "automations" / folder)
    git(scratch_repo, "add", "automations")
    git(scratch_repo, "commit", "-q", "-m", "design-doc workflow")
    return scratch_repo


def write_output(repo: Path, gate: str) -> Path:
    name, text = OUTPUTS[gate]
    path = repo / ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run_json(repo: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / f"automations/runs/{run_id}/record/RUN.json").read_text())
    return data


def attempt_json(repo: Path, run_id: str, gate: str, n: int = 1) -> dict[str, Any]:
    path = repo / f"automations/runs/{run_id}/record/gates/{gate}/attempt-{n}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def only_run(repo: Path) -> str:
    runs = [p.name for p in (repo / "automations/runs").iterdir() if p.name.startswith("RUN-")]
    assert len(runs) == 1, runs
    return runs[0]


def flat(text: str) -> str:
    """Console output with line wrapping undone."""
    return " ".join(text.split())


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def conveyor(*args: str, repo: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONVEYOR), *args, "--repo", str(repo)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def start_workflow(repo: Path, *extra: str, stdin: int = subprocess.PIPE) -> subprocess.Popen[str]:
    argv = [str(CONVEYOR), "workflow", "run", "design-doc", "--slug", "robot", "--artifact-path", ARTIFACTS]
    return subprocess.Popen(
        [*argv, *extra, "--repo", str(repo)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def prompt_path(repo: Path, gate: str) -> Path | None:
    runs = repo / "automations/runs"
    if not runs.is_dir():
        return None
    found = list(runs.glob(f"RUN-*/logs/gates/{gate}/prompt.txt"))
    return found[0] if found else None


def gate_started(repo: Path, gate: str) -> bool:
    """The runner wrote the gate's prompt packet, after recording its attempt as RUNNING."""
    return prompt_path(repo, gate) is not None


def assert_hashes_match(repo: Path, run_id: str) -> None:
    for gate, (name, _) in OUTPUTS.items():
        attempt = attempt_json(repo, run_id, gate)
        assert attempt["status"] == "PASS", attempt
        digest = hashlib.sha256((repo / ARTIFACTS / name).read_bytes()).hexdigest()
        assert attempt["artifacts"] == [{"path": f"{ARTIFACTS}/{name}", "sha256": digest, "exists": True}]


# --- (a) answered in the terminal ------------------------------------------------------------------


@pytest.mark.slow
def test_workflow_run_answered_in_the_terminal(repo: Path, tmp_path: Path) -> None:
    topic = tmp_path / "topic.txt"
    topic.write_text("Robots that retry politely.\n")
    process = start_workflow(repo, "--depth", "deep", "--prompt-file", str(topic))
    assert process.stdin is not None
    try:
        for gate in ("G1", "G2", "G3"):
            wait_for(partial(gate_started, repo, gate), f"{gate} to start")
            write_output(repo, gate)
            process.stdin.write("\n")
            process.stdin.flush()
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    run_id = only_run(repo)
    record = run_json(repo, run_id)
    assert record["status"] == "PASSED"
    assert record["depth"] == "deep"
    assert record["mode"] == "workflow"
    assert [(g["gate"], g["status"]) for g in record["gates"]] == [("G1", "PASS"), ("G2", "PASS"), ("G3", "PASS")]
    assert_hashes_match(repo, run_id)
    assert f"run {run_id}: PASSED" in out
    packet = (repo / f"automations/runs/{run_id}/logs/gates/G1/prompt.txt").read_text()
    assert f'Write the brief for "robot" in {ARTIFACTS}/BRIEF.md' in packet
    assert "Robots that retry politely." in packet
    assert f"- {ARTIFACTS}/BRIEF.md" in packet
    assert f"{ARTIFACTS}/BRIEF.md has the headings: Problem, Goals, Non-goals" in packet
    assert f"conveyor gate finish --run {run_id} --gate G1" in packet
    assert "at deep depth" in (repo / f"automations/runs/{run_id}/logs/gates/G2/prompt.txt").read_text()
    assert not (repo / ".conveyor/lease").exists()  # released


# --- (b) finished from another shell ---------------------------------------------------------------


@pytest.mark.slow
def test_workflow_run_finished_from_another_shell(repo: Path) -> None:
    assert (
        main(
            [
                "runs",
                "start",
                "--workflow",
                "design-doc",
                "--slug",
                "other",
                "--artifact-path",
                "x",
                "--repo",
                str(repo),
            ]
        )
        == 0
    )
    manual_run = only_run(repo)
    process = start_workflow(repo, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: gate_started(repo, "G1"), "G1 to start")
        packet = prompt_path(repo, "G1")
        assert packet is not None
        run_id = packet.parents[3].name
        # the runner holds the lease: writing to another run is refused, naming the holder
        refused = conveyor("gate", "start", "--run", manual_run, "--gate", "G1", repo=repo)
        assert refused.returncode == 1
        assert f"leased by run {run_id} (workflow run design-doc" in flat(refused.stderr)
        # a gate the runner is not at is refused
        early = conveyor("gate", "finish", "--run", run_id, "--gate", "G3", repo=repo)
        assert early.returncode == 1
        assert "no running attempt" in flat(early.stderr)
        for gate in ("G1", "G2", "G3"):
            wait_for(partial(gate_started, repo, gate), f"{gate} to start")
            write_output(repo, gate)
            done = conveyor("gate", "finish", "--run", run_id, "--gate", gate, "--wait", "15", repo=repo)
            assert done.returncode == 0, done.stderr
            assert f"{gate} attempt 1: PASS" in done.stdout
            assert not (repo / f"automations/runs/{run_id}/logs/gates/{gate}/finish.request").exists()
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "finish requested from another shell" in out
    assert run_json(repo, run_id)["status"] == "PASSED"
    assert_hashes_match(repo, run_id)
    assert run_json(repo, manual_run)["status"] == "RUNNING"


@pytest.mark.slow
def test_gate_fail_from_another_shell_stops_the_workflow(repo: Path) -> None:
    process = start_workflow(repo, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: gate_started(repo, "G1"), "G1 to start")
        run_id = only_run(repo)
        failed = conveyor("gate", "fail", "--run", run_id, "--gate", "G1", "--reason", "brief rejected", repo=repo)
        assert failed.returncode == 0, failed.stderr
        assert "failure reason: brief rejected" in failed.stdout
        process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 1
    record = run_json(repo, run_id)
    assert record["status"] == "FAILED"
    assert attempt_json(repo, run_id, "G1")["failure_reason"] == "brief rejected"


@pytest.mark.slow
def test_interrupt_cancels_the_run(repo: Path) -> None:
    process = start_workflow(repo, stdin=subprocess.DEVNULL)
    try:
        wait_for(partial(gate_started, repo, "G1"), "G1 to start")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "interrupted" in err
    run_id = only_run(repo)
    assert run_json(repo, run_id)["status"] == "CANCELED"
    assert attempt_json(repo, run_id, "G1")["failure_reason"] == "interrupted"
    assert not (repo / ".conveyor/lease").exists()


# --- (c) a failing gate stops the run ---------------------------------------------------------------


@pytest.mark.slow
def test_missing_outputs_fail_the_gate_and_stop_the_run(repo: Path) -> None:
    write_output(repo, "G1")  # G2's SOURCES.md is never written
    process = start_workflow(repo)
    out, err = process.communicate("\n\n\n", timeout=20)
    assert process.returncode == 1
    run_id = only_run(repo)
    assert f"run {run_id} FAILED at G2" in flat(err)
    record = run_json(repo, run_id)
    assert record["status"] == "FAILED"
    gates = {g["gate"]: g for g in record["gates"]}
    assert gates["G1"]["status"] == "PASS"
    assert gates["G2"]["status"] == "FAIL"
    assert gates["G3"] == {"gate": "G3", "name": "Design", "contract": "G3", "status": "PENDING", "attempts": []}
    attempt = attempt_json(repo, run_id, "G2")
    assert attempt["status"] == "FAIL"
    assert f"{ARTIFACTS}/SOURCES.md does not exist" in str(attempt["failure_reason"])
    assert attempt["artifacts"] == [{"path": f"{ARTIFACTS}/SOURCES.md", "sha256": None, "exists": False}]
    assert not (repo / f"automations/runs/{run_id}/logs/gates/G3").exists()
    assert "G2 attempt 1: FAIL" in out


def test_fail_typed_in_the_terminal(repo: Path) -> None:
    """In-process: the service reads answers from any TextIO; `fail <reason>` fails the gate."""
    lines: list[str] = []
    runner = Runner(repo, clock=RunnerClock(sleep=lambda _s: None), poll_s=0.0)
    record = runner.run_workflow(
        "design-doc",
        slug="robot",
        artifact_path=ARTIFACTS,
        answers=io.StringIO("fail not my topic\n"),
        report=lines.append,
    )
    assert record.status.value == "FAILED"
    assert record.gates[0].attempts[0].failure_reason == "not my topic"
    assert any("failure reason: not my topic" in line for line in lines)


# --- (d) manual mode -------------------------------------------------------------------------------


def test_manual_mode(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = ["--repo", str(repo)]
    assert main(["runs", "start", "--workflow", "design-doc", "--slug", "robot", "--artifact-path", ARTIFACTS, *r]) == 0
    run_id = only_run(repo)
    assert f"started {run_id}" in capsys.readouterr().out

    assert main(["gate", "start", "--run", run_id, "--gate", "G1", "--agent", "planner", *r]) == 0
    assert (repo / f"automations/runs/{run_id}/logs/gates/G1/prompt.txt").is_file()
    assert main(["invocation", "record", "--run", run_id, "--gate", "G1", "--agent", "planner", *r]) == 0
    assert "inv-0001: planner on G1 attempt 1: SUCCESS" in capsys.readouterr().out
    assert main(["gate", "finish", "--run", run_id, "--gate", "G1", *r]) == 1  # BRIEF.md missing
    assert "gate G1 FAILED" in capsys.readouterr().err
    assert run_json(repo, run_id)["status"] == "RUNNING"  # manual mode: the run goes on

    assert main(["gate", "start", "--run", run_id, "--gate", "G1", *r]) == 0
    write_output(repo, "G1")
    assert main(["gate", "finish", "--run", run_id, "--gate", "G1", *r]) == 0
    assert "G1 attempt 2: PASS" in capsys.readouterr().out
    second = attempt_json(repo, run_id, "G1", 2)
    assert second["agent"] == "planner"  # defaults to the workflow's agent for the gate
    assert attempt_json(repo, run_id, "G1", 1)["invocation_ids"] == ["inv-0001"]

    assert main(["gate", "start", "--run", run_id, "--gate", "G2", "--agent", "research", *r]) == 0
    assert main(["gate", "fail", "--run", run_id, "--gate", "G2", "--reason", "Missing required quotes", *r]) == 0
    assert attempt_json(repo, run_id, "G2")["failure_reason"] == "Missing required quotes"
    assert main(["gate", "finish", "--run", run_id, "--gate", "G2", *r]) == 1  # nothing running
    assert "no running attempt" in flat(capsys.readouterr().err)

    assert main(["runs", "complete", "--run", run_id, "--status", "CANCELED", *r]) == 0
    assert main(["runs", "complete", "--run", run_id, "--status", "PASSED", *r]) == 1
    assert "already finished as CANCELED" in flat(capsys.readouterr().err)
    assert main(["runs", "list", *r]) == 0
    assert f"{run_id}  CANCELED" in capsys.readouterr().out
    assert main(["runs", "show", "--run", run_id, *r]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == run_json(repo, run_id)
    assert [e["kind"] for e in shown["events"]][-1] == "run.completed"
    assert main(["runs", "show", "--run", "RUN-20000101-0000", *r]) == 1
    assert not (repo / ".conveyor/lease").exists()


# --- (e) bad input ---------------------------------------------------------------------------------


def test_malformed_contract_exits_2_with_file_and_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / "automations/gates/G2.contract.json"
    lines = path.read_text().splitlines()
    lines[3] = '  "description": unquoted,'
    path.write_text("\n".join(lines) + "\n")
    code = main(["workflow", "run", "design-doc", "--slug", "robot", "--artifact-path", ARTIFACTS, "--repo", str(repo)])
    assert code == 2
    assert "automations/gates/G2.contract.json:4: error: invalid JSON" in capsys.readouterr().err
    assert not (repo / "automations/runs").exists()  # nothing was started


@pytest.mark.slow
def test_malformed_contract_through_the_script(repo: Path) -> None:
    (repo / "automations/gates/G3.contract.json").write_text(
        '{"gate": "G3",\n "name": "Design",\n "validations": [{"type": "nope"}]}\n'
    )
    done = conveyor("runs", "start", "--workflow", "design-doc", "--slug", "s", "--artifact-path", "a", repo=repo)
    assert done.returncode == 2
    assert "automations/gates/G3.contract.json:3" in done.stderr


def test_bad_arguments_exit_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["runs", "start", "--workflow", "design-doc", "--slug", "s", "--artifact-path", "/etc", "--repo", str(repo)]
    )
    assert code == 2
    assert "--artifact-path '/etc' must be a path relative to the repository" in flat(capsys.readouterr().err)
    assert main(["workflow", "run", "nope", "--slug", "s", "--artifact-path", "a", "--repo", str(repo)]) == 1
    assert "no workflow 'nope'" in flat(capsys.readouterr().err)


def test_script_is_this_checkout() -> None:
    assert CONVEYOR.exists(), CONVEYOR
    assert os.access(CONVEYOR, os.X_OK)
