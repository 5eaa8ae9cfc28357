"""The repository lease (.conveyor/lease): one writer of Conveyor's files per repository at a time.

The lease names its holder (run id, host, pid and the pid's start time, command) and carries a heartbeat
and an expiry that a background thread renews. A second writer waits or refuses with a message that says
who holds it. A holder that is dead (same host, pid gone or reused) or whose lease expired is reclaimed.
Check-and-set happens under a file lock, so two starters never both win.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from conveyor.adapters.atomic import write_json, write_text
from conveyor.domain.errors import LeaseHeldError

_log = logging.getLogger(__name__)
LEASE_DIR = ".conveyor"
LEASE_FILE = "lease"
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _pid_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseInfo(BaseModel):
    run_id: str
    host: str
    pid: int
    pid_start: str | None = None
    command: str
    token: str
    acquired_at: datetime
    heartbeat: datetime
    expiry: datetime

    def is_live(self, now: datetime | None = None) -> bool:
        if (now or _utcnow()) >= self.expiry:
            return False
        if self.host == socket.gethostname():
            if not _pid_alive(self.pid):
                return False
            start = _pid_start(self.pid)
            if self.pid_start is not None and start is not None and start != self.pid_start:
                return False  # the pid now belongs to another process
        return True

    def describe(self, now: datetime | None = None) -> str:
        age = ((now or _utcnow()) - self.heartbeat).total_seconds()
        return (
            f"run {self.run_id} ({self.command}, pid {self.pid} on {self.host}, "
            f"last heartbeat {age:.0f}s ago, expires {self.expiry.isoformat(timespec='seconds')})"
        )


def lease_path(repo: Path) -> Path:
    return repo / LEASE_DIR / LEASE_FILE


def read_lease(repo: Path) -> LeaseInfo | None:
    """The lease on file, or None. A corrupt lease file reads as none: it protects nothing."""
    try:
        return LeaseInfo.model_validate(json.loads(lease_path(repo).read_text()))
    except (OSError, ValueError, ValidationError):
        return None


class RepositoryLease:
    """Hold .conveyor/lease for the duration of a writing command or flow run."""

    def __init__(
        self,
        repo: Path,
        *,
        run_id: str,
        command: str,
        ttl_s: float = 60.0,
        poll_s: float = 0.5,
        clock: Clock = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        heartbeat: bool = True,
    ) -> None:
        self.repo, self.run_id, self.command = repo, run_id, command
        self.ttl = timedelta(seconds=ttl_s)
        self.poll_s, self.clock, self.sleep = poll_s, clock, sleep
        self.token = uuid.uuid4().hex
        self.reclaimed: LeaseInfo | None = None  # the dead or expired holder we took over from, if any
        self.lost = False  # the heartbeat found another writer holding the lease
        self._heartbeat_enabled = heartbeat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = False
        (repo / LEASE_DIR).mkdir(parents=True, exist_ok=True)
        ignore = repo / LEASE_DIR / ".gitignore"
        if not ignore.exists():  # .conveyor/ is local state: keep it out of git even before `conveyor init`
            write_text(ignore, "*\n")
        self._lock = FileLock(str(repo / LEASE_DIR / "lease.lock"))

    @property
    def held(self) -> bool:
        return self._held

    def _write(self, acquired_at: datetime) -> None:
        now = self.clock()
        info = LeaseInfo(
            run_id=self.run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_start=_pid_start(os.getpid()),
            command=self.command,
            token=self.token,
            acquired_at=acquired_at,
            heartbeat=now,
            expiry=now + self.ttl,
        )
        write_json(lease_path(self.repo), info.model_dump(mode="json"))

    def _try_take(self) -> LeaseInfo | None:
        """Take the lease if it is free; return the live holder otherwise."""
        with self._lock:
            current = read_lease(self.repo)
            now = self.clock()
            if current is not None and current.token != self.token and current.is_live(now):
                return current
            if current is not None and current.token != self.token:
                self.reclaimed = current
            self._write(acquired_at=now)
            return None

    def acquire(self, wait_s: float = 0.0) -> None:
        """Take the lease, waiting up to ``wait_s`` seconds for a live holder to let go."""
        deadline = self.clock() + timedelta(seconds=wait_s)
        while True:
            holder = self._try_take()
            if holder is None:
                break
            if self.clock() >= deadline:
                waited = f" after waiting {wait_s:.0f}s" if wait_s else ""
                raise LeaseHeldError(
                    f"{self.repo} is leased by {holder.describe(self.clock())}{waited}. "
                    "Wait for it to finish, or stop it; a dead holder's lease is reclaimed automatically."
                )
            self.sleep(self.poll_s)
        self._held = True
        if self._heartbeat_enabled:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="conveyor-lease-heartbeat", daemon=True)
            self._thread.start()

    def renew(self) -> None:
        """Push the expiry forward; raises LeaseHeldError if another writer took the lease meanwhile."""
        with self._lock:
            current = read_lease(self.repo)
            if current is None or current.token != self.token:
                self._held = False
                who = current.describe(self.clock()) if current else "nobody"
                raise LeaseHeldError(f"lost the lease on {self.repo}: now held by {who}")
            self._write(acquired_at=current.acquired_at)

    def _beat(self) -> None:
        interval = max(self.ttl.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except LeaseHeldError as exc:
                # Another writer reclaimed it (this holder stalled past the expiry): say so loudly.
                self.lost = True
                _log.warning("%s", exc)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if not self._held:
            return
        with self._lock:
            current = read_lease(self.repo)
            if current is not None and current.token == self.token:
                lease_path(self.repo).unlink(missing_ok=True)
        self._held = False

    def __enter__(self) -> RepositoryLease:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
