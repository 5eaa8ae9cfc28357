"""The ``pytest`` scanner: the failing tests of a junit xml report, one finding each (rule failed or error).

The report is the xunit1 family, which carries each test's file and line. A parametrized test is one finding
(its symbol drops the parameters): the ticket is about the test function, whichever cases fail.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # the report is pytest's own, in our temp dir; expat refuses entity bombs
from pathlib import Path

from conveyor.adapters.scanners.base import Outcome, ToolScanner
from conveyor.adapters.scanners.runner import ToolRun, relative, tool_command, unreadable
from conveyor.domain.scan import MODULE_SYMBOL, ScanFinding
from conveyor.domain.ticket import Severity

NO_TESTS = 5  # pytest's exit code when it collected nothing
PYTEST_OPTIONS = ("-p", "no:cacheprovider", "--continue-on-collection-errors", "-q")


def pytest_environment(tmp: Path) -> dict[str, str]:
    """What keeps a test run's own data out of the checkout (pytest's cache is off through PYTEST_OPTIONS)."""
    return {"HYPOTHESIS_STORAGE_DIRECTORY": str(tmp / "hypothesis")}


class PytestScanner(ToolScanner):
    name = "pytest"

    def _scan(self, root: Path, tmp: Path) -> Outcome:
        report = tmp / "junit.xml"
        argv = [
            *tool_command(self.spec, "pytest"),
            *PYTEST_OPTIONS,
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
        ]
        run = self.run(argv, root, pytest_environment(tmp))
        if run.returncode == NO_TESTS:
            return Outcome(run.argv, [], "no tests collected")
        return Outcome(run.argv, failing_tests(root, run, report))


def failing_tests(root: Path, run: ToolRun, report: Path) -> list[ScanFinding]:
    """The failures and errors of the junit ``report`` that ``run`` wrote."""
    # 0 passed, 1 some failed, 2 interrupted (collection errors): others are usage or internal errors.
    if run.returncode not in (0, 1, 2) or not report.is_file():
        raise unreadable("pytest", run)
    try:
        tree = ET.parse(report)  # noqa: S314
    except ET.ParseError:
        raise unreadable("pytest", run, "its junit xml report could not be parsed") from None
    findings: list[ScanFinding] = []
    for case in tree.iter("testcase"):
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        if problem is None:
            continue
        file = relative(root, case.get("file") or _file_of(case.get("classname") or case.get("name") or ""))
        line = case.get("line")
        findings.append(
            ScanFinding(
                scanner="pytest",
                rule="failed" if problem.tag == "failure" else "error",
                file=file,
                line=int(line) + 1 if line and line.isdigit() else None,  # junit lines count from 0
                symbol=_symbol(file, case.get("classname") or "", case.get("name") or ""),
                message=f"{case.get('name')}: {(problem.get('message') or problem.tag).strip()[:300]}",
                severity=Severity.HIGH,
            )
        )
    return findings


def _symbol(file: str, classname: str, name: str) -> str:
    """``Class.test`` from the junit names: the classname is ``package.module[.Class]``; a collection error's
    classname is empty and its name the module."""
    if not classname:
        return MODULE_SYMBOL
    parts = classname.split(".")
    stem = Path(file).stem
    if stem in parts:
        classes = parts[len(parts) - parts[::-1].index(stem) :]
    else:  # no module to anchor on: take the trailing CamelCase names as the classes
        classes = []
        while len(classes) < len(parts) and parts[-1 - len(classes)][:1].isupper():
            classes.insert(0, parts[-1 - len(classes)])
    return ".".join([*classes, name.split("[", 1)[0]])


def _file_of(dotted: str) -> str:
    return dotted.replace(".", "/") + ".py"
