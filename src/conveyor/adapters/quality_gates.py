"""Run the build-spec's quality gates in a ticket's worktree (issue 5 §2; ARCHITECTURE.md §8 "Who runs gates").

The loop always runs the gates itself, whatever an agent says it ran. Each gate's argv (never a shell) runs in
the worktree through the :class:`~conveyor.ports.Sandbox` the run uses, with the gate's own timeout (the
sandbox kills the whole process group) and the sandbox's scrubbed environment. The captured output of every
gate goes, in full, to ``<log_dir>/<gate>-attempt-<n>.log`` (an atomic write; the run store's
``automations/runs/<run-id>/logs/`` is gitignored), and the :class:`~conveyor.domain.qa.QAReport` keeps its tail
and the log's sha256. A gate that cannot start (a missing executable) is a failed gate with the reason, never
an exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.adapters.atomic import write_text
from conveyor.domain.build_spec import GateCommand
from conveyor.domain.command import CommandResult
from conveyor.domain.errors import ConveyorError
from conveyor.domain.qa import (
    DEFAULT_TAIL_CHARS,
    NO_GATES_NOTE,
    GateOutcome,
    QAReport,
    log_file_name,
    log_file_stems,
)
from conveyor.ports import Sandbox

DEFAULT_OUTPUT_CAP = 200_000


def _error_message(gate: GateCommand, result: CommandResult) -> str:
    """The sandbox's reason, with what to check when the program is not there."""
    reason = result.error or "the gate could not run"
    program = gate.argv[0]
    if "no such" in reason.lower():
        where = "relative to the worktree" if "/" in program else "on the PATH the loop runs with"
        reason += f" (is {program!r} installed and {where}?)"
    return reason


def _log_text(gate: GateCommand, result: CommandResult) -> str:
    """What the gate's log file holds: the captured output, preceded by the reason when it could not run."""
    if result.error is None:
        return result.output
    header = f"[conveyor] gate {gate.name!r} could not run: {result.error}\n"
    return header + result.output


def run_quality_gates(
    worktree: Path,
    gates: Sequence[GateCommand],
    *,
    sandbox: Sandbox,
    log_dir: Path,
    attempt: int,
    stop_on_failure: bool = False,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    tail_chars: int = DEFAULT_TAIL_CHARS,
    env: Mapping[str, str] | None = None,
) -> QAReport:
    """Run ``gates`` in order in ``worktree``; with ``stop_on_failure`` the gates after a failure are skipped.

    ``output_cap`` bounds the output captured per gate (its end is kept, with a marker, when it is longer);
    ``tail_chars`` bounds the tail the report keeps; ``env`` is the environment before the sandbox scrubs it
    (default: this process's). No gates configured → a passing report whose ``note`` says so.
    """
    if attempt < 1:
        raise ValueError(f"QA attempt numbers start at 1, not {attempt}")
    if not worktree.is_dir():
        raise ConveyorError(f"cannot run the QA gates: the worktree {worktree} is not a directory")
    if not gates:
        return QAReport(attempt=attempt, sandbox=sandbox.name, note=NO_GATES_NOTE)
    outcomes: list[GateOutcome] = []
    skipped: list[str] = []
    stems = log_file_stems([gate.name for gate in gates])
    for gate, stem in zip(gates, stems, strict=True):
        if stop_on_failure and outcomes and not outcomes[-1].passed:
            skipped.append(gate.name)
            continue
        result = sandbox.run(gate.argv, cwd=worktree, timeout_s=gate.timeout_s, env=env, output_cap=output_cap)
        if result.error is not None:
            result = result.model_copy(update={"error": _error_message(gate, result)})
        text = _log_text(gate, result)
        path = log_dir / log_file_name(stem, attempt)
        write_text(path, text)
        outcomes.append(
            GateOutcome.from_command(
                gate.name,
                result,
                timeout_s=gate.timeout_s,
                log_path=str(path),
                log_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                log_text=text,
                tail_chars=tail_chars,
            )
        )
    return QAReport(attempt=attempt, gates=tuple(outcomes), skipped=tuple(skipped), sandbox=sandbox.name)
