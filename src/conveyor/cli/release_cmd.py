"""``conveyor release``: the milestone release flow (validation, version, notes, changelog, tag)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown

from conveyor.cli.app import app
from conveyor.cli.prefect_env import configure_prefect, record_api

out = Console(highlight=False, soft_wrap=True)


@app.command()
def release(
    repo: Annotated[Path, typer.Option("--repo", "-C", help="The target repository.")] = Path(),
    version: Annotated[
        str | None, typer.Option("--version", help="Release as this version (refused if it breaks the rules).")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="anthropic | claude-code | scripted | deterministic (release notes)."),
    ] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="With approvals.release: pause for `conveyor answer release`.")
    ] = False,
    timeout: Annotated[float, typer.Option("--answer-timeout", help="Seconds the approval waits.")] = 3600.0,
) -> None:
    """Release the milestone: check it, write notes and changelog, mark the PRD, archive, commit and tag."""
    root = repo.resolve()
    configure_prefect(root)
    if interactive:
        record_api(root)
    from prefect import tags

    from flows.milestone_release import milestone_release

    with tags("release", f"repo:{root.name}"):
        result: dict[str, Any] = asyncio.run(
            milestone_release(
                repo=str(root), version=version, backend=backend, interactive=interactive, approval_timeout_s=timeout
            )
        )
    out.print(Markdown(str(result["report"])))
    out.print(f"released {result['tag']} at {result['commit'][:12]}")
