"""``conveyor automations apply``: Conveyor's automations on the configured Prefect server (docs/deployments.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from conveyor.cli.app import app
from conveyor.cli.deploy_cmd import require_api

out = Console(highlight=False, soft_wrap=True)
automations_app = typer.Typer(help="Conveyor's Prefect automations (zombie runs, blocked tickets, releases).")
app.add_typer(automations_app, name="automations")


@automations_app.callback()
def _group() -> None:
    """Conveyor's Prefect automations, as code."""


@automations_app.command("apply")
def apply(
    name: Annotated[
        str, typer.Option("--name", help="The deployments' name (conveyor deploy --name): milestone-release/NAME.")
    ] = "conveyor",
    notify_block: Annotated[
        str | None,
        typer.Option("--notify-block", help="Notification block for blocked tickets: NAME or BLOCK-TYPE/NAME."),
    ] = None,
    zombie_after: Annotated[
        float, typer.Option("--zombie-after", min=60, help="Seconds without a heartbeat before a run is Crashed.")
    ] = 90.0,
) -> None:
    """Create or update the automations by name (exactly one each); say which were skipped and why."""
    url = require_api()
    from automations.apply import apply_automations

    out.print(f"automations on {url}:")
    for applied in apply_automations(name=name, notify_block=notify_block, zombie_after_s=zombie_after):
        if applied.outcome == "skipped":
            out.print(f"{applied.name}: skipped: {applied.reason}")
        else:
            out.print(f"{applied.name}: {applied.outcome} (id {applied.id})")
    out.print(
        f"A flow run without a heartbeat for {zombie_after:g} s is marked Crashed: every process that runs flows "
        "against this server must beat more often, through PREFECT_FLOWS_HEARTBEAT_FREQUENCY (Prefect's default "
        "is 180 s; Conveyor's deployments set 30)."
    )
