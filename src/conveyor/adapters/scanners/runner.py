"""Runs one scanner's tool: an argv list in the checkout, a timeout, and every output kept out of the tree.

A tool that is missing, hangs or prints something unreadable raises :class:`ToolError`, which the scanner turns
into an unavailable :class:`~conveyor.domain.scan.ScanResult`: a loop must go on when one tool is absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.adapters.sandbox.environment import scrubbed_environment
from conveyor.domain.build_spec import ImprovementSpec
from conveyor.domain.errors import ConveyorError

HEAD_CHARS = 400  # how much of a tool's output a note quotes
_MISSING_MARKS = ("No module named", "ModuleNotFoundError")


class ToolError(ConveyorError):
    """The tool could not say anything usable; the message is the note of the unavailable result."""

    def __init__(self, note: str, argv: Sequence[str] = ()) -> None:
        super().__init__(note)
        self.note = note
        self.argv = tuple(argv)


@dataclass(frozen=True)
class ToolRun:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def head(self) -> str:
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return text[:HEAD_CHARS] + (" ..." if len(text) > HEAD_CHARS else "")


def tool_command(spec: ImprovementSpec, *names: str) -> list[str]:
    """The first configured command among ``names`` (scanner names), else ``python -m <first name's tool>``."""
    for name in names:
        if spec.commands.get(name):
            return list(spec.commands[name])
    return [sys.executable, "-m", names[0].split("-")[0]]


def run_tool(
    argv: Sequence[str], root: Path, timeout_s: float, tool: str, env: Mapping[str, str] | None = None
) -> ToolRun:
    """Run ``argv`` in ``root`` (never a shell) with the scrubbed environment plus ``env``."""
    environment = scrubbed_environment(os.environ)
    environment.update(env or {})
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=root,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # a timeout kills the whole group: pytest's children must not outlive it
        )
    except OSError as exc:
        raise ToolError(f"{tool} is not installed: cannot start {argv[0]!r} ({exc.strerror or exc})", argv) from exc
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)
        raise ToolError(f"{tool} timed out after {timeout_s:g} s", argv) from None
    return ToolRun(tuple(argv), proc.returncode, stdout, stderr)


def unreadable(tool: str, run: ToolRun, why: str = "output could not be parsed") -> ToolError:
    """The error for a run whose output made no sense: a missing tool when Python said so, else ``why``."""
    output = run.stdout + run.stderr
    if run.returncode != 0 and any(mark in output for mark in _MISSING_MARKS):
        return ToolError(f"{tool} is not installed (exit {run.returncode}): {run.head}", run.argv)
    return ToolError(f"{tool}: {why} (exit {run.returncode}): {run.head or '(no output)'}", run.argv)


def json_report(tool: str, run: ToolRun, report: Path) -> Any:
    """The parsed JSON report ``run`` wrote to ``report``; a missing or unparsable one is :func:`unreadable`."""
    if not report.is_file():
        raise unreadable(tool, run)
    try:
        return json.loads(report.read_text(encoding="utf-8"))
    except ValueError:
        raise unreadable(tool, run, "its JSON report could not be parsed") from None


def relative(root: Path, raw: str) -> str:
    """``raw`` (absolute, or relative to ``root``) as a forward-slash path relative to ``root``."""
    path = Path(raw)
    if not path.is_absolute():
        path = root / path
    resolved, base = path.resolve(), root.resolve()
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return resolved.as_posix()


_TEST_DIRS = frozenset({"tests", "test", "testing"})


def is_test_file(rel_path: str) -> bool:
    """A test module or test support file: test_*.py, *_test.py, conftest.py, or anything under tests/."""
    parts = rel_path.split("/")
    name = parts[-1]
    return (
        name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py" or bool(_TEST_DIRS & set(parts))
    )
