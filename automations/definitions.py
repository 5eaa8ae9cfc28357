"""Conveyor's automations, as code (docs/deployments.md). ``automations/apply.py`` upserts them by name.

- Zombie runs: Prefect's documented proactive automation ("detect zombie flows"): after each
  ``prefect.flow-run.heartbeat`` of a flow run, some ``prefect.flow-run.*`` event of that run must follow
  within ``within`` seconds, or the run is set Crashed. The wildcard (not a list of terminal states) counts a
  Paused or Suspended run, whose process may have exited on purpose, as alive. Heartbeats come from the flow
  engine in the process that runs the flow, every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (default 180, minimum
  30): ``within`` must exceed it, which is why Conveyor's deployments set it to 30.
- A blocked ticket: ``conveyor.ticket.blocked`` sends a notification through a notification block.
- A milestone ready: ``conveyor.milestone.ready`` runs the ``milestone-release/<name>`` deployment on the
  repository the event names (label ``conveyor.path``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

ZOMBIE = "conveyor-zombie-runs"
BLOCKED = "conveyor-ticket-blocked"
DEFAULT_ZOMBIE_AFTER_S = 90.0
# The deployment's parameter, rendered by the server from the triggering event (a jinja placeholder).
REPO_FROM_EVENT: dict[str, Any] = {"__prefect_kind": "jinja", "template": "{{ event.resource['conveyor.path'] }}"}
TICKET = "{{ event.resource['prefect.resource.name'] }}"
REPO = "{{ event.resource['conveyor.repo'] }}"


def milestone_name(deployment_name: str) -> str:
    return f"conveyor-milestone-release-{deployment_name}"


def zombie_runs(within_s: float = DEFAULT_ZOMBIE_AFTER_S) -> AutomationCore:
    return AutomationCore(
        name=ZOMBIE,
        description=f"Conveyor: a flow run with no heartbeat for {within_s:g} s is marked Crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"Marked Crashed by {ZOMBIE}: no heartbeat for {within_s:g} s (the process is gone).",
            )
        ],
    )


def ticket_blocked(block_document_id: UUID) -> AutomationCore:
    return AutomationCore(
        name=BLOCKED,
        description="Conveyor: notify when a ticket is blocked.",
        trigger=EventTrigger(
            expect={"conveyor.ticket.blocked"},
            match=ResourceSpecification({"prefect.resource.id": "conveyor.ticket.*"}),
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,
                subject=f"Conveyor: {TICKET} is blocked in {REPO}",
                body=(
                    f"Ticket {TICKET} of repository {REPO} (run {{{{ event.resource['conveyor.run'] }}}}) is "
                    "blocked: {{ event.payload.detail }}\n"
                    f"Answer in the Prefect UI, or: conveyor answer {TICKET} --action ... --repo <repository>"
                ),
            )
        ],
    )


def milestone_release(deployment_name: str, deployment_id: UUID, repo: str | None) -> AutomationCore:
    """``repo``: the deployment's own repository, when it has one; then only that repository's events count."""
    match: dict[str, str | list[str]] = {"prefect.resource.id": "conveyor.milestone.*"}
    if repo:
        match["conveyor.path"] = repo
    return AutomationCore(
        name=milestone_name(deployment_name),
        description=f"Conveyor: release the milestone with milestone-release/{deployment_name} when it is ready.",
        trigger=EventTrigger(
            expect={"conveyor.milestone.ready"},
            match=ResourceSpecification(match),
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id, parameters={"repo": REPO_FROM_EVENT})],
    )
