"""``conveyor blocks register``: Conveyor's block types on the configured Prefect API (docs/blocks.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from conveyor.cli.app import app
from conveyor.cli.prefect_env import configure_prefect

out = Console(highlight=False, soft_wrap=True)
blocks_app = typer.Typer(help="Conveyor's Prefect block types (agents, budget, forge).", no_args_is_help=True)
app.add_typer(blocks_app, name="blocks")


@blocks_app.command("register")
def register(
    repo: Annotated[
        Path, typer.Option("--repo", "-C", help="Without PREFECT_API_URL: this repository's API.")
    ] = Path(),
) -> None:
    """Register (or update) the block types with PREFECT_API_URL's server (else the repository's local API)."""
    configure_prefect(repo.resolve())
    from prefect.settings import PREFECT_API_URL

    from blocks.conveyor_blocks import register_block_types

    slugs = register_block_types()
    out.print(f"registered {', '.join(slugs)} with {PREFECT_API_URL.value() or 'the local Prefect API'}")
