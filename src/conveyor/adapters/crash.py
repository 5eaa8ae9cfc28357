"""Named crash points for the kill tests (issue 5 §7): the process SIGKILLs itself where a test asks.

``CONVEYOR_TEST_KILL_AT=<name>`` kills the process when the named point is reached for the Nth time
(``CONVEYOR_TEST_KILL_NTH``, default 1): a test hook, never timing. Points: ``implementer-stored``,
``qa-running``, ``after-squash-commit``, ``worktree-commit-before-ledger``, ``atomic-write`` (between the
temporary file and the rename). Without the variable this is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "CONVEYOR_TEST_KILL_AT"
NTH_ENV = "CONVEYOR_TEST_KILL_NTH"
POINTS = frozenset(
    {"implementer-stored", "qa-running", "after-squash-commit", "worktree-commit-before-ledger", "atomic-write"}
)
_seen: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    if os.environ.get(ENV) != name:
        return
    with _lock:
        _seen[name] = _seen.get(name, 0) + 1
        if _seen[name] < int(os.environ.get(NTH_ENV, "1")):
            return
    os.kill(os.getpid(), signal.SIGKILL)
