"""The mechanical fixers, with the real ruff: they fix what they claim and report the files they changed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conveyor.adapters.scanners import FormatFixer, RuffFixer, ToolError, fixer_for, make_fixers, run_scanners
from conveyor.domain.scan import ScanFinding
from tests.adapters.scanner_repo import make_repo, spec
from tests.conftest import git

RUFF = spec("ruff", "ruff-format")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def findings(repo: Path) -> list[ScanFinding]:
    results = run_scanners(repo, RUFF)
    assert all(r.available for r in results), [r.note for r in results]
    return [f for r in results for f in r.findings]


def test_the_fixers_fix_what_they_claim_and_return_the_changed_files(repo: Path) -> None:
    before = findings(repo)
    fixers = make_fixers(RUFF)
    changed: list[str] = []
    for fixer in fixers:
        changed += fixer.fix(repo, [f for f in before if fixer_for(f, fixers) is fixer])
    assert sorted(changed) == ["pkg/imports.py", "pkg/ugly.py"]
    assert git(repo, "diff", "--name-only").split() == ["pkg/imports.py", "pkg/ugly.py"]
    assert findings(repo) == []
    assert (repo / "pkg/imports.py").read_text().startswith("import os\n\n\ndef separator()")
    assert (repo / "pkg/ugly.py").read_text() == 'TABLE = {"a": 1}\n'


def test_the_ruff_fixer_applies_only_the_rules_of_its_findings(repo: Path) -> None:
    only_i001 = [f for f in findings(repo) if f.rule == "I001"]
    assert RuffFixer(RUFF).fix(repo, only_i001) == ["pkg/imports.py"]
    assert [f.rule for f in findings(repo) if f.scanner == "ruff"] == ["F401"]
    assert (repo / "pkg/imports.py").read_text().startswith("import os\nimport sys\n")
    assert (repo / "pkg/ugly.py").read_text() == "TABLE = {  'a':1 }\n"


def test_a_fixer_given_nothing_it_can_fix_changes_nothing(repo: Path) -> None:
    mypy = ScanFinding(scanner="mypy", rule="return-value", file="pkg/typed.py", message="m")
    unsafe = ScanFinding(scanner="ruff", rule="F841", file="pkg/typed.py", message="m", fixable=False)
    gone = ScanFinding(scanner="ruff-format", rule="format", file="pkg/gone.py", message="m", fixable=True)
    assert RuffFixer(RUFF).fix(repo, [mypy, unsafe]) == []
    assert FormatFixer(RUFF).fix(repo, [gone]) == []
    assert git(repo, "status", "--porcelain") == ""


def test_fixer_for_picks_the_fixer_of_the_scanner() -> None:
    ruff = ScanFinding(scanner="ruff", rule="F401", file="a.py", message="m", fixable=True)
    fmt = ScanFinding(scanner="ruff-format", rule="format", file="a.py", message="m", fixable=True)
    assert isinstance(fixer_for(ruff), RuffFixer)
    assert isinstance(fixer_for(fmt), FormatFixer)
    assert fixer_for(ruff.model_copy(update={"fixable": False})) is None
    assert fixer_for(ScanFinding(scanner="mypy", rule="misc", file="a.py", message="m")) is None


def test_a_fixer_whose_tool_is_missing_raises_a_tool_error(repo: Path) -> None:
    broken = spec("ruff", commands={"ruff": [sys.executable, "-m", "conveyor_no_such_tool"]})
    finding = ScanFinding(scanner="ruff", rule="F401", file="pkg/imports.py", message="m", fixable=True)
    with pytest.raises(ToolError, match="not installed"):
        RuffFixer(broken).fix(repo, [finding])
