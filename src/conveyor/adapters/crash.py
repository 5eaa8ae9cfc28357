"""Named crash points for the kill tests (issue 5 §7): the process SIGKILLs itself where a test asks.

``CONVEYOR_TEST_KILL_AT=<name>`` kills the process when the named point is reached for the Nth time
(``CONVEYOR_TEST_KILL_NTH``, default 1): a test hook, never timing. Points: ``implementer-stored``,
``qa-running``, ``after-squash-commit``, ``worktree-commit-before-ledger``, ``atomic-write`` (between the
temporary file and the rename), ``between-tracking-files`` (TASKS.md and run-queue.json written, run-state.json
not yet). ``<point>@<scope>`` narrows a point to the code inside ``with crash_scope(scope)`` (``merge``: the
merge queue's integration of a ticket). Without the variable this is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ENV = "CONVEYOR_TEST_KILL_AT"
NTH_ENV = "CONVEYOR_TEST_KILL_NTH"
POINTS = frozenset(
    {
        "implementer-stored",
        "qa-running",
        "after-squash-commit",
        "worktree-commit-before-ledger",
        "atomic-write",
        "between-tracking-files",
    }
)
_seen: dict[str, int] = {}
_scope: ContextVar[str | None] = ContextVar("conveyor_crash_scope", default=None)
_lock = threading.Lock()


@contextmanager
def crash_scope(scope: str) -> Iterator[None]:
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted is None or (wanted != name and wanted != f"{name}@{_scope.get()}"):
        return
    with _lock:
        _seen[name] = _seen.get(name, 0) + 1
        if _seen[name] < int(os.environ.get(NTH_ENV, "1")):
            return
    os.kill(os.getpid(), signal.SIGKILL)
