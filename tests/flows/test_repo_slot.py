"""The repository slot (tasks/repo_slot.py) on the session's real Prefect API: held during a flow run, re-entrant
in one call chain, exclusive between concurrent holders of one repository, independent between repositories,
and freed after a killed holder (an ephemeral API runs no repossessor)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prefect import flow
from prefect.settings import PREFECT_API_URL

from conveyor.adapters.lease import RepositoryLease, read_lease
from conveyor.domain.errors import ConveyorError
from flows.milestone_release import milestone_release
from tasks.repo_slot import active_slots, repo_slot, slot_name
from tasks.repo_slot_holder import read_holder

HOLDER = """
import sys, time
from pathlib import Path
from conveyor.adapters.lease import RepositoryLease
from tasks.repo_slot import repo_slot
root = Path(sys.argv[1])
with repo_slot(root, inner=RepositoryLease(root, run_id="RUN-KILLED", command="test")):
    print("held", flush=True)
    time.sleep(600)
"""


@flow(name="slot-inner")
async def _inner(repo: str) -> int:
    async with repo_slot(Path(repo)):  # the outer flow's slot: must not wait for itself
        return active_slots(Path(repo))


@flow(name="slot-outer")
async def _outer(repo: str) -> tuple[int, int]:
    async with repo_slot(Path(repo), inner=RepositoryLease(Path(repo), run_id="RUN-OUTER", command="test")):
        held = active_slots(Path(repo))
        nested = await _inner(repo)
        await asyncio.to_thread(_nested_sync, Path(repo))  # a thread with the copied context: still nested
        return held, nested


def _nested_sync(root: Path) -> None:
    with repo_slot(root):
        assert active_slots(root) == 1


def test_a_flow_run_holds_the_slot_and_nested_acquisition_passes(tmp_path: Path) -> None:
    started = time.monotonic()
    assert asyncio.run(_outer(str(tmp_path))) == (1, 1)
    assert time.monotonic() - started < 20
    assert active_slots(tmp_path) == 0
    assert read_lease(tmp_path) is None


def test_the_slot_name_is_per_repository_path(tmp_path: Path) -> None:
    one, two = tmp_path / "a" / "textkit", tmp_path / "b" / "textkit"
    assert slot_name(one).startswith("conveyor-repo-textkit-")
    assert slot_name(one) != slot_name(two)
    assert slot_name(tmp_path / "My Repo.git").startswith("conveyor-repo-my-repo-git-")


def _hold(root: Path, hold_s: float, spans: list[tuple[float, float]]) -> None:
    # A fresh thread starts with an empty context: like another run, it is not nested.
    with repo_slot(
        root, inner=RepositoryLease(root, run_id=f"RUN-{threading.get_ident()}", command="test"), poll_s=0.2
    ):
        start = time.monotonic()
        time.sleep(hold_s)
        spans.append((start, time.monotonic()))


def _concurrently(*roots: Path, hold_s: float = 1.5) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    threads = [threading.Thread(target=_hold, args=(root, hold_s, spans)) for root in roots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(spans) == len(roots)
    return sorted(spans)


def test_two_holders_of_one_repository_take_turns(tmp_path: Path) -> None:
    (_, first_end), (second_start, _) = _concurrently(tmp_path, tmp_path)
    assert second_start >= first_end  # the second waited for the first
    assert active_slots(tmp_path) == 0


@pytest.mark.slow
def test_holders_of_different_repositories_do_not_wait(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Held long enough that the client's retry after a 503 (two writes at once on the test server's SQLite) still
    # overlaps: a wait for the other repository's slot would start after its end.
    (_, first_end), (second_start, _) = _concurrently(tmp_path / "a", tmp_path / "b", hold_s=5.0)
    assert second_start < first_end


@pytest.mark.slow
def test_a_killed_holders_slot_is_freed_by_the_next_run(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        assert line == "held", holder.stderr.read() if holder.stderr and holder.poll() is not None else line
        assert active_slots(tmp_path) == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    assert active_slots(tmp_path) == 1  # no repossessor here: the dead holder's slot is still taken
    dead = read_holder(tmp_path)
    assert dead is not None and dead.pid == holder.pid and not dead.is_live()
    started = time.monotonic()
    with repo_slot(tmp_path, poll_s=0.2):
        assert active_slots(tmp_path) == 1
    assert active_slots(tmp_path) == 0
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("with_lease", [True, False])
def test_a_live_holder_is_waited_for_not_reset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, with_lease: bool
) -> None:
    """Also without the repository lease: the improvement loop holds the slot between steps that take the lease."""
    released: list[float] = []

    def hold() -> None:
        inner = RepositoryLease(tmp_path, run_id="RUN-FIRST", command="test") if with_lease else None
        with repo_slot(tmp_path, inner=inner):
            time.sleep(3.0)
            released.append(time.monotonic())

    first = threading.Thread(target=hold)
    first.start()
    while read_holder(tmp_path) is None:  # the first holder has its slot
        time.sleep(0.05)
    with repo_slot(tmp_path, poll_s=0.2):
        acquired = time.monotonic()
        assert active_slots(tmp_path) == 1
        holder = read_holder(tmp_path)
        assert holder is not None and holder.pid == os.getpid() and holder.is_live()
    first.join(30)
    assert released and acquired >= released[0]  # waited for the first holder: never took its slot
    assert read_holder(tmp_path) is None
    waiting = [r.getMessage() for r in caplog.records if "waiting for the slot" in r.getMessage()]
    assert waiting and f"pid {os.getpid()}" in waiting[0]


def test_the_release_flow_holds_the_slot_and_frees_it_when_it_fails(tmp_path: Path) -> None:
    with pytest.raises(ConveyorError):  # not a git repository with a backlog: validation stops the release
        asyncio.run(milestone_release(repo=str(tmp_path), backend="deterministic"))
    assert active_slots(tmp_path) == 0  # the flow created the limit, held it, and released it
