"""Collect the evidence a gate contract needs: file hashes and text, and the results of its commands.

Commands run as argv lists (never through a shell) in their own process group, from the repository root
or the contract's ``cwd`` below it, with a timeout; only the last few KB of their output are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from conveyor.domain.gate import CommandEvidence, CommandRequest, Evidence, EvidenceRequest, FileEvidence

OUTPUT_TAIL_BYTES = 4096
MAX_TEXT_BYTES = 8 * 1024 * 1024  # larger files are hashed but not read as text


def _inside(repo: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(repo.resolve())
    except ValueError:
        return False
    return True


def file_evidence(repo: Path, rel: str) -> FileEvidence:
    path = repo / rel
    if not _inside(repo, path):
        return FileEvidence(path=rel, exists=False, error="resolves outside the repository")
    if not path.is_file():
        why = "is a directory, not a file" if path.is_dir() else None
        return FileEvidence(path=rel, exists=False, error=why)
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    text: str | None = None
    error: str | None = None
    if size > MAX_TEXT_BYTES:
        error = f"too large to read as text ({size} bytes)"
    else:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            error = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    return FileEvidence(path=rel, exists=True, sha256=digest.hexdigest(), size=size, text=text, error=error)


def _tail(data: bytes | None) -> str:
    return (data or b"")[-OUTPUT_TAIL_BYTES:].decode("utf-8", errors="replace")


def run_command(repo: Path, request: CommandRequest) -> CommandEvidence:
    """Run one command validation; output is stdout and stderr interleaved, cut to its last 4 KB."""
    cwd = repo / request.cwd if request.cwd else repo
    base = {"argv": request.argv, "cwd": request.cwd}
    if not _inside(repo, cwd) or not cwd.is_dir():
        return CommandEvidence(
            **base, exit_code=None, error=f"working directory {request.cwd} is not in the repository"
        )
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            request.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandEvidence(**base, exit_code=None, error=f"{exc.strerror or exc}: {request.argv[0]}")
    try:
        output, _ = process.communicate(timeout=request.timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return CommandEvidence(
            **base,
            exit_code=process.returncode,
            timed_out=True,
            duration_s=round(time.monotonic() - started, 3),
            output_tail=_tail(output),
        )
    return CommandEvidence(
        **base,
        exit_code=process.returncode,
        duration_s=round(time.monotonic() - started, 3),
        output_tail=_tail(output),
    )


def collect_evidence(repo: Path, request: EvidenceRequest, variables: dict[str, str]) -> Evidence:
    return Evidence(
        variables=variables,
        files=[file_evidence(repo, rel) for rel in request.files],
        commands=[run_command(repo, command) for command in request.commands],
    )
