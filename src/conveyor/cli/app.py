"""The ``conveyor`` command. Imports of prefect, anthropic and dspy stay inside the commands that need them."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from conveyor.domain.errors import ConveyorError, InputError

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

app = typer.Typer(
    name="conveyor",
    help="Autonomous software delivery: spec or review report → backlog → reviewed, tested merges → release.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _register() -> None:
    # Each command group lives in its own module; importing it adds its commands to ``app``.
    from conveyor.cli import (  # noqa: F401
        automations_cmd,
        blocks_cmd,
        bootstrap_cmd,
        deploy_cmd,
        improve_cmd,
        release_cmd,
        repo_cmds,
        run_cmd,
        runner_cmds,
    )


def _click_errors() -> tuple[type[Exception], ...]:
    """Usage errors: typer 0.29 raises those of the click copy it bundles (typer._click), older typers click's."""
    from click import ClickException

    found: list[type[Exception]] = [ClickException]
    try:
        from typer._click.exceptions import ClickException as BundledClickException

        found.append(BundledClickException)
    except ImportError:  # a typer without a bundled click
        pass
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map Conveyor's errors to exit codes (2 for bad input)."""
    _register()
    try:
        # Without standalone mode click returns a command's exit code (typer.Exit) instead of raising it.
        result = app(args=argv if argv is not None else sys.argv[1:], standalone_mode=False)
    except InputError as exc:
        for problem in exc.problems:
            err.print(f"[red]{problem}[/red]" if problem.severity == "error" else str(problem), markup=True)
        return EXIT_BAD_INPUT
    except ConveyorError as exc:
        err.print(f"conveyor: {exc}", markup=False)
        return EXIT_FAILURE
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return EXIT_FAILURE
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        if isinstance(exc, _click_errors()):
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        raise
    return result if isinstance(result, int) else 0
