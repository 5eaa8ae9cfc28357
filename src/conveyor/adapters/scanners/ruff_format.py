"""The ``ruff-format`` scanner: ``ruff format --check``, one fixable finding per file it would reformat.

Read as text because ``--output-format`` on ``format`` is recent: the concise form (``path:l:c: unformatted:``,
asked for through RUFF_OUTPUT_FORMAT, which older ruff ignores) and the older ``Would reformat: path`` both parse.
"""

from __future__ import annotations

import re
from pathlib import Path

from conveyor.adapters.scanners.base import Outcome, ToolScanner
from conveyor.adapters.scanners.runner import relative, tool_command, unreadable
from conveyor.domain.scan import MODULE_SYMBOL, ScanFinding
from conveyor.domain.ticket import Severity

_CONCISE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):\d+: (?P<rule>[\w-]+): ", re.MULTILINE)
_OLD = re.compile(r"^Would reformat: (?P<file>.+)$", re.MULTILINE)
_CLEAN = re.compile(r"files? already formatted|No Python files found")


class RuffFormatScanner(ToolScanner):
    name = "ruff-format"

    def _scan(self, root: Path, tmp: Path) -> Outcome:
        argv = [*tool_command(self.spec, "ruff-format", "ruff"), "format", "--check", "--no-cache", *self.spec.paths]
        run = self.run(argv, root, env={"RUFF_OUTPUT_FORMAT": "concise"})
        output = run.stdout + "\n" + run.stderr
        files: dict[str, int | None] = {}
        unparsable: list[str] = []
        for match in _CONCISE.finditer(output):
            if match["rule"] == "unformatted":
                files.setdefault(relative(root, match["file"]), int(match["line"]))
            else:  # a syntax error: ruff check reports it, this scanner only notes the file
                unparsable.append(relative(root, match["file"]))
        for match in _OLD.finditer(output):
            files.setdefault(relative(root, match["file"].strip()), None)
        understood = {0: bool(_CLEAN.search(output)), 1: bool(files), 2: bool(files or unparsable)}
        if not understood.get(run.returncode, False):
            raise unreadable(self.name, run)
        findings = [
            ScanFinding(
                scanner=self.name,
                rule="format",
                file=file,
                line=line,
                symbol=MODULE_SYMBOL,
                message="file would be reformatted by ruff format",
                severity=Severity.LOW,
                fixable=True,
            )
            for file, line in sorted(files.items())
        ]
        note = f"ruff format could not parse: {', '.join(sorted(set(unparsable)))}" if unparsable else ""
        return Outcome(run.argv, findings, note)
