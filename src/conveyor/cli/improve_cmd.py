"""``conveyor improve``: improvement loops (scan, file tickets, deliver them, measure, commit)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from conveyor.cli.app import app
from conveyor.cli.prefect_env import configure_prefect

out = Console(highlight=False, soft_wrap=True)


@app.command()
def improve(
    repo: Annotated[Path, typer.Option("--repo", "-C", help="The target repository.")] = Path(),
    loops: Annotated[int, typer.Option("--loops", "-n", min=1, max=100, help="How many loops to run.")] = 1,
    max_tickets: Annotated[
        int | None, typer.Option("--max-tickets", min=1, help="Tickets per loop (default: build-spec, 5).")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="anthropic | claude-code | scripted | deterministic (default: build-spec)."),
    ] = None,
) -> None:
    """Find issues with the scanners (and the research agent with a model), fix them through the execution loop."""
    root = repo.resolve()
    configure_prefect(root)
    from conveyor.services.agents import backend_name
    from conveyor.settings import load_settings

    mode = backend or backend_name(load_settings(root))
    if mode == "deterministic":
        out.print(
            "agents: deterministic mode (no ANTHROPIC_API_KEY): scanners only; mechanical fixers (ruff --fix, "
            "ruff format) implement what they can fix, reviewed by the no-LLM review"
        )
    else:
        out.print(f"agents: {mode}")
    from prefect import tags

    from flows.improvement_loop import improvement_loop

    with tags("improve", f"repo:{root.name}"):
        result: dict[str, Any] = asyncio.run(
            improvement_loop(repo=str(root), loops=loops, backend=backend, max_tickets=max_tickets)
        )
    for loop in result["loops"]:
        _print_loop(loop)
    if result["stopped"]:
        out.print(f"improvement loop not run: {result['stopped']}")
        raise typer.Exit(1)


def _print_loop(loop: dict[str, Any]) -> None:
    table = Table(title=f"Improvement loop {loop['loop']}: findings {loop['before']} -> {loop['after']}")
    for column in ("scanner", "before", "after"):
        table.add_column(column)
    for row in loop["by_scanner"]:
        table.add_row(*(("unavailable" if row[k] is None else str(row[k])) for k in ("scanner", "before", "after")))
    out.print(table)
    for ticket, state in loop["tickets"].items():
        out.print(f"  {ticket}: {state}")
    out.print(f"commit: {loop['commit'] or '(nothing to commit)'}")
