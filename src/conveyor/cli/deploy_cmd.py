"""``conveyor deploy``: Conveyor's four deployments on the configured Prefect server (docs/deployments.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from conveyor.cli.app import app
from conveyor.domain.errors import ConveyorError, InputError

if TYPE_CHECKING:
    from deployments.apply import AppliedDeployment

out = Console(highlight=False, soft_wrap=True)
DEFAULT_POOL = "conveyor"


def require_api() -> str:
    """The Prefect API URL (environment or Prefect profile), checked reachable; ConveyorError otherwise.

    Deployments and automations live on a lasting server: there is no local fallback as for ``conveyor run``.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ConveyorError(
            "no Prefect server: set PREFECT_API_URL (for example http://127.0.0.1:4200/api after "
            "`prefect server start`)"
        )
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise ConveyorError(f"cannot reach the Prefect API at {url}: {type(problem).__name__}: {problem}")
    return str(url)


def _valid_cron(cron: str) -> str:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError as exc:
        raise InputError.single("--cron", None, f"not a cron expression: {cron!r}") from exc
    return cron


@app.command()
def deploy(
    repo: Annotated[
        Path | None, typer.Argument(help="The repository every deployment runs on (default parameter repo).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Deployment name (default: the repository's folder, else conveyor).")
    ] = None,
    pool: Annotated[str, typer.Option("--pool", help="Work pool (type process; created when missing).")] = DEFAULT_POOL,
    cron: Annotated[
        str, typer.Option("--cron", callback=_valid_cron, help="The improvement loop's schedule (UTC).")
    ] = "0 3 * * *",
) -> None:
    """Create or update the bootstrap, execution-loop, milestone-release and improvement-loop deployments."""
    root = repo.resolve() if repo else None
    if root is not None and not root.is_dir():
        raise InputError.single(str(root), None, "not a directory (REPO)")
    url = require_api()
    from deployments.apply import apply_deployments
    from deployments.pool import ensure_work_pool

    created = ensure_work_pool(pool)
    out.print(f"work pool {pool} (process) on {url}: {'created' if created else 'exists'}")
    name = name or (root.name if root else "conveyor")
    for applied in apply_deployments(name=name, work_pool=pool, repo=str(root) if root else None, cron=cron):
        _show(applied)
    out.print(f"Start a worker from this checkout's environment: prefect worker start --pool {pool}")


def _show(d: AppliedDeployment) -> None:
    paused = "paused" if d.paused else "not paused"
    out.print(f"{d.full_name}  id {d.id}  {'created' if d.created else 'updated'}  ({paused})")
    if d.cron is not None:
        state = "active" if d.schedule_active else "inactive"
        out.print(f"  schedule: cron '{d.cron}' (UTC), {state}")
        if not d.schedule_active:
            out.print(f"  resume it: prefect deployment schedule resume '{d.full_name}' {d.schedule_id}")
    out.print(f"  run: {d.run_command()}")
