"""``conveyor init``, ``status`` and ``validate``: the commands about a target repository as a whole."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from conveyor.adapters.lease import RepositoryLease
from conveyor.cli.app import app
from conveyor.domain.errors import InputError
from conveyor.services.scaffold import init_repository
from conveyor.services.status import StatusReport, repository_status
from conveyor.services.validate import validate_repository
from conveyor.settings import load_settings

out = Console(highlight=False, soft_wrap=True)
RepoOption = Annotated[Path, typer.Option("--repo", "-C", help="The target repository.", show_default=True)]


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Target repository (default: here).")] = Path()) -> None:
    """Scaffold automations/build-spec.yaml, docs/ folders, an empty docs/TASKS.md and .gitignore entries.

    Existing files are never overwritten.
    """
    path.mkdir(parents=True, exist_ok=True)
    with RepositoryLease(path, run_id="init", command="conveyor init") as _lease:
        report = init_repository(path)
    for item in report.created:
        out.print(f"[green]created[/green] {item}")
    for item in report.kept:
        out.print(f"[dim]kept    {item} (already there)[/dim]")
    if report.gitignore_added:
        out.print(f"[green]added to .gitignore[/green] {', '.join(report.gitignore_added)}")
    if not (path / ".git").exists():
        out.print("[yellow]note:[/yellow] not a git repository yet; Conveyor needs one to run tickets (git init).")


def _print_status(report: StatusReport) -> None:
    out.print(f"[bold]{report.project}[/bold] · milestone {report.milestone} · {report.total} tickets")
    if report.llm_mode == "deterministic":
        out.print("LLM: deterministic mode (no ANTHROPIC_API_KEY): no model is called")
    elif report.llm_mode == "scripted":
        out.print("LLM: scripted backend (build-spec agents.script; tests and demos): no model is called")
    else:
        out.print(f"LLM: {report.llm_mode} (ANTHROPIC_API_KEY is set)")
    counts = Table(title="Tickets by status", show_header=True)
    counts.add_column("status")
    counts.add_column("tickets", justify="right")
    for status, n in report.by_status.items():
        counts.add_row(status, str(n))
    out.print(counts)

    ready = Table(title=f"Ready ({len(report.ready)})", show_header=True)
    for column in ("id", "severity", "title", "estimate"):
        ready.add_column(column)
    for ticket in report.ready[:10]:
        ready.add_row(
            ticket.id,
            ticket.severity.value if ticket.severity else "",
            ticket.title,
            f"{ticket.estimate_tokens / 1000:g}K" if ticket.estimate_tokens else "",
        )
    out.print(ready if report.ready else "Ready: none")
    if report.running:
        out.print("Running: " + ", ".join(f"{t.id} ({t.state.value})" for t in report.running))
    if report.critical_path:
        out.print("Critical path: " + " → ".join(report.critical_path))

    b = report.budget
    source = "cap" if b.cap_source.value == "explicit" else "soft cap, derived from the estimates"
    if b.cap_source.value == "derived" and not report.budget_recorded:
        source += "; a run's preflight records it"
    out.print(
        f"Budget: used ${b.used_usd:.2f} + remaining ${b.remaining_estimate_usd:.2f} = projected "
        f"${b.projected_usd:.2f} of ${b.cap_usd:.2f} ({source}) → {b.percent:.0f}% · mode {b.mode.value}"
        + (" · OVER CAP" if b.over_cap else "")
    )
    if report.deadlock is not None:
        out.print(f"[red]{report.deadlock.describe()}[/red]")
    for warning in report.warnings:
        out.print(f"[yellow]{warning}[/yellow]")


@app.command()
def status(repo: RepoOption = Path()) -> None:
    """Tickets by status, the ready set, the critical path and the budget position."""
    settings = load_settings(repo)
    _print_status(repository_status(repo, settings))


@app.command()
def validate(repo: RepoOption = Path()) -> None:
    """Check TASKS.md, run-state, run-queue, build-spec, gate contracts and workflows; exit 2 on any error."""
    problems = validate_repository(repo)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        if problem.severity != "error":
            out.print(f"[yellow]{problem}[/yellow]")
    if errors:
        raise InputError(errors)
    out.print(f"[green]valid[/green]: {repo} ({len(problems)} warning(s))")
