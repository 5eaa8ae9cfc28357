"""Two writers on one repository are kept apart; a killed holder's lease is reclaimed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor.adapters.lease import RepositoryLease, lease_path, read_lease
from conveyor.domain.errors import LeaseHeldError

HOLDER = """
import sys, time
from pathlib import Path
from conveyor.adapters.lease import RepositoryLease
lease = RepositoryLease(Path(sys.argv[1]), run_id=sys.argv[2], command="holder", ttl_s=float(sys.argv[3]))
lease.acquire(wait_s=float(sys.argv[4]))
print("held", flush=True)
time.sleep(float(sys.argv[5]))
lease.release()
print("released", flush=True)
"""


def start_holder(
    repo: Path, run_id: str, *, ttl: float = 60, wait: float = 0, hold: float = 60
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo), run_id, str(ttl), str(wait), str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "held", proc.stderr.read() if proc.stderr else line
    return proc


def test_second_writer_is_refused_with_a_message_naming_the_holder(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, "RUN-20261121-1000")
    try:
        second = RepositoryLease(tmp_path, run_id="RUN-20261121-1001", command="status", heartbeat=False)
        with pytest.raises(LeaseHeldError) as info:
            second.acquire(wait_s=0)
        message = str(info.value)
        assert "RUN-20261121-1000" in message
        assert f"pid {holder.pid}" in message
        assert read_lease(tmp_path) is not None
        assert read_lease(tmp_path).run_id == "RUN-20261121-1000"  # type: ignore[union-attr]
    finally:
        holder.kill()
        holder.wait()


def test_second_writer_waits_until_the_first_releases(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, "RUN-A", hold=1.0)
    try:
        second = RepositoryLease(tmp_path, run_id="RUN-B", command="waiter", poll_s=0.05)
        second.acquire(wait_s=30)
        try:
            assert holder.wait(timeout=10) == 0
            info = read_lease(tmp_path)
            assert info is not None and info.run_id == "RUN-B"
            assert second.reclaimed is None  # released cleanly, nothing to reclaim
        finally:
            second.release()
        assert not lease_path(tmp_path).exists()
    finally:
        holder.kill()
        holder.wait()


def test_killed_holder_lease_is_reclaimed(tmp_path: Path) -> None:
    holder = start_holder(tmp_path, "RUN-KILLED", ttl=3600)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    stale = read_lease(tmp_path)
    assert stale is not None and stale.run_id == "RUN-KILLED" and not stale.is_live()
    lease = RepositoryLease(tmp_path, run_id="RUN-NEXT", command="next", heartbeat=False)
    lease.acquire(wait_s=0)
    try:
        assert lease.reclaimed is not None and lease.reclaimed.run_id == "RUN-KILLED"
        info = read_lease(tmp_path)
        assert info is not None and info.run_id == "RUN-NEXT" and info.pid == os.getpid()
    finally:
        lease.release()


def test_expired_lease_of_a_live_process_is_reclaimed(tmp_path: Path) -> None:
    clock_now = [datetime(2026, 11, 21, 12, 0, tzinfo=UTC)]
    first = RepositoryLease(
        tmp_path, run_id="RUN-1", command="a", ttl_s=60, clock=lambda: clock_now[0], heartbeat=False
    )
    first.acquire()
    second = RepositoryLease(tmp_path, run_id="RUN-2", command="b", clock=lambda: clock_now[0], heartbeat=False)
    with pytest.raises(LeaseHeldError):
        second.acquire()
    clock_now[0] += timedelta(seconds=61)  # our own pid is alive, but the heartbeat stopped: expired
    assert not read_lease(tmp_path).is_live(clock_now[0])  # type: ignore[union-attr]
    second.acquire()
    assert second.reclaimed is not None and second.reclaimed.run_id == "RUN-1"
    with pytest.raises(LeaseHeldError, match="lost the lease"):
        first.renew()
    second.release()


def test_heartbeat_keeps_a_short_lease_alive(tmp_path: Path) -> None:
    with RepositoryLease(tmp_path, run_id="RUN-HB", command="hb", ttl_s=0.6):
        first = read_lease(tmp_path)
        time.sleep(1.0)
        later = read_lease(tmp_path)
        assert first is not None and later is not None
        assert later.heartbeat > first.heartbeat
        assert later.is_live()
    assert read_lease(tmp_path) is None


def test_reused_pid_does_not_keep_a_dead_lease_alive(tmp_path: Path) -> None:
    with RepositoryLease(tmp_path, run_id="RUN-X", command="x", heartbeat=False):
        data = json.loads(lease_path(tmp_path).read_text())
    data["pid_start"] = "1"  # our pid, but a different start time: the original process is gone
    lease_path(tmp_path).write_text(json.dumps(data))
    info = read_lease(tmp_path)
    assert info is not None and not info.is_live()


def test_release_never_removes_another_holders_lease(tmp_path: Path) -> None:
    clock_now = [datetime(2026, 11, 21, 12, 0, tzinfo=UTC)]
    first = RepositoryLease(tmp_path, run_id="RUN-1", command="a", ttl_s=1, clock=lambda: clock_now[0], heartbeat=False)
    first.acquire()
    clock_now[0] += timedelta(seconds=5)
    second = RepositoryLease(tmp_path, run_id="RUN-2", command="b", clock=lambda: clock_now[0], heartbeat=False)
    second.acquire()
    first.release()
    info = read_lease(tmp_path)
    assert info is not None and info.run_id == "RUN-2"
    second.release()


@pytest.mark.slow
def test_racing_starters_exactly_one_wins(tmp_path: Path) -> None:
    racer = """
import sys
from pathlib import Path
from conveyor.adapters.lease import RepositoryLease
from conveyor.domain.errors import LeaseHeldError
lease = RepositoryLease(Path(sys.argv[1]), run_id=sys.argv[2], command="race", heartbeat=False)
try:
    lease.acquire(wait_s=0)
except LeaseHeldError:
    print("refused"); sys.exit(0)
print("won", flush=True)
import time; time.sleep(3)
lease.release()
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", racer, str(tmp_path), f"RUN-{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(6)
    ]
    outputs = [p.communicate(timeout=30)[0].strip() for p in procs]
    assert sorted(outputs) == ["refused"] * 5 + ["won"]


def test_lease_folder_keeps_itself_out_of_git(scratch_repo: Path) -> None:
    with RepositoryLease(scratch_repo, run_id="RUN-G", command="g", heartbeat=False):
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=scratch_repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    assert ".conveyor" not in status


def test_a_holder_whose_lease_was_reclaimed_knows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    import conveyor.adapters.lease as lease_module

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    # Other tests in the session reconfigure logging (Prefect): watch a logger of this test's own.
    watched = logging.getLogger("test.lease.reclaimed")
    kept = Keep()
    watched.addHandler(kept)
    monkeypatch.setattr(logging.root.manager, "disable", 0)
    monkeypatch.setattr(lease_module, "_log", watched)
    first = RepositoryLease(tmp_path, run_id="RUN-SLOW", command="slow", ttl_s=0.3)
    first.acquire()
    data = json.loads(lease_path(tmp_path).read_text())
    data["token"] = "someone-else"  # another writer took it over while this one stalled
    lease_path(tmp_path).write_text(json.dumps(data))
    deadline = time.monotonic() + 5
    while not first.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.lost and any("lost the lease" in m for m in kept.messages)
    first.release()
    assert lease_path(tmp_path).exists()  # never removes the other writer's lease
