"""The scanners a build-spec asks for, by name, and one call that runs them all."""

from __future__ import annotations

from pathlib import Path

from conveyor.adapters.scanners.bandit_scan import BanditScanner
from conveyor.adapters.scanners.base import ToolScanner
from conveyor.adapters.scanners.coverage_scan import CoverageScanner
from conveyor.adapters.scanners.mypy_scan import MypyScanner
from conveyor.adapters.scanners.pytest_scan import PytestScanner
from conveyor.adapters.scanners.ruff_check import RuffScanner
from conveyor.adapters.scanners.ruff_format import RuffFormatScanner
from conveyor.domain.build_spec import ImprovementSpec
from conveyor.domain.scan import Scanner, ScanResult

SCANNERS: dict[str, type[ToolScanner]] = {
    cls.name: cls
    for cls in (RuffScanner, RuffFormatScanner, MypyScanner, BanditScanner, PytestScanner, CoverageScanner)
}


def make_scanners(spec: ImprovementSpec) -> list[Scanner]:
    """One scanner per name of ``spec.scanners``, in that order (the spec validated the names)."""
    return [SCANNERS[name](spec) for name in spec.scanners]


def run_scanners(root: Path, spec: ImprovementSpec) -> list[ScanResult]:
    """Every scanner of ``spec`` on the checkout ``root``, one after the other; none raises."""
    return [scanner.scan(root) for scanner in make_scanners(spec)]
