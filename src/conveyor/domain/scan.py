"""What the improvement loop's scanners report (issue 7 §1): findings fingerprinted by (rule, file, symbol).

A scanner is an adapter that runs one tool (ruff, mypy, bandit, pytest, coverage) and parses its machine-readable
output into :class:`ScanFinding`. The fingerprint leaves the line out on purpose: an edit above a finding moves
its line, not its identity, so a finding filed once is recognised in every later loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.ticket import Severity

MODULE_SYMBOL = "<module>"  # the symbol of a finding outside any function or class


class ScanFinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scanner: str = Field(description="the scanner that found it: ruff, ruff-format, mypy, bandit, pytest, coverage")
    rule: str = Field(description="the tool's rule or code (F401, arg-type, B602, failed, under-threshold)")
    file: str = Field(description="path relative to the repository, with forward slashes")
    line: int | None = Field(None, ge=1)
    symbol: str = Field(MODULE_SYMBOL, description="qualified name of the enclosing function or class")
    message: str
    severity: Severity = Severity.LOW
    fixable: bool = Field(False, description="a mechanical fixer (ruff --fix, ruff format) can fix it")

    @property
    def fingerprint(self) -> str:
        return f"{self.scanner}:{self.rule}:{self.file}:{self.symbol}"

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class ScanResult(BaseModel):
    """One scanner's run: its findings, or why it could not say (tool missing, output unreadable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scanner: str
    available: bool = True
    findings: tuple[ScanFinding, ...] = ()
    note: str = Field("", description="why the scanner was unavailable or what it could not parse")
    command: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.findings)


class Scanner(Protocol):
    name: str

    def scan(self, root: Path) -> ScanResult:
        """Run the tool on the repository checkout ``root`` (read-only: a scanner never changes the tree)."""
        ...


class Fixer(Protocol):
    name: str

    def can_fix(self, finding: ScanFinding) -> bool: ...

    def fix(self, worktree: Path, findings: Iterable[ScanFinding]) -> list[str]:
        """Fix ``findings`` in ``worktree``; returns the files it changed (relative paths)."""
        ...


def unique(findings: Iterable[ScanFinding]) -> list[ScanFinding]:
    """One finding per fingerprint (the first seen), in a stable order."""
    seen: dict[str, ScanFinding] = {}
    for finding in findings:
        seen.setdefault(finding.fingerprint, finding)
    return sorted(seen.values(), key=lambda f: (f.scanner, f.rule, f.file, f.symbol))


def counts_by_scanner(results: Iterable[ScanResult]) -> dict[str, int | None]:
    """Findings per scanner; None where the scanner was unavailable."""
    return {r.scanner: (r.count if r.available else None) for r in results}
