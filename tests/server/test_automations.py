"""Events trigger the automations of `conveyor automations apply` on a real server.

- ``conveyor.ticket.blocked``, as Conveyor's event sink emits it, sends a notification through the webhook
  block to a local HTTP receiver;
- ``conveyor.milestone.ready``, which the execution loop emits when every ticket is done (with the repository's
  path as the label ``conveyor.path``), starts a run of ``milestone-release/<name>`` on that repository, and the
  worker releases it.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.events.worker import EventsWorker

from tasks.events import PrefectEvents
from tests.conftest import git
from tests.server.conftest import Deployed
from tests.server.harness import PrefectServer
from tests.server.support import WebhookReceiver, client, events, wait_for, wait_for_state

pytestmark = pytest.mark.slow


def test_ticket_blocked_event_sends_the_notification(
    prefect_api: PrefectServer, deployed: Deployed, webhook: WebhookReceiver
) -> None:
    ticket = "SRV-BUG-042"
    # As the tracker emits it when a ticket is blocked (services/tracker.py).
    PrefectEvents().emit(
        "conveyor.ticket.blocked",
        resource={"id": ticket, "repo": "textkit", "run": "RUN-20260101-0000"},
        payload={"state": "blocked", "detail": "QA failed 3 times"},
    )
    EventsWorker.drain_all()  # sent now, not when this process exits

    bodies = wait_for(
        f"a webhook call naming {ticket}",
        lambda: [body for body in webhook.bodies() if ticket in body],
        timeout_s=60,
    )
    assert "textkit" in bodies[0]
    assert "QA failed 3 times" in bodies[0]
    # The server stored the event too (its writer batches: it may come after the notification).
    resource = f"conveyor.ticket.{ticket}"
    wait_for(
        "the stored event", lambda: events(prefect_api, "conveyor.ticket.blocked", resource_id=resource), timeout_s=30
    )


def test_milestone_ready_event_starts_the_milestone_release(
    prefect_api: PrefectServer, deployed: Deployed, delivered_textkit: tuple[Path, UUID]
) -> None:
    repo, _ = delivered_textkit
    assert events(prefect_api, "conveyor.milestone.ready", resource_id="conveyor.milestone.0.0.1")

    with client() as api:
        deployment = api.read_deployment_by_name(f"milestone-release/{deployed.name}")

    def release_run() -> FlowRun | None:
        with client() as api:
            runs = api.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
        return next((run for run in runs if Path(str(run.parameters.get("repo"))).resolve() == repo.resolve()), None)

    run = wait_for("a milestone-release run for textkit", release_run, timeout_s=60)
    wait_for_state(run.id, StateType.COMPLETED, timeout_s=240)
    assert "v0.0.1" in git(repo, "tag", "--list").split()
    assert git(repo, "status", "--porcelain").strip() == ""
