"""The LLM-call limiter (ARCHITECTURE.md §6): a Prefect global concurrency limit with leased slots, per repository.

A process SIGKILLed while it holds a slot must not keep it: a new run on the repository reclaims it (an ephemeral
API runs no repossessor service to expire the lease).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from prefect import get_client
from prefect.settings import PREFECT_API_URL

from tasks.limiter import PrefectLimiter

pytestmark = pytest.mark.slow
NAME = "conveyor-test-llm-calls"
HOLDER = f"""
import sys, time
from tasks.limiter import PrefectLimiter
limiter = PrefectLimiter(1, name={NAME!r})
with limiter.slot():
    print("held", flush=True)
    time.sleep(600)
"""


def _active_slots() -> int:
    with get_client(sync_client=True) as client:
        return int(client.read_global_concurrency_limit_by_name(NAME).active_slots)


def test_a_killed_holders_slot_comes_free() -> None:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True, stderr=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        assert line == "held", holder.stderr.read() if holder.stderr and holder.poll() is not None else line
        assert _active_slots() == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    assert _active_slots() == 1  # an ephemeral API runs no repossessor: the dead holder's slot is still taken
    started = time.monotonic()
    with PrefectLimiter(1, name=NAME).slot():  # a new run on the repository reclaims it
        assert _active_slots() == 1
    assert _active_slots() == 0
    assert time.monotonic() - started < 10
