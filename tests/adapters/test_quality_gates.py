"""QA gates run by the loop itself (issue 5 §2): real subprocesses in a scratch worktree, under both sandboxes."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from conveyor.adapters.quality_gates import run_quality_gates
from conveyor.adapters.sandbox.bwrap import BwrapSandbox
from conveyor.adapters.sandbox.local import LocalSandbox
from conveyor.adapters.sandbox.select import bwrap_problem
from conveyor.domain.build_spec import GateCommand
from conveyor.domain.command import CommandResult
from conveyor.domain.errors import ConveyorError
from conveyor.domain.qa import NO_GATES_NOTE, GateOutcome, QAReport, log_file_stems, tail_text
from conveyor.ports import Sandbox
from tests.support.processes import no_process_running, process_gone

BWRAP_PROBLEM = bwrap_problem()
needs_bwrap = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"bubblewrap does not work here: {BWRAP_PROBLEM}")
PY = sys.executable


def _sandboxes() -> list[object]:
    return [pytest.param(LocalSandbox(), id="none"), pytest.param(BwrapSandbox(), id="bwrap", marks=needs_bwrap)]


def gate(name: str, *argv: str, timeout_s: float = 30) -> GateCommand:
    return GateCommand(name=name, argv=list(argv), timeout_s=timeout_s)


def py_gate(name: str, code: str, *, timeout_s: float = 30) -> GateCommand:
    return gate(name, PY, "-c", code, timeout_s=timeout_s)


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "worktree"
    path.mkdir()
    (path / "pkg.py").write_text("VALUE = 41\n")
    return path


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "automations" / "runs" / "RUN-20260101-0000" / "logs" / "qa" / "CV-QA-001"


# -- running gates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_passing_gates_run_in_the_worktree_and_log_their_output(
    sandbox: Sandbox, worktree: Path, log_dir: Path
) -> None:
    gates = [
        py_gate("import", "import os, pkg; print('cwd', os.getcwd()); print('value', pkg.VALUE + 1)"),
        gate("lint", "sh", "-c", "echo lint-out; echo lint-err >&2"),
    ]
    report = run_quality_gates(worktree, gates, sandbox=sandbox, log_dir=log_dir, attempt=1)

    assert report.passed
    assert report.first_failure is None and report.failures == ()
    assert report.sandbox == sandbox.name
    assert [g.name for g in report.gates] == ["import", "lint"]
    first, second = report.gates
    assert first.passed and first.exit_code == 0 and not first.timed_out and first.error is None
    assert first.argv == tuple(gates[0].argv)
    assert first.sandbox == sandbox.name
    assert f"cwd {worktree.resolve()}" in first.output_tail
    assert "value 42" in first.output_tail
    assert second.output_tail == "lint-out\nlint-err\n"
    assert (log_dir / "lint-attempt-1.log").read_text() == "lint-out\nlint-err\n"
    assert second.log_path == str(log_dir / "lint-attempt-1.log")
    assert second.log_sha256 == hashlib.sha256(b"lint-out\nlint-err\n").hexdigest()
    assert report.summary() == "QA attempt 1: passed: all 2 gates passed"
    assert report.feedback() == "QA attempt 1: passed: all 2 gates passed\n"
    assert report.logs_for_triage() == {}
    assert set(report.logs_for_triage(include_passed=True)) == {"import", "lint"}


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_a_failing_gate_fails_the_report_and_the_feedback_names_it_with_its_log(
    sandbox: Sandbox, worktree: Path, log_dir: Path
) -> None:
    script = worktree / "check.sh"
    script.write_text("#!/bin/sh\necho checking pkg.py\necho 'pkg.py:1: VALUE must be 42' >&2\nexit 3\n")
    script.chmod(0o755)
    gates = [
        py_gate("types", "print('ok')"),
        gate("check", "./check.sh"),
        py_gate("tests", "import sys; print('assert 41 == 42'); sys.exit(1)"),
    ]
    report = run_quality_gates(worktree, gates, sandbox=sandbox, log_dir=log_dir, attempt=2)

    assert not report.passed
    assert [g.name for g in report.failures] == ["check", "tests"]
    failure = report.first_failure
    assert failure is not None and failure.name == "check"
    assert failure.exit_code == 3 and not failure.passed and failure.error is None
    assert failure.status == "exit code 3"
    assert (log_dir / "check-attempt-2.log").read_text() == "checking pkg.py\npkg.py:1: VALUE must be 42\n"
    assert report.summary() == ("QA attempt 2: FAILED: 2 of 3 gates failed (check: exit code 3; tests: exit code 1)")

    feedback = report.feedback()
    assert feedback.startswith("QA attempt 2: FAILED")
    assert "## Gate `check` failed: exit code 3" in feedback
    assert "## Gate `tests` failed: exit code 1" in feedback
    assert "## Gate `types`" not in feedback
    assert "Command: ./check.sh" in feedback
    assert f"Full log: {log_dir / 'check-attempt-2.log'}" in feedback
    assert "pkg.py:1: VALUE must be 42" in feedback
    assert "assert 41 == 42" in feedback

    assert report.logs_for_triage() == {
        "check": "checking pkg.py\npkg.py:1: VALUE must be 42\n",
        "tests": "assert 41 == 42\n",
    }


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_a_timeout_kills_the_gate_and_its_children(sandbox: Sandbox, worktree: Path, log_dir: Path) -> None:
    script = "sleep 31.337 & echo $! > child.pid; echo started; sleep 31.337"
    started = time.monotonic()
    report = run_quality_gates(
        worktree,
        [gate("slow", "sh", "-c", script, timeout_s=1.0), py_gate("after", "print('after ran')")],
        sandbox=sandbox,
        log_dir=log_dir,
        attempt=1,
    )
    assert time.monotonic() - started < 10
    slow, after = report.gates
    assert slow.timed_out and slow.exit_code is None and not slow.passed
    assert slow.status == "timed out after 1 s"
    assert "started" in slow.output_tail and "timed out" in slow.output_tail
    assert "timed out after 1 s" in (log_dir / "slow-attempt-1.log").read_text()
    assert after.passed  # without stop_on_failure the other gates still run
    assert "## Gate `slow` failed: timed out after 1 s" in report.feedback()
    child = int((worktree / "child.pid").read_text())
    if sandbox.name == "none":
        assert process_gone(child), f"the gate's child sleep {child} survived the timeout"
    else:  # inside bwrap the pid is the namespace's; the namespace dies with its init
        assert no_process_running("31.337"), "a sleep inside bwrap survived the timeout"


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_a_missing_executable_is_a_failed_gate_with_a_clear_message(
    sandbox: Sandbox, worktree: Path, log_dir: Path
) -> None:
    gates = [gate("lint", "conveyor-no-such-linter-xyz", "check"), gate("local", "./no-such-script.sh")]
    report = run_quality_gates(worktree, gates, sandbox=sandbox, log_dir=log_dir, attempt=1)

    assert not report.passed
    lint, local = report.gates
    assert lint.exit_code is None and not lint.timed_out and not lint.passed
    assert lint.error is not None
    assert "conveyor-no-such-linter-xyz" in lint.error and "installed" in lint.error and "PATH" in lint.error
    assert lint.status.startswith("could not run: ")
    assert local.error is not None and "relative to the worktree" in local.error
    log = (log_dir / "lint-attempt-1.log").read_text()
    assert log.startswith("[conveyor] gate 'lint' could not run: ") and "conveyor-no-such-linter-xyz" in log
    assert "conveyor-no-such-linter-xyz" in report.feedback()
    assert "conveyor-no-such-linter-xyz" in report.logs_for_triage()["lint"]


def test_stop_on_failure_skips_the_gates_after_the_first_failure(worktree: Path, log_dir: Path) -> None:
    gates = [
        py_gate("first", "print('one')"),
        py_gate("second", "import sys; sys.exit('two failed')"),
        gate("third", "touch", "third-ran"),
        gate("fourth", "touch", "fourth-ran"),
    ]
    report = run_quality_gates(
        worktree, gates, sandbox=LocalSandbox(), log_dir=log_dir, attempt=1, stop_on_failure=True
    )

    assert [g.name for g in report.gates] == ["first", "second"]
    assert report.skipped == ("third", "fourth")
    assert not report.passed
    assert not (worktree / "third-ran").exists() and not (worktree / "fourth-ran").exists()
    assert not (log_dir / "third-attempt-1.log").exists()
    assert report.summary().endswith("; not run after the failure: third, fourth")
    assert "Not run because an earlier gate failed: third, fourth." in report.feedback()

    everything = run_quality_gates(worktree, gates, sandbox=LocalSandbox(), log_dir=log_dir, attempt=2)
    assert [g.name for g in everything.gates] == ["first", "second", "third", "fourth"]
    assert everything.skipped == ()
    assert (worktree / "third-ran").exists() and (worktree / "fourth-ran").exists()


def test_the_log_holds_the_full_output_and_the_report_a_capped_tail(worktree: Path, log_dir: Path) -> None:
    code = "import sys\nfor i in range(1, 10001): print(f'line {i}')\nsys.exit(1)"
    report = run_quality_gates(
        worktree, [py_gate("tests", code)], sandbox=LocalSandbox(), log_dir=log_dir, attempt=1, tail_chars=500
    )
    outcome = report.gates[0]
    log = (log_dir / "tests-attempt-1.log").read_text()
    assert log == "".join(f"line {i}\n" for i in range(1, 10001))
    assert not outcome.truncated
    assert outcome.log_sha256 == hashlib.sha256(log.encode()).hexdigest()
    assert len(outcome.output_tail) <= 500
    assert outcome.output_tail.endswith("line 9999\nline 10000\n")
    assert outcome.output_tail.startswith("[... ")
    assert outcome.output_tail.splitlines()[1].startswith("line ")  # the tail starts at a whole line
    assert "line 1\n" not in outcome.output_tail
    assert report.logs_for_triage()["tests"] == outcome.output_tail
    short = report.feedback(tail_chars=200)
    assert "line 10000" in short and len(short) < len(report.feedback())


def test_output_past_the_capture_cap_keeps_its_end_in_the_log(worktree: Path, log_dir: Path) -> None:
    code = "for i in range(1, 20001): print(f'line {i}')"
    report = run_quality_gates(
        worktree, [py_gate("noisy", code)], sandbox=LocalSandbox(), log_dir=log_dir, attempt=1, output_cap=1_000
    )
    outcome = report.gates[0]
    log = (log_dir / "noisy-attempt-1.log").read_text()
    assert outcome.passed and outcome.truncated
    assert len(log) <= 1_000
    assert "bytes of output" in log.splitlines()[0]
    assert log.endswith("line 20000\n")


def test_no_gates_configured_is_a_passing_report_that_says_so(worktree: Path, log_dir: Path) -> None:
    report = run_quality_gates(worktree, [], sandbox=LocalSandbox(), log_dir=log_dir, attempt=1)
    assert report.passed
    assert report.gates == () and report.skipped == ()
    assert report.note == NO_GATES_NOTE
    assert "no quality gates configured" in report.summary()
    assert "no quality gates configured" in report.feedback()
    assert report.logs_for_triage() == {}
    assert not log_dir.exists()


def test_argv_is_never_run_through_a_shell(worktree: Path, log_dir: Path) -> None:
    report = run_quality_gates(
        worktree,
        [gate("echo", "echo", "a; touch pwned", "$(touch pwned2)", "&&", "`touch pwned3`")],
        sandbox=LocalSandbox(),
        log_dir=log_dir,
        attempt=1,
    )
    assert report.passed
    assert report.gates[0].output_tail == "a; touch pwned $(touch pwned2) && `touch pwned3`\n"
    assert sorted(p.name for p in worktree.iterdir()) == ["pkg.py"]


def test_secrets_do_not_reach_the_gates(worktree: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-gate-secret")
    report = run_quality_gates(worktree, [gate("env", "env")], sandbox=LocalSandbox(), log_dir=log_dir, attempt=1)
    assert report.passed
    assert "sk-ant-gate-secret" not in (log_dir / "env-attempt-1.log").read_text()


def test_each_attempt_and_each_gate_gets_its_own_log_file(worktree: Path, log_dir: Path) -> None:
    gates = [py_gate("unit tests", "print('a')"), py_gate("unit tests", "print('b')"), py_gate("../x", "print('c')")]
    for attempt in (1, 2):
        run_quality_gates(worktree, gates, sandbox=LocalSandbox(), log_dir=log_dir, attempt=attempt)
    assert sorted(p.name for p in log_dir.iterdir()) == [
        "unit-tests-2-attempt-1.log",
        "unit-tests-2-attempt-2.log",
        "unit-tests-attempt-1.log",
        "unit-tests-attempt-2.log",
        "x-attempt-1.log",
        "x-attempt-2.log",
    ]
    assert (log_dir / "unit-tests-2-attempt-1.log").read_text() == "b\n"


def test_bad_arguments_are_errors(worktree: Path, log_dir: Path) -> None:
    with pytest.raises(ValueError, match="start at 1"):
        run_quality_gates(worktree, [], sandbox=LocalSandbox(), log_dir=log_dir, attempt=0)
    with pytest.raises(ConveyorError, match="not a directory"):
        run_quality_gates(worktree / "gone", [], sandbox=LocalSandbox(), log_dir=log_dir, attempt=1)


# -- the pure report -----------------------------------------------------------------------------------------


def _outcome(name: str, *, exit_code: int | None = 0, tail: str = "", error: str | None = None) -> GateOutcome:
    result = CommandResult(argv=("x",), cwd="/w", exit_code=exit_code, output=tail, error=error, sandbox="none")
    return GateOutcome.from_command(name, result, timeout_s=5)


def test_tail_text_caps_with_a_marker_and_keeps_short_text_whole() -> None:
    assert tail_text("abc\n", 10) == "abc\n"
    assert tail_text("anything", 0) == ""
    long = "".join(f"row {i}\n" for i in range(1000))
    tail = tail_text(long, 200)
    assert len(tail) <= 200 and tail.endswith("row 999\n")
    assert tail.splitlines()[1].startswith("row ")
    assert tail_text(long, 10) == long[-10:]  # too small for the marker: just the end


def test_a_gate_cannot_claim_to_pass_with_a_failure() -> None:
    with pytest.raises(ValidationError, match="cannot pass"):
        GateOutcome(name="x", argv=("x",), exit_code=1, passed=True)
    assert _outcome("ok").passed
    assert not _outcome("bad", exit_code=2).passed


def test_feedback_fences_outputs_that_contain_backticks() -> None:
    report = QAReport(gates=(_outcome("docs", exit_code=1, tail="```python\nbad\n```\n"),))
    feedback = report.feedback()
    assert "````text\n```python\nbad\n```\n````" in feedback
    silent = QAReport(gates=(_outcome("quiet", exit_code=1),)).feedback()
    assert "(the gate printed nothing)" in silent


def test_logs_for_triage_keeps_repeated_gate_names_apart() -> None:
    report = QAReport(
        gates=(_outcome("t", exit_code=1, tail="one"), _outcome("t", exit_code=1, tail="two"), _outcome("ok"))
    )
    assert report.logs_for_triage() == {"t": "one", "t #2": "two"}
    assert QAReport.model_validate(report.model_dump(mode="json")) == report


def test_log_file_stems_are_safe_and_distinct() -> None:
    assert log_file_stems(["lint", "unit tests", "lint", "..", "a/b"]) == [
        "lint",
        "unit-tests",
        "lint-2",
        "gate",
        "a-b",
    ]
