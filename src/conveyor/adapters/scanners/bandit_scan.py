"""The ``bandit`` scanner: ``bandit -r <paths> -f json``, one finding per issue, its severity bandit's own.

B101 (assert) in test files is dropped: asserts are how pytest tests are written, not a security issue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.adapters.scanners.base import SKIPPED_DIRS, Outcome, ToolScanner
from conveyor.adapters.scanners.runner import (
    ToolRun,
    is_test_file,
    json_report,
    relative,
    tool_command,
    unreadable,
)
from conveyor.adapters.scanners.symbols import enclosing_symbol
from conveyor.domain.scan import ScanFinding
from conveyor.domain.ticket import Severity

_SEVERITY = {"HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}


class BanditScanner(ToolScanner):
    name = "bandit"

    def _scan(self, root: Path, tmp: Path) -> Outcome:
        report = tmp / "bandit.json"
        # bandit excludes a file when one of these strings occurs in its path.
        excluded = ",".join(f"/{name}/" for name in SKIPPED_DIRS)
        argv = [*tool_command(self.spec, "bandit"), "-r", *self.spec.paths, "-f", "json", "-q", "-o", str(report)]
        run = self.run([*argv, "-x", excluded], root)
        findings: list[ScanFinding] = []
        for issue in _issues(run, report):
            file = relative(root, str(issue["filename"]))
            rule = str(issue.get("test_id") or "bandit")
            if rule == "B101" and is_test_file(file):
                continue
            line = issue.get("line_number")
            line = line if isinstance(line, int) and line >= 1 else None
            findings.append(
                ScanFinding(
                    scanner=self.name,
                    rule=rule,
                    file=file,
                    line=line,
                    symbol=enclosing_symbol(root / file, line),
                    message=str(issue.get("issue_text") or ""),
                    severity=_SEVERITY.get(str(issue.get("issue_severity")).upper(), Severity.LOW),
                )
            )
        return Outcome(run.argv, findings)


def _issues(run: ToolRun, report: Path) -> list[dict[str, Any]]:
    # Exit 0 is clean and 1 means issues; anything else (a bad option, a crash) left no trustworthy report.
    if run.returncode not in (0, 1):
        raise unreadable("bandit", run)
    data = json_report("bandit", run, report)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) and "filename" in r for r in results):
        raise unreadable("bandit", run, "its JSON report has no results list")
    return results
