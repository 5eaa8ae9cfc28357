"""What every tool scanner shares: a temporary directory for its outputs and the unavailable result on failure."""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.adapters.scanners.runner import ToolError, ToolRun, run_tool
from conveyor.domain.build_spec import ImprovementSpec
from conveyor.domain.scan import ScanFinding, ScanResult

# Directories no scanner should look into: environments, VCS data, Conveyor's own worktrees and caches.
SKIPPED_DIRS = (".venv", "venv", ".git", ".conveyor", ".tox", ".nox", "node_modules", "__pycache__")


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    findings: Iterable[ScanFinding]
    note: str = ""


class ToolScanner(ABC):
    """A :class:`~conveyor.domain.scan.Scanner` that runs one tool; subclasses parse its output."""

    name = ""

    def __init__(self, spec: ImprovementSpec) -> None:
        self.spec = spec

    def scan(self, root: Path) -> ScanResult:
        if not root.is_dir():
            return ScanResult(scanner=self.name, available=False, note=f"{root} is not a directory")
        # Outside the checkout on purpose: the loop needs a clean tree after scanning.
        with tempfile.TemporaryDirectory(prefix=f"conveyor-scan-{self.name}-") as tmp:
            try:
                outcome = self._scan(root.resolve(), Path(tmp))
            except ToolError as exc:
                return ScanResult(scanner=self.name, available=False, note=exc.note, command=exc.argv)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a report shaped unlike the tool's
                note = f"{self.name}: unexpected output ({type(exc).__name__}: {exc})"
                return ScanResult(scanner=self.name, available=False, note=note)
        return ScanResult(scanner=self.name, findings=tuple(outcome.findings), note=outcome.note, command=outcome.argv)

    def run(self, argv: Sequence[str], root: Path, env: Mapping[str, str] | None = None) -> ToolRun:
        return run_tool(argv, root, self.spec.timeout_s, self.name, env)

    @abstractmethod
    def _scan(self, root: Path, tmp: Path) -> Outcome:
        """Run the tool on ``root``, writing only under ``tmp``; raise ToolError when it says nothing usable."""
