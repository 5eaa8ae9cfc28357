"""Waiting for processes to end, for the sandbox and QA gate timeout tests."""

from __future__ import annotations

import time
from pathlib import Path


def process_gone(pid: int, *, within_s: float = 3.0) -> bool:
    """True when ``pid`` is no longer running (absent, or a zombie nobody reaped yet)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        if state in {"Z", "X"}:
            return True
        time.sleep(0.05)
    return False


def no_process_running(marker: str, *, within_s: float = 3.0) -> bool:
    """True when no process's command line contains ``marker`` (processes in a PID namespace included)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        running = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                running = running or marker in cmdline.read_text(errors="replace")
            except OSError:
                continue
        if not running:
            return True
        time.sleep(0.05)
    return False
