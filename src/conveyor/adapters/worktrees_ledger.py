"""The ledger file .conveyor/ledger.json and the locks the worktree manager takes (ARCHITECTURE.md §4).

Every update is a read-modify-write under two locks: a lock per repository in this process (threads) and a file
lock (processes); the file is replaced atomically (conveyor.adapters.atomic), so a crash leaves the old ledger or
the new one. A file that is not a ledger of a known version is refused, never overwritten.

Lock order, to stay free of deadlocks: a ticket's lock, then the repository's git lock, then the ledger lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from pydantic import ValidationError

from conveyor.adapters.atomic import write_json, write_text
from conveyor.domain.errors import ConveyorError
from conveyor.domain.ledger import LEDGER_SCHEMA_VERSION, Ledger

CONVEYOR_DIR = ".conveyor"
LEDGER_FILE = "ledger.json"


class LedgerFileError(ConveyorError):
    """.conveyor/ledger.json exists but is not a ledger this version of Conveyor can read."""


class _Registry:
    """Process-wide locks keyed by the repository's resolved path (and ticket), shared by every manager."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, ...], threading.RLock] = {}

    def get(self, *key: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(key, threading.RLock())


LOCKS = _Registry()


def repo_key(repo: Path) -> str:
    return str(repo.resolve())


def ensure_conveyor_dir(repo: Path) -> Path:
    """.conveyor/ with a .gitignore of ``*`` (it is local state), as the lease makes it."""
    directory = repo / CONVEYOR_DIR
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        write_text(ignore, "*\n")
    return directory


class LedgerFile:
    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.path = repo / CONVEYOR_DIR / LEDGER_FILE
        self._lock = LOCKS.get(repo_key(repo), "ledger")

    def read(self) -> Ledger:
        """The ledger; an empty one when the file does not exist yet."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Ledger()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LedgerFileError(f"{self.path}:{exc.lineno}: not JSON: {exc.msg}") from None
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != LEDGER_SCHEMA_VERSION:
            raise LedgerFileError(
                f"{self.path}: schema_version {version!r} is not one this Conveyor reads ({LEDGER_SCHEMA_VERSION})"
            )
        try:
            return Ledger.model_validate(data)
        except ValidationError as exc:
            raise LedgerFileError(f"{self.path}: not a valid ledger: {exc}") from None

    def update(self, change: Callable[[Ledger], Ledger]) -> Ledger:
        """Apply ``change`` to the current ledger and write the result atomically; returns it."""
        with self._lock:
            ensure_conveyor_dir(self.repo)
            with FileLock(str(self.path.with_name(LEDGER_FILE + ".lock"))):
                ledger = change(self.read())
                write_json(self.path, ledger.model_dump(mode="json"))
                return ledger
