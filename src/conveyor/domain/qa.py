"""The QA gates' results (issue 5 §2): one :class:`GateOutcome` per build-spec gate command, and the
:class:`QAReport` of one QA attempt of a ticket.

The loop runs the gates itself in the ticket's worktree (ARCHITECTURE.md §8: an agent's claim that the tests
pass is never taken for it); :func:`conveyor.adapters.quality_gates.run_quality_gates` produces the report.
Everything here is a pure value: the report says whether QA passed, which gate failed first, the feedback the
implementer gets for its next round (each failing gate with the tail of its log) and the logs the QA triage
role reads. The full output of every gate is in its log file; the report keeps only a tail.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.domain.command import CommandResult

DEFAULT_TAIL_CHARS = 4_000
NO_GATES_NOTE = "no quality gates configured (build-spec quality_gates is empty): nothing was run"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def tail_text(text: str, limit: int) -> str:
    """The end of ``text`` in at most ``limit`` characters, starting at a line when it can, with a marker
    saying how much came before."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    marker = f"[... {len(text)} characters in all; the full output is in the log; its end follows ...]\n"
    keep = limit - len(marker)
    if keep <= 0:
        return text[-limit:]
    kept = text[-keep:]
    newline = kept.find("\n")
    if 0 <= newline < len(kept) - 1 and newline < keep // 2:  # start at a whole line unless that loses too much
        kept = kept[newline + 1 :]
    return marker + kept


def log_file_stems(names: Sequence[str]) -> list[str]:
    """A safe, distinct file stem for each gate name (``unit tests`` → ``unit-tests``; a repeat gets ``-2``)."""
    stems: list[str] = []
    for name in names:
        base = _UNSAFE_FILE_CHARS.sub("-", name).strip(".-") or "gate"
        stem, number = base, 1
        while stem in stems:
            number += 1
            stem = f"{base}-{number}"
        stems.append(stem)
    return stems


def log_file_name(stem: str, attempt: int) -> str:
    """``<gate>-attempt-<n>.log``: one file per gate and QA attempt, so a later attempt never hides an earlier."""
    return f"{stem}-attempt-{attempt}.log"


def _fence(text: str) -> str:
    """A markdown code fence longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GateOutcome(_Value):
    """One gate command's result in one QA attempt."""

    name: str
    argv: tuple[str, ...]
    exit_code: int | None = Field(description="None when the command could not start or was killed on timeout")
    timed_out: bool = False
    timeout_s: float | None = Field(None, gt=0)
    duration_s: float = Field(0.0, ge=0)
    passed: bool
    error: str | None = Field(None, description="why the gate could not run (e.g. a missing executable)")
    log_path: str | None = Field(None, description="the file holding the gate's full captured output")
    log_sha256: str | None = Field(None, description="sha256 of the log file's bytes")
    output_tail: str = Field("", description="the end of the output, capped; the log holds all of it")
    truncated: bool = Field(False, description="the output went past the capture cap; the log holds its end")
    sandbox: str = "none"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.passed and (self.exit_code != 0 or self.timed_out or self.error is not None):
            raise ValueError(f"gate {self.name!r} cannot pass with exit code {self.exit_code}, a timeout or an error")
        return self

    @classmethod
    def from_command(
        cls,
        name: str,
        result: CommandResult,
        *,
        timeout_s: float | None = None,
        log_path: str | None = None,
        log_sha256: str | None = None,
        log_text: str | None = None,
        tail_chars: int = DEFAULT_TAIL_CHARS,
    ) -> GateOutcome:
        """The outcome of gate ``name`` from the command's result; the tail is taken from ``log_text`` (what was
        written to the log) when given, else from the command's output."""
        text = result.output if log_text is None else log_text
        return cls(
            name=name,
            argv=result.argv,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            timeout_s=timeout_s,
            duration_s=result.duration_s,
            passed=result.ok,
            error=result.error,
            log_path=log_path,
            log_sha256=log_sha256,
            output_tail=tail_text(text, tail_chars),
            truncated=result.truncated,
            sandbox=result.sandbox,
        )

    @property
    def status(self) -> str:
        """``passed``, ``exit code 1``, ``timed out after 600 s`` or ``could not run: <why>``."""
        if self.passed:
            return "passed"
        if self.error is not None:
            return f"could not run: {self.error}"
        if self.timed_out:
            return f"timed out after {self.timeout_s:g} s" if self.timeout_s else "timed out"
        return f"exit code {self.exit_code}"

    @property
    def command(self) -> str:
        """The argv for display, quoted as a shell would need it (it was never run through one)."""
        return shlex.join(self.argv)

    def summary_line(self) -> str:
        return f"{self.name}: {self.status} ({self.duration_s:.1f} s)"


class QAReport(_Value):
    """One QA attempt: the gates run in order, and those left unrun after a failure (``stop_on_failure``)."""

    attempt: int = Field(1, ge=1)
    gates: tuple[GateOutcome, ...] = ()
    skipped: tuple[str, ...] = Field((), description="gates not run because an earlier one failed")
    sandbox: str = "none"
    note: str = Field("", description="what a reader should know, e.g. that no gates are configured")

    @property
    def passed(self) -> bool:
        """Every gate that was run passed and none was skipped (no gates configured: passed, and ``note`` says so)."""
        return all(gate.passed for gate in self.gates) and not self.skipped

    @property
    def failures(self) -> tuple[GateOutcome, ...]:
        return tuple(gate for gate in self.gates if not gate.passed)

    @property
    def first_failure(self) -> GateOutcome | None:
        return next((gate for gate in self.gates if not gate.passed), None)

    @property
    def duration_s(self) -> float:
        return round(sum(gate.duration_s for gate in self.gates), 3)

    def summary(self) -> str:
        """One line: ``QA attempt 2: FAILED: 1 of 3 gates failed (tests: exit code 1)``."""
        head = f"QA attempt {self.attempt}"
        if not self.gates and not self.skipped:
            return f"{head}: passed: {self.note or NO_GATES_NOTE}"
        total = len(self.gates) + len(self.skipped)
        if self.passed:
            return f"{head}: passed: all {total} gate{'s' if total != 1 else ''} passed"
        failed = "; ".join(f"{gate.name}: {gate.status}" for gate in self.failures)
        line = f"{head}: FAILED: {len(self.failures)} of {total} gates failed ({failed})"
        if self.skipped:
            line += f"; not run after the failure: {', '.join(self.skipped)}"
        return line

    def feedback(self, *, tail_chars: int | None = None) -> str:
        """What the implementer reads in its next round: each failing gate, its command, its log file and the
        tail of its output (``tail_chars`` shortens the tails further)."""
        if self.passed:
            return self.summary() + "\n"
        parts = [
            self.summary(),
            "",
            "The loop ran the build-spec's quality gates in your worktree. Fix the change so that every gate "
            "passes; the gates are run again after your next round.",
        ]
        for gate in self.failures:
            tail = gate.output_tail if tail_chars is None else tail_text(gate.output_tail, tail_chars)
            parts += ["", f"## Gate `{gate.name}` failed: {gate.status}", "", f"Command: {gate.command}"]
            if gate.log_path:
                parts.append(f"Full log: {gate.log_path}")
            if tail.strip():
                fence = _fence(tail)
                parts += ["", "End of its output:", "", f"{fence}text", tail.rstrip("\n"), fence]
            else:
                parts += ["", "(the gate printed nothing)"]
        if self.skipped:
            parts += ["", f"Not run because an earlier gate failed: {', '.join(self.skipped)}."]
        return "\n".join(parts) + "\n"

    def logs_for_triage(self, *, include_passed: bool = False) -> dict[str, str]:
        """Gate name → the tail of its output (the failing gates; all of them with ``include_passed``), for the
        QA triage role. A gate that could not run gets its reason; a repeated name gets `` #2``."""
        logs: dict[str, str] = {}
        for gate in self.gates:
            if gate.passed and not include_passed:
                continue
            key, number = gate.name, 1
            while key in logs:
                number += 1
                key = f"{gate.name} #{number}"
            text = gate.output_tail
            if gate.error is not None and gate.error not in text:
                text = f"{gate.error}\n{text}" if text else gate.error
            logs[key] = text
        return logs
