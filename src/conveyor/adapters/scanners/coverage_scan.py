"""The ``coverage`` scanner: ``coverage run -m pytest`` then ``coverage json``; a source file (not a test) whose
line coverage is under the threshold is a finding. ``--source`` makes files no test imports count, at 0 %."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.adapters.scanners.base import SKIPPED_DIRS, Outcome, ToolScanner
from conveyor.adapters.scanners.pytest_scan import NO_TESTS, PYTEST_OPTIONS, pytest_environment
from conveyor.adapters.scanners.runner import (
    ToolRun,
    is_test_file,
    json_report,
    relative,
    tool_command,
    unreadable,
)
from conveyor.domain.scan import MODULE_SYMBOL, ScanFinding
from conveyor.domain.ticket import Severity


class CoverageScanner(ToolScanner):
    name = "coverage"

    def _scan(self, root: Path, tmp: Path) -> Outcome:
        tool = tool_command(self.spec, "coverage")
        env = {**pytest_environment(tmp), "COVERAGE_FILE": str(tmp / ".coverage")}  # not .coverage in the checkout
        omit = ",".join(f"*/{name}/*" for name in SKIPPED_DIRS)
        source = ",".join(self.spec.paths)
        run = self.run(
            [*tool, "run", f"--source={source}", f"--omit={omit}", "-m", "pytest", *PYTEST_OPTIONS], root, env
        )
        if run.returncode == NO_TESTS:
            return Outcome(run.argv, [], "no tests collected")
        report = tmp / "coverage.json"
        export = self.run([*tool, "json", "-o", str(report)], root, env)
        files = _files(run, export, report)
        threshold = self.spec.coverage_threshold
        findings = []
        for raw, data in sorted(files.items()):
            file = relative(root, raw)
            percent = float((data.get("summary") or {}).get("percent_covered", 100.0))
            if is_test_file(file) or percent >= threshold:
                continue
            findings.append(
                ScanFinding(
                    scanner=self.name,
                    rule="under-threshold",
                    file=file,
                    symbol=MODULE_SYMBOL,
                    message=f"line coverage {percent:.1f}% is under the {threshold:g}% threshold",
                    severity=Severity.LOW,
                )
            )
        return Outcome(run.argv, findings)


def _files(run: ToolRun, export: ToolRun, report: Path) -> dict[str, dict[str, Any]]:
    """The per-file section of the json report; the error quotes both runs when there is none."""
    both = ToolRun(
        run.argv, run.returncode or export.returncode, run.stdout + export.stdout, run.stderr + export.stderr
    )
    if run.returncode not in (0, 1, 2):
        raise unreadable("coverage", both)
    data = json_report("coverage", both, report)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise unreadable("coverage", both, "its json report has no files")
    return files
