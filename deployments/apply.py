"""Conveyor's four deployments, applied idempotently (docs/deployments.md).

Each deployment names its flow by module path (``flows.improvement_loop.improvement_loop``, Prefect's
``EntrypointType.MODULE_PATH``): a process worker started from this checkout imports it from the installed
project, with no pull step and no image. (A ``module:function`` entrypoint would not do: Prefect reads any colon
as a file path and first copies the deployment's path into the worker's directory.)

Re-applying is an update by name: the deployment ids stay, and the improvement loop's one schedule, which carries
a fixed slug, is patched in place (same schedule id) rather than recreated. The schedule is inactive on creation;
once a person resumes it (UI, or ``prefect deployment schedule resume``), re-applying keeps it active; a person's
pause of a whole deployment is kept too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import Flow, get_client
from prefect._internal.versioning import VersionType
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType

import conveyor
from deployments.pool import ensure_work_pool
from flows.bootstrap import bootstrap
from flows.execution_loop import execution_loop
from flows.improvement_loop import improvement_loop
from flows.milestone_release import milestone_release

DEFAULT_CRON = "0 3 * * *"
SCHEDULE_SLUG = "conveyor-improvement-loop"
HEARTBEAT_S = 30  # Prefect's minimum; the zombie automation's `within` (90 s) is three missed beats
FLOWS: tuple[Flow[..., Any], ...] = (bootstrap, execution_loop, milestone_release, improvement_loop)
SCHEDULED = improvement_loop.name


@dataclass(frozen=True)
class AppliedDeployment:
    flow: str
    name: str
    id: UUID
    created: bool
    entrypoint: str
    work_pool: str
    parameters: dict[str, Any]
    paused: bool  # the deployment as a whole (a person's pause in the UI)
    cron: str | None = None
    schedule_id: UUID | None = None
    schedule_active: bool | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"

    def run_command(self) -> str:
        repo = "" if "repo" in self.parameters else " --param repo=/path/to/repo"
        return f"prefect deployment run '{self.full_name}'{repo}"


def _existing(full_name: str) -> DeploymentResponse | None:
    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return None


def _schedule(existing: DeploymentResponse | None, cron: str) -> dict[str, Any]:
    # Inactive until a person resumes it; a resumed schedule stays active when the cron changes.
    active = bool(existing and any(s.active for s in existing.schedules))
    return {"schedule": CronSchedule(cron=cron), "active": active, "slug": SCHEDULE_SLUG}


def apply_deployments(
    *, name: str, work_pool: str, repo: str | None = None, cron: str = DEFAULT_CRON
) -> list[AppliedDeployment]:
    """Create or update ``<flow>/<name>`` for the four flows on ``work_pool`` (created when missing).

    ``repo``: every deployment gets the default parameter ``repo=<absolute path>``; without it, each run names
    its repository (``--param repo=...``). ``cron``: the improvement loop's schedule.
    """
    ensure_work_pool(work_pool)
    parameters = {"repo": str(Path(repo).resolve())} if repo else {}
    tags = ["conveyor", *([f"repo:{Path(repo).resolve().name}"] if repo else [])]
    applied = []
    for flow in FLOWS:
        existing = _existing(f"{flow.name}/{name}")
        deployment = RunnerDeployment.from_flow(
            flow,
            name,
            parameters=parameters,
            tags=tags,
            version=conveyor.__version__,
            version_type=VersionType.SIMPLE,  # not the git commit of whatever directory this runs in
            paused=existing.paused if existing else False,
            job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}},
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        schedules = [_schedule(existing, cron)] if flow.name == SCHEDULED else None
        # _sync: the sync implementation even when called from a thread that runs an event loop.
        deployment_id = cast(UUID, deployment.apply(schedules=schedules, work_pool_name=work_pool, _sync=True))  # type: ignore[call-arg]
        applied.append(_read_back(flow.name, name, deployment_id, created=existing is None))
    return applied


def _read_back(flow: str, name: str, deployment_id: UUID, *, created: bool) -> AppliedDeployment:
    with get_client(sync_client=True) as client:
        d = client.read_deployment(deployment_id)
    schedule = d.schedules[0] if d.schedules else None
    return AppliedDeployment(
        flow=flow,
        name=name,
        id=d.id,
        created=created,
        entrypoint=d.entrypoint or "",
        work_pool=d.work_pool_name or "",
        parameters=dict(d.parameters),
        paused=bool(d.paused),
        cron=getattr(schedule.schedule, "cron", None) if schedule else None,
        schedule_id=schedule.id if schedule else None,
        schedule_active=schedule.active if schedule else None,
        tags=list(d.tags),
    )
