"""Zombie detection: a deployment run whose worker died with it is marked Crashed by the automation.

The run sends heartbeats every 30 s (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, set on the worker). The session_runs
fixture SIGKILLed its worker and every process below it once the server had recorded a heartbeat, so nothing
can report the run's end: only `conveyor automations apply`'s zombie automation (no heartbeat for
ZOMBIE_AFTER_S seconds) can.
"""

from __future__ import annotations

import signal
from datetime import datetime

import pytest
from prefect.client.schemas.objects import StateType

from automations.definitions import ZOMBIE
from tests.server.conftest import ZOMBIE_AFTER_S, SessionRuns
from tests.server.harness import PrefectServer, alive
from tests.server.support import client, events, wait_for_state

pytestmark = pytest.mark.slow


def test_killed_deployment_run_is_marked_crashed(prefect_api: PrefectServer, session_runs: SessionRuns) -> None:
    zombie = session_runs.zombie
    assert zombie.killed and not alive(zombie.killed)
    assert zombie.worker.process.returncode == -signal.SIGKILL

    # ZOMBIE_AFTER_S after the last heartbeat (seen just before the kill), plus the 5 s between two proactive
    # evaluations of the automation, plus room for a busy machine.
    run = wait_for_state(zombie.flow_run, StateType.CRASHED, timeout_s=ZOMBIE_AFTER_S + 60)
    assert run.state is not None

    with client() as api:
        states = api.read_flow_run_states(zombie.flow_run)
    names = [state.type for state in states]
    # Running straight to Crashed: nothing else reported the run's end.
    assert names[-2:] == [StateType.RUNNING, StateType.CRASHED], names
    beats = events(prefect_api, "prefect.flow-run.heartbeat", resource_id=f"prefect.flow-run.{zombie.flow_run}")
    last_beat = max(datetime.fromisoformat(beat["occurred"]) for beat in beats)
    crashed_at = run.state.timestamp
    # Crashed for the missing heartbeat: not before ZOMBIE_AFTER_S without one.
    assert (crashed_at - last_beat).total_seconds() >= ZOMBIE_AFTER_S - 1, (last_beat, crashed_at)
    # And it was the zombie automation that did it.
    executed = events(prefect_api, "prefect.automation.action.executed")
    assert any(
        event["resource"].get("prefect.resource.name") == ZOMBIE
        and event["payload"].get("action_type") == "change-flow-run-state"
        and {"prefect.resource.id": f"prefect.flow-run.{zombie.flow_run}"}.items() <= related.items()
        for event in executed
        for related in event["related"]
    ), executed
