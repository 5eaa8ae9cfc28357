"""Seed 003's runner commands: ``runs``, ``gate``, ``invocation`` and ``workflow run``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console

from conveyor.adapters.run_store import RunStore, dump
from conveyor.adapters.structured_text import read_text
from conveyor.cli.app import app
from conveyor.domain.errors import ConveyorError
from conveyor.domain.run import Depth, GateAttempt, GateStatus, InvocationStatus, RunStatus, describe_attempt
from conveyor.services.runner import Runner

out = Console(highlight=False, soft_wrap=True)

runs_app = typer.Typer(help="Run records under automations/runs/ (seed 003).", no_args_is_help=True)
gate_app = typer.Typer(help="Start, finish or fail a gate of a run.", no_args_is_help=True)
invocation_app = typer.Typer(help="Record agent invocations in a run.", no_args_is_help=True)
workflow_app = typer.Typer(help="Run a gated workflow (automations/workflows/<name>.yaml).", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(gate_app, name="gate")
app.add_typer(invocation_app, name="invocation")
app.add_typer(workflow_app, name="workflow")

RepoOption = Annotated[Path, typer.Option("--repo", help="The target repository.", file_okay=False)]
RunOption = Annotated[str, typer.Option("--run", help="Run id, e.g. RUN-20260119-1430.")]
GateOption = Annotated[str, typer.Option("--gate", help="Gate id, e.g. G1.")]
SlugOption = Annotated[str, typer.Option("--slug", help="Slug of the work product.")]
ArtifactOption = Annotated[str, typer.Option("--artifact-path", help="Repository-relative folder of the outputs.")]
DepthOption = Annotated[Depth, typer.Option("--depth", help="Research depth.")]


class GateFailedError(ConveyorError):
    """A gate attempt ended FAIL (exit code 1)."""


class RunFailedError(ConveyorError):
    """A workflow run ended FAILED or was interrupted (exit code 1)."""


def _say(line: str) -> None:
    out.print(line, markup=False)


def _show_attempt(attempt: GateAttempt) -> None:
    for line in describe_attempt(attempt):
        _say(line)
    if attempt.status is GateStatus.FAIL:
        raise GateFailedError(f"gate {attempt.gate} FAILED: {attempt.failure_reason or 'see above'}")


# --- runs ------------------------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(repo: RepoOption = Path()) -> None:
    """List the runs, oldest first."""
    store = RunStore(repo)
    ids = store.list_runs()
    if not ids:
        _say("no runs")
        return
    for run in store.load_runs():
        gates = " ".join(f"{g.gate}:{g.status.value}" for g in run.gates)
        _say(f"{run.run_id}  {run.status.value:<8}  {run.workflow.name}  {run.workflow.slug}  {gates}")


@runs_app.command("show")
def runs_show(run: RunOption, repo: RepoOption = Path()) -> None:
    """Print the run's RUN.json."""
    out.print_json(data=dump(RunStore(repo).load(run)))


@runs_app.command("start")
def runs_start(
    workflow: Annotated[str, typer.Option("--workflow", help="Workflow name (automations/workflows/<name>.yaml).")],
    slug: SlugOption,
    artifact_path: ArtifactOption,
    depth: DepthOption = Depth.STANDARD,
    repo: RepoOption = Path(),
) -> None:
    """Start a run in manual mode: then `gate start` / `gate finish` each gate."""
    record = Runner(repo).start_run(workflow, slug=slug, artifact_path=artifact_path, depth=depth)
    _say(f"started {record.run_id} ({record.workflow.name}, gates {', '.join(g.gate for g in record.gates)})")
    _say(f"record: {RunStore(repo).display(RunStore(repo).run_file(record.run_id))}")


@runs_app.command("complete")
def runs_complete(
    run: RunOption,
    status: Annotated[RunStatus, typer.Option("--status", help="PASSED, FAILED or CANCELED.")] = RunStatus.PASSED,
    repo: RepoOption = Path(),
) -> None:
    """Mark a run finished; a finished run cannot be completed again."""
    record = Runner(repo).complete_run(run, status)
    _say(f"{record.run_id}: {record.status.value}")


# --- gates and invocations -------------------------------------------------------------------------


@gate_app.command("start")
def gate_start(
    run: RunOption,
    gate: GateOption,
    agent: Annotated[str | None, typer.Option("--agent", help="Agent doing the gate's work.")] = None,
    repo: RepoOption = Path(),
) -> None:
    """Open a new attempt at a gate."""
    runner = Runner(repo)
    attempt = runner.start_gate(run, gate, agent)
    _say(f"{run} {gate}: attempt {attempt.attempt} started")
    packet = runner.store.gate_logs_dir(run, gate) / "prompt.txt"
    if packet.exists():
        _say(f"prompt packet: {runner.store.display(packet)}")


@gate_app.command("finish")
def gate_finish(
    run: RunOption,
    gate: GateOption,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for a running `workflow run` to record the gate.")
    ] = 600.0,
    repo: RepoOption = Path(),
) -> None:
    """Run the gate contract's validations and record the attempt (exit 1 when it fails)."""
    _show_attempt(Runner(repo).finish_gate(run, gate, wait_s=wait))


@gate_app.command("fail")
def gate_fail(
    run: RunOption,
    gate: GateOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the gate failed.")],
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a running `workflow run`.")] = 600.0,
    repo: RepoOption = Path(),
) -> None:
    """Fail the running attempt of a gate with a reason."""
    attempt = Runner(repo).fail_gate(run, gate, reason, wait_s=wait)
    for line in describe_attempt(attempt):
        _say(line)


@invocation_app.command("record")
def invocation_record(
    run: RunOption,
    gate: GateOption,
    agent: Annotated[str, typer.Option("--agent", help="Agent that was invoked.")],
    status: Annotated[InvocationStatus, typer.Option("--status")] = InvocationStatus.SUCCESS,
    repo: RepoOption = Path(),
) -> None:
    """Record an agent invocation on a gate."""
    invocation = Runner(repo).record_invocation(run, gate, agent, status)
    attempt = f" attempt {invocation.attempt}" if invocation.attempt else ""
    _say(f"{invocation.id}: {agent} on {gate}{attempt}: {invocation.status.value}")


# --- workflow run ----------------------------------------------------------------------------------


def _terminal() -> TextIO | None:
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return None
    return stdin


@workflow_app.command("run")
def workflow_run(
    name: Annotated[str, typer.Argument(help="Workflow name (automations/workflows/<name>.yaml).")],
    *,
    slug: SlugOption,
    artifact_path: ArtifactOption,
    depth: DepthOption = Depth.STANDARD,
    prompt_file: Annotated[
        Path | None, typer.Option("--prompt-file", help="Topic or prompt text added to every prompt packet.")
    ] = None,
    repo: RepoOption = Path(),
) -> None:
    """Run every gate in order: write its prompt packet, wait for you, validate, stop at the first failure."""
    prompt = read_text(prompt_file, str(prompt_file)) if prompt_file is not None else None
    try:
        record = Runner(repo).run_workflow(
            name, slug=slug, artifact_path=artifact_path, depth=depth, prompt=prompt, answers=_terminal(), report=_say
        )
    except KeyboardInterrupt:
        raise RunFailedError("interrupted: the run is recorded as CANCELED") from None
    if record.status is not RunStatus.PASSED:
        failed = next((g for g in record.gates if g.status is GateStatus.FAIL), None)
        where = f" at {failed.gate}" if failed else ""
        reason = failed.current.failure_reason if failed and failed.current else None
        raise RunFailedError(f"run {record.run_id} {record.status.value}{where}" + (f": {reason}" if reason else ""))
