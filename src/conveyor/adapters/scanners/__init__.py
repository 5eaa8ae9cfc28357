"""The improvement loop's deterministic scanners and mechanical fixers (issue 7 §1).

Each scanner runs one tool (ruff, ruff format, mypy, bandit, pytest, coverage) in a checkout, parses its
machine-readable output into :class:`~conveyor.domain.scan.ScanFinding` values and never changes the tree.
:func:`run_scanners` runs those a build-spec names; :func:`make_fixers` and :func:`fixer_for` give the fixers.
"""

from __future__ import annotations

from conveyor.adapters.scanners.fixers import FormatFixer, RuffFixer, fixer_for, make_fixers
from conveyor.adapters.scanners.registry import SCANNERS, make_scanners, run_scanners
from conveyor.adapters.scanners.runner import ToolError
from conveyor.adapters.scanners.symbols import enclosing_symbol

__all__ = [
    "SCANNERS",
    "FormatFixer",
    "RuffFixer",
    "ToolError",
    "enclosing_symbol",
    "fixer_for",
    "make_fixers",
    "make_scanners",
    "run_scanners",
]
