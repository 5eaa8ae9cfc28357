"""``conveyor bootstrap``: run the bootstrap flow on a repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from conveyor.cli.app import app
from conveyor.cli.prefect_env import configure_prefect

out = Console(highlight=False, soft_wrap=True)


@app.command()
def bootstrap(
    repo: Annotated[Path, typer.Option("--repo", "-C", help="The target repository.")] = Path(),
    prd: Annotated[str | None, typer.Option("--prd", help="PRD file (default: docs/PRD.md or docs/PRD.json).")] = None,
    report: Annotated[
        str | None, typer.Option("--report", help="Review report folder (docs/reports/<name>/ or its name).")
    ] = None,
    kickstart: Annotated[
        str | None, typer.Option("--kickstart", help="Mission text; the PRD is drafted from it.")
    ] = None,
    resume_archive: Annotated[
        bool, typer.Option("--resume-archive", help="No docs/TASKS.md: continue from the newest archived backlog.")
    ] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="No docs/TASKS.md: ignore archived backlogs.")] = False,
) -> None:
    """Plan a dependency-ordered backlog in docs/TASKS.md from a PRD, a review report or a kickstart text.

    Re-runs upsert: new findings are added, removed ones marked obsolete, and nothing is written when nothing
    changed.
    """
    if sum(bool(x) for x in (prd, report, kickstart)) > 1:
        raise typer.BadParameter("give one of --prd, --report, --kickstart")
    if resume_archive and fresh:
        raise typer.BadParameter("give --resume-archive or --fresh, not both")
    configure_prefect(repo)
    from conveyor.services.agents import backend_name
    from conveyor.settings import load_settings

    mode = backend_name(load_settings(repo))
    if mode == "deterministic":
        out.print("agents: deterministic mode (no ANTHROPIC_API_KEY): no model is called")
    else:
        out.print(f"agents: {mode}" + (" (scripted: for tests and demos)" if mode == "scripted" else ""))
    from flows.bootstrap import bootstrap as bootstrap_flow

    archive = "resume" if resume_archive else "fresh" if fresh else None
    result = bootstrap_flow(repo=str(repo.resolve()), prd=prd, report=report, kickstart=kickstart, archive=archive)
    out.print(Markdown(str(result["summary"])))
