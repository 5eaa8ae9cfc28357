"""``conveyor run`` (the execution loop, with live progress) and ``conveyor answer`` (a held ticket's form)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.table import Table

from conveyor.cli.app import app
from conveyor.cli.prefect_env import API_FILE, configure_prefect, record_api

out = Console(highlight=False, soft_wrap=True)


def _progress_table(repo: Path) -> Table:
    from conveyor.adapters.state_files import load_run_state_if_exists, run_state_path

    table = Table(title="conveyor run", expand=False)
    for column in ("ticket", "status", "stage", "iterations"):
        table.add_column(column)
    try:
        state = load_run_state_if_exists(run_state_path(repo))
    except Exception:
        return table
    if state is None:
        return table
    done = sum(1 for r in state.tickets.values() if r.status.value == "done")
    table.caption = f"{state.run_id}: {done}/{len(state.tickets)} done"
    for tid, record in state.tickets.items():
        if record.status.value in ("pending",):
            continue
        table.add_row(tid, record.status.value, record.stage.stage.value, str(record.stage.iterations))
    return table


def _watch(repo: Path, stop: threading.Event) -> None:
    with Live(_progress_table(repo), console=out, refresh_per_second=2, transient=False) as live:
        while not stop.wait(0.5):
            live.update(_progress_table(repo))
        live.update(_progress_table(repo))


@app.command()
def run(
    repo: Annotated[Path, typer.Option("--repo", "-C", help="The target repository.")] = Path(),
    workers: Annotated[int | None, typer.Option("--workers", "-w", min=1, max=32, help="Tickets in parallel.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run recorded in run-state.json.")] = False,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="anthropic | claude-code | scripted | deterministic (default: build-spec)."),
    ] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Held tickets pause for an answer (UI or `conveyor answer`).")
    ] = False,
    timeout: Annotated[float, typer.Option("--answer-timeout", help="Seconds a paused ticket waits.")] = 3600.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress table.")] = False,
) -> None:
    """Deliver the backlog: implement, review, QA and document each ticket in its worktree, then merge it."""
    root = repo.resolve()
    configure_prefect(root)
    from conveyor.services.agents import backend_name
    from conveyor.settings import load_settings

    settings = load_settings(root)
    mode = backend or backend_name(settings)
    if mode == "deterministic":
        out.print("agents: deterministic mode (no ANTHROPIC_API_KEY): no model is called; change tickets are held")
    else:
        out.print(f"agents: {mode}" + (" (scripted: for tests and demos)" if mode == "scripted" else ""))
    from prefect import tags

    from flows.execution_loop import execution_loop, resolve_run_id

    run_id = resolve_run_id(root, None, resume)  # names the Prefect flow run and tags every subflow run

    if interactive:
        record_api(root)
    stop = threading.Event()
    watcher = None
    if not quiet and out.is_terminal:
        watcher = threading.Thread(target=_watch, args=(root, stop), daemon=True)
        watcher.start()
    try:
        with tags(run_id, f"repo:{root.name}"):
            result: dict[str, Any] = asyncio.run(
                execution_loop(
                    repo=str(root),
                    run_id=run_id,
                    workers=workers,
                    resume=resume,
                    backend=backend,
                    interactive=interactive,
                    escalation_timeout_s=timeout,
                )
            )
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(timeout=5)
    out.print(Markdown(str(result["report"])))
    if result["stopped"]:
        raise typer.Exit(1)


@app.command()
def answer(
    ticket: Annotated[
        str, typer.Argument(help="The held ticket (e.g. TK-FEAT-001), the run id (budget pause), or 'release'.")
    ],
    action: Annotated[
        str,
        typer.Option(
            "--action",
            "-a",
            help="retry|grant_budget|skip|defer|approve|abort; run: raise_cap|stop; release: approve|reject",
        ),
    ],
    repo: Annotated[Path, typer.Option("--repo", "-C", help="The target repository.")] = Path(),
    guidance: Annotated[str, typer.Option("--guidance", help="retry: what to do differently.")] = "",
    budget: Annotated[float | None, typer.Option("--budget-usd", help="grant_budget: the new cap.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="skip / defer / abort: why.")] = "",
    cap: Annotated[float | None, typer.Option("--cap-usd", help="run raise_cap: the new run cap.")] = None,
) -> None:
    """Answer a paused ticket's, run's or release's form (the same form the Prefect UI shows)."""
    root = repo.resolve()
    api = root / API_FILE
    if not os.environ.get("PREFECT_API_URL") and api.exists():
        os.environ["PREFECT_API_URL"] = json.loads(api.read_text(encoding="utf-8"))["api_url"]
    configure_prefect(root)
    target = f"release-{root.name}" if ticket == "release" else ticket  # the release flow run's name
    found = asyncio.run(
        _resume(target, {"action": action, "guidance": guidance, "budget_usd": budget, "reason": reason})
    )
    if not found:
        out.print(f"no paused flow run named {ticket} (is `conveyor run --interactive` waiting on it?)")
        raise typer.Exit(1)
    out.print(f"{ticket}: answered {action}")


async def _resume(ticket: str, run_input: dict[str, Any]) -> bool:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypeFilter
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import aresume_flow_run

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[ticket]),
                state=FlowRunFilterState(type=StateTypeFilter(any_=[StateType.PAUSED])),
            )
        )
    if not runs:
        return False
    await aresume_flow_run(runs[0].id, run_input={k: v for k, v in run_input.items() if v not in (None, "")})
    return True
