"""The Sandbox adapters: none (unsafe, local) and bwrap (bubblewrap), and how one is chosen."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.adapters.sandbox import select
from conveyor.adapters.sandbox.bwrap import BwrapSandbox, bwrap_command
from conveyor.adapters.sandbox.environment import scrubbed_environment
from conveyor.adapters.sandbox.local import LocalSandbox, cap_output
from conveyor.adapters.sandbox.select import bwrap_problem, select_sandbox
from conveyor.domain.errors import ConveyorError
from conveyor.ports import Sandbox
from tests.support.processes import no_process_running, process_gone

BWRAP_PROBLEM = bwrap_problem()
needs_bwrap = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"bubblewrap does not work here: {BWRAP_PROBLEM}")


def _sandboxes() -> list[object]:
    return [pytest.param(LocalSandbox(), id="none"), pytest.param(BwrapSandbox(), id="bwrap", marks=needs_bwrap)]


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "worktree"
    path.mkdir()
    return path


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


# -- the environment -------------------------------------------------------------------------------------------


def test_scrubbed_environment_drops_secrets_and_keeps_the_rest() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "TERM": "xterm",
        "ANTHROPIC_API_KEY": "sk-ant-1",
        "ANTHROPIC_BASE_URL": "http://x",
        "MY_TOKEN": "t",
        "github_token": "g",
        "GH_HOST": "h",
        "AWS_REGION": "eu",
        "OPENAI_ORG": "o",
        "DB_PASSWORD": "p",
        "SomeSecret": "s",
        "GOOGLE_APPLICATION_CREDENTIALS": "/c.json",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "NPM_CONFIG_AUTHTOKEN": "n",
        "PRIVATE_KEY_PATH": "/k",
    }
    env = scrubbed_environment(base)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "TERM": "xterm",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    assert "ANTHROPIC_API_KEY" in base  # the input is not modified


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_secrets_in_the_parent_environment_do_not_reach_the_command(
    sandbox: Sandbox, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value")
    monkeypatch.setenv("MY_TOKEN", "token-secret-value")
    monkeypatch.setenv("CONVEYOR_TEST_PLAIN", "plain-value")
    result = sandbox.run(["env"], cwd=worktree, timeout_s=10)
    assert result.ok, result
    assert "secret-value" not in result.output
    assert "ANTHROPIC_API_KEY" not in result.output
    assert "MY_TOKEN" not in result.output
    assert "CONVEYOR_TEST_PLAIN=plain-value" in result.output
    assert "PYTHONDONTWRITEBYTECODE=1" in result.output
    assert "PATH=" in result.output


def test_an_explicit_environment_is_scrubbed_too(worktree: Path) -> None:
    result = LocalSandbox().run(
        ["env"], cwd=worktree, timeout_s=10, env={"PATH": os.environ["PATH"], "X_SECRET": "s3", "KEEP": "k"}
    )
    assert "X_SECRET" not in result.output
    assert "KEEP=k" in result.output


# -- running -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_exit_code_cwd_and_interleaved_output(sandbox: Sandbox, worktree: Path) -> None:
    result = sandbox.run(["sh", "-c", "pwd; echo to-out; echo to-err >&2; exit 3"], cwd=worktree, timeout_s=10)
    assert result.exit_code == 3
    assert not result.ok
    assert result.output.splitlines() == [str(worktree.resolve()), "to-out", "to-err"]
    assert result.sandbox == sandbox.name
    assert result.argv == ("sh", "-c", "pwd; echo to-out; echo to-err >&2; exit 3")
    assert not result.timed_out and result.error is None


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_output_is_capped_keeping_the_tail(sandbox: Sandbox, worktree: Path) -> None:
    result = sandbox.run(["seq", "1", "200000"], cwd=worktree, timeout_s=20, output_cap=300)
    assert result.ok
    assert result.truncated
    assert len(result.output) <= 300
    assert result.output.endswith("199999\n200000\n")
    assert "bytes of output" in result.output.splitlines()[0]


def test_cap_output_keeps_short_output_whole() -> None:
    assert cap_output(b"abc\n", 4, 100) == ("abc\n", False)
    text, truncated = cap_output(b"x" * 50, 5000, 40)
    assert truncated and len(text) <= 40


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_timeout_kills_the_whole_process_group(sandbox: Sandbox, worktree: Path) -> None:
    script = "sleep 29.137 & echo $! > child.pid; echo started; sleep 29.137"
    started = time.monotonic()
    result = sandbox.run(["sh", "-c", script], cwd=worktree, timeout_s=1.0)
    assert time.monotonic() - started < 10
    assert result.timed_out
    assert result.exit_code is None
    assert "started" in result.output
    assert "timed out" in result.output
    child = int((worktree / "child.pid").read_text())
    if sandbox.name == "none":  # inside bwrap the pid is the namespace's; the namespace dies with its init
        assert process_gone(child), f"the child sleep {child} survived the timeout"
    else:
        assert no_process_running("29.137"), "a sleep inside bwrap survived the timeout"


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_a_missing_executable_is_an_error_not_an_exception(sandbox: Sandbox, worktree: Path) -> None:
    result = sandbox.run(["conveyor-no-such-program-xyz", "--help"], cwd=worktree, timeout_s=5)
    assert result.exit_code is None
    assert result.error is not None and "conveyor-no-such-program-xyz" in result.error
    assert not result.ok


def test_empty_argv_is_an_error(worktree: Path) -> None:
    result = LocalSandbox().run([], cwd=worktree, timeout_s=5)
    assert result.error is not None and result.exit_code is None


def test_none_says_it_is_unsafe() -> None:
    assert LocalSandbox().name == "none"
    assert "UNSAFE" in (LocalSandbox.__doc__ or "")
    assert "UNSAFE" in LocalSandbox.description


@pytest.mark.parametrize("sandbox", _sandboxes())
def test_shell_syntax_in_arguments_is_literal(sandbox: Sandbox, worktree: Path) -> None:
    result = sandbox.run(
        ["echo", "a; touch pwned", "$(touch pwned2)", "`touch pwned3`", "&&"], cwd=worktree, timeout_s=5
    )
    assert result.output == "a; touch pwned $(touch pwned2) `touch pwned3` &&\n"
    assert list(worktree.iterdir()) == []


# -- bwrap confinement -----------------------------------------------------------------------------------------


@needs_bwrap
def test_bwrap_worktree_is_writable_and_everything_else_is_not(worktree: Path, tmp_path: Path) -> None:
    outside = Path("/var/tmp") / f"conveyor-sandbox-test-{uuid.uuid4().hex}"
    outside.mkdir()
    host_tmp_marker = Path("/tmp") / f"conveyor-sandbox-test-{uuid.uuid4().hex}"
    home = Path(os.environ["HOME"])
    try:
        script = (
            "echo inside > inside.txt; "
            f"touch {outside}/escaped 2>/dev/null && echo WROTE-OUTSIDE; "
            f"touch {host_tmp_marker}; "
            f"touch {home}/escaped-home 2>/dev/null && echo WROTE-HOME; "
            f"touch {tmp_path}/sibling 2>/dev/null; "  # lands in the private /tmp, if anywhere
            "touch /usr/escaped 2>/dev/null && echo WROTE-USR; "
            "exit 0"
        )
        result = BwrapSandbox().run(["sh", "-c", script], cwd=worktree, timeout_s=10)
        assert result.ok, result
        assert "WROTE-" not in result.output
        assert (worktree / "inside.txt").read_text() == "inside\n"
        assert not (outside / "escaped").exists()
        assert not host_tmp_marker.exists()  # /tmp inside is private
        assert not (home / "escaped-home").exists()
        assert not (tmp_path / "sibling").exists()
        assert not Path("/usr/escaped").exists()
    finally:
        shutil.rmtree(outside, ignore_errors=True)


@needs_bwrap
def test_bwrap_blocks_the_network_that_none_allows(worktree: Path, listening_port: int) -> None:
    code = (
        f"import socket; socket.create_connection(('127.0.0.1', {listening_port}), timeout=3); print('CONN' + 'ECTED')"
    )
    (worktree / "probe.py").write_text(code)
    argv = [sys.executable, "probe.py"]
    local = LocalSandbox().run(argv, cwd=worktree, timeout_s=20)
    assert local.ok and "CONNECTED" in local.output, local
    confined = BwrapSandbox().run(argv, cwd=worktree, timeout_s=20)
    assert confined.exit_code not in (0, None), confined
    assert "CONNECTED" not in confined.output


@needs_bwrap
def test_bwrap_cannot_remount_the_root_writable(worktree: Path) -> None:
    result = BwrapSandbox().run(
        ["sh", "-c", "mount -o remount,rw / 2>&1; touch /etc/conveyor-escaped 2>&1; exit 0"], cwd=worktree, timeout_s=10
    )
    assert result.ok
    assert not Path("/etc/conveyor-escaped").exists()


def test_bwrap_command_line_has_the_confinement_flags(tmp_path: Path) -> None:
    command = bwrap_command("bwrap", ["pytest", "-q"], workdir=tmp_path)
    joined = " ".join(command)
    for flag in ("--ro-bind / /", "--dev /dev", "--proc /proc", "--tmpfs /tmp", "--unshare-net", "--unshare-pid"):
        assert flag in joined
    for flag in ("--die-with-parent", "--new-session", "--cap-drop"):
        assert flag in command
    root = str(tmp_path.resolve())
    assert command.index("--tmpfs") < command.index("--bind")  # the worktree stays visible under the private /tmp
    assert command[command.index("--bind") + 1 : command.index("--bind") + 3] == [root, root]
    assert command[-3:] == ["--", "pytest", "-q"]


@needs_bwrap
def test_bwrap_keeps_programs_under_tmp_visible_read_only(tmp_path: Path) -> None:
    tools = Path(tempfile.mkdtemp(prefix="conveyor-tools-", dir="/tmp"))  # e.g. a checkout's venv under /tmp
    try:
        program = tools / "bin" / "hello"
        program.parent.mkdir()
        program.write_text("#!/bin/sh\necho hello from /tmp\n")
        program.chmod(0o755)
        worktree = tmp_path / "wt"
        worktree.mkdir()
        command = bwrap_command("bwrap", [str(program)], workdir=worktree, search_path=f"{tools / 'bin'}:/usr/bin")
        bound = command.index("--ro-bind", command.index("--ro-bind") + 1)
        assert command[bound + 1 : bound + 3] == [str(tools), str(tools)]
        assert command.index("--tmpfs") < bound < command.index("--bind")
        result = BwrapSandbox().run([str(program)], cwd=worktree, timeout_s=10)
        assert result.ok and "hello from /tmp" in result.output
        written = BwrapSandbox().run(["sh", "-c", f"touch {tools}/x"], cwd=worktree, timeout_s=10)
        assert not (tools / "x").exists() and not written.ok  # visible, never writable
    finally:
        shutil.rmtree(tools)


# -- choosing --------------------------------------------------------------------------------------------------


@needs_bwrap
def test_auto_picks_bwrap_here() -> None:
    assert select_sandbox("auto").name == "bwrap"
    assert select_sandbox("bwrap").name == "bwrap"


def test_none_is_explicit_and_unknown_settings_are_refused() -> None:
    assert select_sandbox("none").name == "none"
    with pytest.raises(ConveyorError, match="not one of"):
        select_sandbox("docker")


def test_bwrap_asked_for_but_broken_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "bwrap_problem", lambda: "'bwrap' is not installed (apt-get install bubblewrap)")
    with pytest.raises(ConveyorError, match=r"bubblewrap does not work here: 'bwrap' is not installed"):
        select_sandbox("bwrap")


def test_auto_falls_back_to_none_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(select, "bwrap_problem", lambda: "a trial run failed: no user namespaces")
    with caplog.at_level(logging.WARNING, logger="conveyor.adapters.sandbox.select"):
        chosen = select_sandbox("auto")
    assert chosen.name == "none"
    assert "UNSAFE" in caplog.text and "no user namespaces" in caplog.text


def test_bwrap_problem_names_a_missing_program() -> None:
    problem = bwrap_problem("conveyor-no-such-bwrap")
    assert problem is not None and "not installed" in problem
