"""Mechanical fixers: ``ruff check --fix-only`` for ruff's safe fixes and ``ruff format`` for formatting.

Each touches only the files of the findings it is given and reports the files whose content changed. A tool that
cannot run raises :class:`~conveyor.adapters.scanners.runner.ToolError`: a fix that silently did nothing would
look like a finding ruff could not fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from conveyor.adapters.scanners.runner import run_tool, tool_command, unreadable
from conveyor.domain.build_spec import ImprovementSpec
from conveyor.domain.scan import Fixer, ScanFinding


class _RuffFixer:
    name = ""
    scanner = ""

    def __init__(self, spec: ImprovementSpec) -> None:
        self.spec = spec

    def can_fix(self, finding: ScanFinding) -> bool:
        return finding.scanner == self.scanner and finding.fixable

    def fix(self, worktree: Path, findings: Iterable[ScanFinding]) -> list[str]:
        chosen = [f for f in findings if self.can_fix(f) and (worktree / f.file).is_file()]
        files = sorted({f.file for f in chosen})
        if not files:
            return []
        before = {file: _digest(worktree / file) for file in files}
        run = run_tool(self._argv(chosen, files), worktree, self.spec.timeout_s, self.name)
        if run.returncode != 0:
            raise unreadable(self.name, run, "the fix failed")
        return [file for file in files if _digest(worktree / file) != before[file]]

    def _argv(self, findings: Sequence[ScanFinding], files: list[str]) -> list[str]:
        raise NotImplementedError


class RuffFixer(_RuffFixer):
    """Applies ruff's safe fixes for exactly the rules of the findings."""

    name = "ruff-fix"
    scanner = "ruff"

    def _argv(self, findings: Sequence[ScanFinding], files: list[str]) -> list[str]:
        rules = ",".join(sorted({f.rule for f in findings}))
        return [*tool_command(self.spec, "ruff"), "check", "--fix-only", "--no-cache", "--select", rules, "--", *files]


class FormatFixer(_RuffFixer):
    name = "ruff-format-fix"
    scanner = "ruff-format"

    def _argv(self, findings: Sequence[ScanFinding], files: list[str]) -> list[str]:
        return [*tool_command(self.spec, "ruff-format", "ruff"), "format", "--no-cache", "--", *files]


def make_fixers(spec: ImprovementSpec) -> list[Fixer]:
    return [RuffFixer(spec), FormatFixer(spec)]


def fixer_for(finding: ScanFinding, fixers: Sequence[Fixer] | None = None) -> Fixer | None:
    """The first of ``fixers`` (default: those of a default spec) that can fix ``finding``; None if none can."""
    for fixer in fixers if fixers is not None else make_fixers(ImprovementSpec()):
        if fixer.can_fix(finding):
            return fixer
    return None


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
