"""The improvement loop's scanners, run with the real tools on a small git repository with known problems."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from conveyor.adapters.scanners import make_scanners, run_scanners
from conveyor.domain.build_spec import ImprovementSpec
from conveyor.domain.scan import MODULE_SYMBOL, ScanFinding, ScanResult
from conveyor.domain.ticket import Severity
from tests.adapters.scanner_repo import UNCOVERED, copy_repo, make_repo, python_command, spec, tree_status

ALL = ("ruff", "ruff-format", "mypy", "bandit", "pytest", "coverage")


def keys(result: ScanResult) -> set[tuple[str, str, str]]:
    return {(f.rule, f.file, f.symbol) for f in result.findings}


@pytest.fixture(scope="module")
def problem_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("scanners") / "repo")


@pytest.fixture(scope="module")
def results(problem_repo: Path) -> dict[str, ScanResult]:
    """Every scanner once on the problem repository (the expensive part, shared by the module's tests)."""
    return {r.scanner: r for r in run_scanners(problem_repo, ImprovementSpec())}


@pytest.mark.slow
def test_every_scanner_runs_and_leaves_the_tree_clean(problem_repo: Path, results: dict[str, ScanResult]) -> None:
    assert list(results) == list(ALL)
    assert all(r.available for r in results.values()), {r.scanner: r.note for r in results.values()}
    assert tree_status(problem_repo) == ""
    assert all(r.command[:2] == (sys.executable, "-m") for r in results.values())


@pytest.mark.slow
def test_ruff_reports_rule_codes_with_their_safe_fixes(results: dict[str, ScanResult]) -> None:
    ruff = results["ruff"]
    assert keys(ruff) == {("F401", "pkg/imports.py", MODULE_SYMBOL), ("I001", "pkg/imports.py", MODULE_SYMBOL)}
    assert all(f.fixable and f.severity is Severity.LOW and f.line == 1 for f in ruff.findings)
    assert "sys" in next(f.message for f in ruff.findings if f.rule == "F401")


@pytest.mark.slow
def test_ruff_format_reports_each_file_it_would_reformat(results: dict[str, ScanResult]) -> None:
    assert keys(results["ruff-format"]) == {("format", "pkg/ugly.py", MODULE_SYMBOL)}
    assert all(f.fixable for f in results["ruff-format"].findings)


@pytest.mark.slow
def test_mypy_reports_error_codes_in_their_enclosing_symbol(results: dict[str, ScanResult]) -> None:
    mypy = results["mypy"]
    assert keys(mypy) == {
        ("return-value", "pkg/typed.py", "Greeter.greet"),
        ("import-not-found", "tests/test_broken.py", MODULE_SYMBOL),
    }
    typed = next(f for f in mypy.findings if f.rule == "return-value")
    assert (typed.line, typed.severity, typed.fixable) == (3, Severity.MEDIUM, False)


@pytest.mark.slow
def test_bandit_reports_test_ids_with_bandit_severity_and_ignores_asserts_in_tests(
    results: dict[str, ScanResult],
) -> None:
    bandit = results["bandit"]
    assert keys(bandit) == {("B404", "pkg/shell.py", MODULE_SYMBOL), ("B602", "pkg/shell.py", "run")}
    severities = {f.rule: f.severity for f in bandit.findings}
    assert severities == {"B404": Severity.LOW, "B602": Severity.HIGH}


@pytest.mark.slow
def test_pytest_reports_failures_and_collection_errors(results: dict[str, ScanResult]) -> None:
    found = results["pytest"]
    assert keys(found) == {
        ("failed", "tests/test_pkg.py", "TestMath.test_wrong"),
        ("error", "tests/test_broken.py", MODULE_SYMBOL),
    }
    failed = next(f for f in found.findings if f.rule == "failed")
    assert (failed.line, failed.severity) == (9, Severity.HIGH)
    assert failed.message.startswith("test_wrong: assert")


@pytest.mark.slow
def test_coverage_reports_source_files_under_the_threshold(results: dict[str, ScanResult]) -> None:
    coverage = results["coverage"]
    assert {f.file for f in coverage.findings} == UNCOVERED  # not covered.py (100 %), not the test files
    assert {(f.rule, f.symbol, f.line) for f in coverage.findings} == {("under-threshold", MODULE_SYMBOL, None)}
    assert "0.0% is under the 80% threshold" in coverage.findings[0].message


def test_fingerprints_survive_lines_moving(problem_repo: Path, tmp_path: Path) -> None:
    repo = copy_repo(problem_repo, tmp_path / "repo")
    fast = spec("ruff", "bandit")
    before = [f for r in run_scanners(repo, fast) for f in r.findings]
    for name in ("pkg/imports.py", "pkg/shell.py"):
        path = repo / name
        path.write_text("# one\n# two\n# three\n" + path.read_text())
    after = [f for r in run_scanners(repo, fast) for f in r.findings]
    assert sorted(f.fingerprint for f in after) == sorted(f.fingerprint for f in before)
    assert "bandit:B602:pkg/shell.py:run" in {f.fingerprint for f in after}
    lines = {f.fingerprint: f.line for f in before}
    assert all(f.line == (lines[f.fingerprint] or 0) + 3 for f in after)


def test_make_scanners_follows_the_spec_order() -> None:
    assert [s.name for s in make_scanners(spec("mypy", "ruff", "coverage"))] == ["mypy", "ruff", "coverage"]
    assert [s.name for s in make_scanners(ImprovementSpec())] == list(ALL)


@pytest.mark.parametrize("name", ALL)
def test_a_missing_tool_module_is_unavailable_with_a_note(name: str, tmp_path: Path) -> None:
    missing = spec(name, commands={name: [sys.executable, "-m", "conveyor_no_such_tool"]})
    [result] = run_scanners(tmp_path, missing)
    assert not result.available
    assert result.note.startswith(f"{name} is not installed")
    assert "No module named conveyor_no_such_tool" in result.note
    assert result.findings == ()


def test_a_missing_executable_is_unavailable_with_a_note(tmp_path: Path) -> None:
    [result] = run_scanners(tmp_path, spec("bandit", commands={"bandit": ["/nonexistent/bandit"]}))
    assert not result.available
    assert result.note.startswith("bandit is not installed: cannot start '/nonexistent/bandit'")
    assert result.command[0] == "/nonexistent/bandit"


@pytest.mark.parametrize("name", ALL)
def test_unparsable_output_is_unavailable_with_its_head_quoted(name: str, tmp_path: Path) -> None:
    garbage = spec(name, commands={name: python_command("print('<html>garbage</html>')")})
    [result] = run_scanners(tmp_path, garbage)
    assert not result.available
    assert result.note.startswith(f"{name}: ")
    assert "<html>garbage</html>" in result.note


@pytest.mark.parametrize(
    "output",
    ['[{"code": "F401"}]', '{"not": "a list"}', "[1]"],
)
def test_ruff_json_of_the_wrong_shape_is_unavailable(output: str, tmp_path: Path) -> None:
    [result] = run_scanners(tmp_path, spec("ruff", commands={"ruff": python_command(f"print({output!r})")}))
    assert not result.available
    assert result.note.startswith("ruff: ")


def test_a_long_output_is_quoted_by_its_head_only(tmp_path: Path) -> None:
    noisy = spec("mypy", commands={"mypy": python_command("print('x' * 5000); raise SystemExit(1)")})
    [result] = run_scanners(tmp_path, noisy)
    assert not result.available
    assert len(result.note) < 600
    assert result.note.endswith(" ...")


def test_a_tool_that_hangs_is_killed_with_its_children(tmp_path: Path) -> None:
    # The child holds the output pipe: only killing the whole process group ends the wait.
    hang = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    slow = spec("mypy", commands={"mypy": python_command(hang)}, timeout_s=1)
    started = time.monotonic()
    [result] = run_scanners(tmp_path, slow)
    assert time.monotonic() - started < 10
    assert not result.available
    assert result.note == "mypy timed out after 1 s"


def test_a_root_that_is_not_a_directory_is_unavailable(tmp_path: Path) -> None:
    [result] = run_scanners(tmp_path / "missing", spec("ruff"))
    assert not result.available
    assert "is not a directory" in result.note


def test_mypy_without_json_output_is_read_from_its_text_lines(tmp_path: Path) -> None:
    old_mypy = tmp_path / "old_mypy.py"
    old_mypy.write_text(
        "import sys\n"
        "if '-O' in sys.argv:\n"
        "    sys.stderr.write('usage: mypy [-h]\\nmypy: error: unrecognized arguments: -O json\\n')\n"
        "    raise SystemExit(2)\n"
        "print('pkg/typed.py:3: error: Incompatible return value type  [return-value]')\n"
        "print('pkg/typed.py:3: note: a note is not a finding')\n"
        "print('pkg/other.py:1:5: error: Name \"x\" is not defined  [name-defined]')\n"
        "raise SystemExit(1)\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/typed.py").write_text("class Greeter:\n    def greet(self) -> int:\n        return 'hi'\n")
    [result] = run_scanners(tmp_path, spec("mypy", commands={"mypy": [sys.executable, str(old_mypy)]}))
    assert result.available, result.note
    assert keys(result) == {
        ("return-value", "pkg/typed.py", "Greeter.greet"),
        ("name-defined", "pkg/other.py", MODULE_SYMBOL),
    }
    assert "-O" not in result.command


@pytest.mark.slow
def test_pytest_without_tests_is_available_with_no_findings(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": ""})
    [result] = run_scanners(repo, spec("pytest"))
    assert (result.available, result.findings, result.note) == (True, (), "no tests collected")
    assert tree_status(repo) == ""


def test_a_finding_fingerprint_leaves_the_line_out() -> None:
    one = ScanFinding(scanner="ruff", rule="F401", file="a.py", line=1, message="m")
    assert one.fingerprint == one.model_copy(update={"line": 40}).fingerprint == "ruff:F401:a.py:<module>"
