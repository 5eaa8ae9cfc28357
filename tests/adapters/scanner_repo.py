"""A small git repository with one known problem for each scanner, for the scanner and fixer tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from conveyor.domain.build_spec import ImprovementSpec
from tests.conftest import git

FILES: dict[str, str] = {
    "ruff.toml": '[lint]\nselect = ["F", "I"]\n',
    "pkg/__init__.py": "",
    # For ruff: F401 (sys unused) and I001 (unsorted), both with safe fixes.
    "pkg/imports.py": "import sys\nimport os\n\n\ndef separator() -> str:\n    return os.sep\n",
    # ruff format would reformat this file.
    "pkg/ugly.py": "TABLE = {  'a':1 }\n",
    # mypy: return-value in Greeter.greet.
    "pkg/typed.py": 'class Greeter:\n    def greet(self, name: str) -> int:\n        return "hi " + name\n',
    # bandit: B404 (import subprocess) at module level, B602 (shell=True) in run.
    "pkg/shell.py": (
        "import subprocess\n\n\ndef run(command: str) -> int:\n    return subprocess.call(command, shell=True)\n"
    ),
    "pkg/covered.py": "def add(a: int, b: int) -> int:\n    return a + b\n",
    "pkg/uncovered.py": "def never() -> int:\n    return 1\n",
    # pytest: test_add passes, TestMath.test_wrong fails.
    "tests/test_pkg.py": (
        "from pkg.covered import add\n\n\ndef test_add() -> None:\n    assert add(1, 2) == 3\n\n\n"
        "class TestMath:\n    def test_wrong(self) -> None:\n        assert add(2, 2) == 5\n"
    ),
    # pytest: a collection error (rule error); mypy: import-not-found.
    "tests/test_broken.py": (
        "import conveyor_missing_module_xyz\n\n\n"
        "def test_never_runs() -> None:\n    assert conveyor_missing_module_xyz\n"
    ),
}

# Every file but these is measured and under 80 %: none of them is imported by a test.
UNCOVERED = {"pkg/imports.py", "pkg/ugly.py", "pkg/typed.py", "pkg/shell.py", "pkg/uncovered.py"}


def make_repo(root: Path, files: dict[str, str] | None = None) -> Path:
    """``root`` as a git repository holding ``files`` (default: FILES), all committed."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for name, text in (FILES if files is None else files).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "problems")
    return root


def copy_repo(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def tree_status(root: Path) -> str:
    """Everything git sees as changed, untracked or ignored: empty means the scanners left no trace."""
    return git(root, "status", "--porcelain", "--ignored")


def spec(*scanners: str, **fields: object) -> ImprovementSpec:
    return ImprovementSpec.model_validate({"scanners": list(scanners), **fields})


def python_command(code: str) -> list[str]:
    """A tool command that runs ``code`` instead of the tool (its own options land in sys.argv, unread)."""
    return [sys.executable, "-c", code]
