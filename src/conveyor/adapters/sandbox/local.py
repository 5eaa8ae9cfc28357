"""The ``none`` sandbox: UNSAFE — the command runs directly on this machine with the user's rights.

Code the agent wrote (tests, scripts, build hooks) can read and write anything the user can and reach the
network. Use it only when bubblewrap is not available and you trust the run; ``auto`` prefers ``bwrap``.

What it still guarantees: an argv list, never a shell; the scrubbed environment; a timeout that kills the
whole process group; one interleaved stdout+stderr stream, capped (the tail is kept).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from conveyor.adapters.sandbox.environment import scrubbed_environment
from conveyor.domain.command import CommandResult

_CHUNK = 65_536
_GRACE_S = 0.2  # how long a finished command's leftovers may keep the output pipe open before they are killed


class _Tail:
    """Keeps the last ``limit`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.data = bytearray()
        self.total = 0

    def drain(self, stream: IO[bytes]) -> None:
        """Read until every writer closed the pipe, then close it (only this thread touches the stream)."""
        try:
            fd = stream.fileno()
            while chunk := os.read(fd, _CHUNK):
                self.total += len(chunk)
                self.data += chunk
                if len(self.data) > self.limit:
                    del self.data[: len(self.data) - self.limit]
        except OSError:
            pass
        finally:
            stream.close()


def cap_output(raw: bytes, total: int, output_cap: int) -> tuple[str, bool]:
    """Decode ``raw`` (the tail of ``total`` bytes) and keep at most ``output_cap`` characters of its end."""
    text = raw.decode("utf-8", errors="replace")
    if total <= len(raw) and len(text) <= output_cap:
        return text, False
    marker = f"[... {total} bytes of output; the tail follows ...]\n"
    keep = max(output_cap - len(marker), 0)
    return (marker + (text[-keep:] if keep else ""))[:output_cap], True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def find_executable(program: str, *, cwd: Path, env: Mapping[str, str]) -> str | None:
    """Where ``program`` would be executed from (PATH of ``env``; a name with ``/`` is relative to ``cwd``)."""
    if "/" in program:
        candidate = cwd / program
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def run_process(
    command: Sequence[str],
    *,
    argv: Sequence[str],
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str],
    output_cap: int,
    sandbox: str,
) -> CommandResult:
    """Run ``command`` (``argv``, possibly wrapped) in its own session; report it as ``argv``."""
    started = time.monotonic()

    def result(exit_code: int | None, **extra: object) -> CommandResult:
        return CommandResult.model_validate(
            {
                "argv": tuple(argv),
                "cwd": str(cwd),
                "exit_code": exit_code,
                "duration_s": round(time.monotonic() - started, 3),
                "sandbox": sandbox,
                **extra,
            }
        )

    if not argv:
        return result(None, error="empty argv: nothing to run")
    try:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return result(None, error=f"cannot start {argv[0]!r}: {exc.strerror or exc}")
    if proc.stdout is None:  # pragma: no cover - stdout=PIPE always gives one
        raise RuntimeError("no output pipe")
    tail = _Tail(output_cap * 4 + 1024)
    reader = threading.Thread(target=tail.drain, args=(proc.stdout,), daemon=True)
    reader.start()
    timed_out = False
    exit_code: int | None
    try:
        exit_code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        proc.wait()
        exit_code = None
    reader.join(_GRACE_S)
    if reader.is_alive():  # something the command started still holds the pipe: it dies with the command
        _kill_group(proc.pid)
        reader.join(2.0)
    # A process that left the group (setsid) may still hold the pipe: the reader then ends when it exits.
    output, truncated = cap_output(bytes(tail.data), tail.total, output_cap)
    if timed_out:
        output += f"\n[killed: timed out after {timeout_s:g} s]"
    return result(exit_code, timed_out=timed_out, output=output, truncated=truncated)


class LocalSandbox:
    """UNSAFE: runs commands directly with the user's rights (see the module docstring)."""

    @property
    def name(self) -> str:
        return "none"

    description = "none (UNSAFE: the agent's code runs with your rights, network and files)"

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        output_cap: int = 16_000,
    ) -> CommandResult:
        final_env = scrubbed_environment(os.environ if env is None else env)
        return run_process(
            argv, argv=argv, cwd=cwd, timeout_s=timeout_s, env=final_env, output_cap=output_cap, sandbox=self.name
        )
