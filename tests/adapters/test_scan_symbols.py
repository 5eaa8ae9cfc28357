"""The symbol of a finding: the innermost enclosing function or class, by ``ast``."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.adapters.scanners import enclosing_symbol
from conveyor.adapters.scanners.runner import is_test_file, relative
from conveyor.domain.scan import MODULE_SYMBOL

SOURCE = """\
import os


class Outer:
    x = 1

    @staticmethod
    @property
    def method() -> None:
        def inner() -> None:
            pass

    class Nested:
        async def run(self) -> None:
            pass


def top() -> None:
    return None
"""


@pytest.mark.parametrize(
    ("line", "symbol"),
    [
        (1, MODULE_SYMBOL),
        (4, "Outer"),
        (5, "Outer"),
        (7, "Outer.method"),  # a decorator belongs to what it decorates
        (9, "Outer.method"),
        (11, "Outer.method.inner"),
        (14, "Outer.Nested.run"),
        (17, MODULE_SYMBOL),
        (19, "top"),
        (None, MODULE_SYMBOL),
        (0, MODULE_SYMBOL),
        (500, MODULE_SYMBOL),
    ],
)
def test_the_innermost_enclosing_scope_names_the_symbol(tmp_path: Path, line: int | None, symbol: str) -> None:
    source = tmp_path / "m.py"
    source.write_text(SOURCE)
    assert enclosing_symbol(source, line) == symbol


def test_an_unparsable_or_missing_file_is_module_level(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def broken(:\n    pass\n")
    assert enclosing_symbol(broken, 2) == MODULE_SYMBOL
    assert enclosing_symbol(tmp_path / "missing.py", 1) == MODULE_SYMBOL


def test_an_edited_file_is_parsed_again(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def first() -> None:\n    pass\n")
    assert enclosing_symbol(source, 2) == "first"
    source.write_text("def second_name() -> None:\n    pass\n")
    assert enclosing_symbol(source, 2) == "second_name"


def test_paths_are_made_relative_to_the_root(tmp_path: Path) -> None:
    assert relative(tmp_path, str(tmp_path / "pkg" / "a.py")) == "pkg/a.py"
    assert relative(tmp_path, "./pkg/a.py") == "pkg/a.py"
    assert relative(tmp_path, "/elsewhere/b.py") == "/elsewhere/b.py"


@pytest.mark.parametrize(
    ("path", "is_test"),
    [
        ("tests/helpers.py", True),
        ("pkg/test_x.py", True),
        ("pkg/x_test.py", True),
        ("conftest.py", True),
        ("pkg/testing_utils.py", False),
        ("pkg/contest.py", False),
    ],
)
def test_test_files_are_recognised(path: str, is_test: bool) -> None:
    assert is_test_file(path) is is_test
