"""The ``ruff`` scanner: ``ruff check --output-format json``, one finding per violation; safe fixes are fixable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conveyor.adapters.scanners.base import Outcome, ToolScanner
from conveyor.adapters.scanners.runner import ToolRun, relative, tool_command, unreadable
from conveyor.adapters.scanners.symbols import enclosing_symbol
from conveyor.domain.scan import ScanFinding
from conveyor.domain.ticket import Severity


class RuffScanner(ToolScanner):
    name = "ruff"

    def _scan(self, root: Path, tmp: Path) -> Outcome:
        argv = [
            *tool_command(self.spec, "ruff"),
            "check",
            "--output-format",
            "json",
            "--no-cache",  # the cache would land in the checkout (.ruff_cache)
            "--exit-zero",
            *self.spec.paths,
        ]
        run = self.run(argv, root)
        return Outcome(run.argv, [self._finding(root, item) for item in _violations(run)])

    def _finding(self, root: Path, item: dict[str, Any]) -> ScanFinding:
        file = relative(root, str(item["filename"]))
        location = item.get("location") or {}
        line = location.get("row") if isinstance(location.get("row"), int) and location["row"] >= 1 else None
        fix = item.get("fix") or {}
        return ScanFinding(
            scanner=self.name,
            rule=str(item.get("code") or item.get("name") or "invalid-syntax"),  # syntax errors have no code
            file=file,
            line=line,
            symbol=enclosing_symbol(root / file, line),
            message=str(item.get("message") or ""),
            severity=Severity.LOW,
            fixable=fix.get("applicability") == "safe",
        )


def _violations(run: ToolRun) -> list[dict[str, Any]]:
    try:
        data = json.loads(run.stdout)
    except ValueError:
        raise unreadable("ruff", run) from None
    if run.returncode != 0 or not isinstance(data, list):
        raise unreadable("ruff", run)
    if not all(isinstance(item, dict) and "filename" in item for item in data):
        raise unreadable("ruff", run, "a violation without a file name")
    return data
