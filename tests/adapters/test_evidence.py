"""Evidence collection: real files, real subprocesses (argv only), timeouts and output tails."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from conveyor.adapters.evidence import OUTPUT_TAIL_BYTES, file_evidence, run_command
from conveyor.domain.gate import CommandRequest


def test_file_evidence_hashes_and_reads_text(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes("héllo\n".encode())
    found = file_evidence(tmp_path, "a.md")
    assert found.exists
    assert found.sha256 == hashlib.sha256("héllo\n".encode()).hexdigest()
    assert found.text == "héllo\n"
    assert found.size == 7


def test_file_evidence_missing_directory_binary_and_escape(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "b.bin").write_bytes(b"\xff\xfe\x00")
    outside = tmp_path.parent / "outside.md"
    outside.write_text("x")
    (tmp_path / "link.md").symlink_to(outside)
    assert file_evidence(tmp_path, "nope.md").exists is False
    assert file_evidence(tmp_path, "d").error == "is a directory, not a file"
    binary = file_evidence(tmp_path, "b.bin")
    assert binary.exists and binary.text is None and binary.sha256 is not None
    assert (binary.error or "").startswith("not UTF-8 text")
    escaped = file_evidence(tmp_path, "link.md")
    assert escaped.exists is False and escaped.error == "resolves outside the repository"


def test_command_runs_without_a_shell_in_the_repo(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    done = run_command(tmp_path, CommandRequest(argv=["pwd"], timeout_s=10))
    assert done.exit_code == 0
    assert Path(done.output_tail.strip()).resolve() == tmp_path.resolve()
    in_sub = run_command(tmp_path, CommandRequest(argv=["pwd"], cwd="sub", timeout_s=10))
    assert Path(in_sub.output_tail.strip()).resolve() == (tmp_path / "sub").resolve()
    literal = run_command(tmp_path, CommandRequest(argv=["echo", "$HOME", "|", "x"], timeout_s=10))
    assert literal.output_tail == "$HOME | x\n"  # no shell expanded or piped anything


def test_command_exit_code_and_stderr_captured(tmp_path: Path) -> None:
    done = run_command(tmp_path, CommandRequest(argv=["ls", "does-not-exist"], timeout_s=10))
    assert done.exit_code not in (0, None)
    assert "does-not-exist" in done.output_tail


def test_command_not_found(tmp_path: Path) -> None:
    done = run_command(tmp_path, CommandRequest(argv=["no-such-binary-xyz"], timeout_s=10))
    assert done.exit_code is None
    assert "no-such-binary-xyz" in (done.error or "")


def test_command_timeout_kills_the_process_group(tmp_path: Path) -> None:
    started = time.monotonic()
    done = run_command(tmp_path, CommandRequest(argv=["sleep", "30"], timeout_s=0.5))
    assert done.timed_out
    assert time.monotonic() - started < 10


def test_output_is_cut_to_its_tail(tmp_path: Path) -> None:
    script = "import sys; sys.stdout.write('a' * 10000 + 'END')"
    done = run_command(tmp_path, CommandRequest(argv=[sys.executable, "-c", script], timeout_s=20))
    assert len(done.output_tail.encode()) == OUTPUT_TAIL_BYTES
    assert done.output_tail.endswith("END")


def test_cwd_outside_repo_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "up").symlink_to(tmp_path)
    done = run_command(repo, CommandRequest(argv=["pwd"], cwd="up", timeout_s=5))
    assert done.exit_code is None
    assert "not in the repository" in (done.error or "")
