"""The ``mypy`` scanner: one finding per error, from ``-O json`` (mypy 1.11+) or, on an older mypy, the text lines
``file:line: error: message  [code]``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conveyor.adapters.scanners.base import Outcome, ToolScanner
from conveyor.adapters.scanners.runner import ToolRun, relative, tool_command, unreadable
from conveyor.adapters.scanners.symbols import enclosing_symbol
from conveyor.domain.scan import ScanFinding
from conveyor.domain.ticket import Severity

_TEXT = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>-?\d+):(?:\d+:)? error: (?P<message>.*?)(?:  \[(?P<code>[\w-]+)\])?$", re.MULTILINE
)
_Error = tuple[str, int | None, str, str]  # file, line, code, message


class MypyScanner(ToolScanner):
    name = "mypy"

    def _scan(self, root: Path, tmp: Path) -> Outcome:
        base = [
            *tool_command(self.spec, "mypy"),
            "--cache-dir",
            str(tmp / "mypy-cache"),  # not .mypy_cache in the checkout
            "--no-error-summary",
            "--no-color-output",
            "--no-pretty",
        ]
        run = self.run([*base, "-O", "json", *self.spec.paths], root)
        if run.returncode == 2 and "usage:" in run.stderr and "-O" in run.stderr:
            run = self.run([*base, "--show-error-codes", *self.spec.paths], root)  # no JSON output before 1.11
            errors = _text_errors(run)
        else:
            errors = _json_errors(run)
        findings = [
            ScanFinding(
                scanner=self.name,
                rule=code,
                file=relative(root, file),
                line=line,
                symbol=enclosing_symbol(root / relative(root, file), line),
                message=message,
                severity=Severity.MEDIUM,
            )
            for file, line, code, message in errors
        ]
        return Outcome(run.argv, findings)


def _checked(run: ToolRun, errors: list[_Error]) -> list[_Error]:
    # Exit 1 means errors were found and exit 2 a blocking one: either way some must have been read.
    if run.returncode == 0 or (run.returncode in (1, 2) and errors):
        return errors
    raise unreadable("mypy", run)


def _json_errors(run: ToolRun) -> list[_Error]:
    errors: list[_Error] = []
    for raw in run.stdout.splitlines():
        if not raw.strip():
            continue
        try:
            item: Any = json.loads(raw)
        except ValueError:
            raise unreadable("mypy", run) from None
        if not isinstance(item, dict) or "file" not in item:
            raise unreadable("mypy", run)
        if item.get("severity") == "error":
            line = item.get("line")
            errors.append(
                (
                    str(item["file"]),
                    line if isinstance(line, int) and line >= 1 else None,
                    str(item.get("code") or "error"),
                    str(item.get("message") or ""),
                )
            )
    return _checked(run, errors)


def _text_errors(run: ToolRun) -> list[_Error]:
    errors: list[_Error] = [
        (m["file"], int(m["line"]) if int(m["line"]) >= 1 else None, m["code"] or "error", m["message"])
        for m in _TEXT.finditer(run.stdout)
    ]
    return _checked(run, errors)
