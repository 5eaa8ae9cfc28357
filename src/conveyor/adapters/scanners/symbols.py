"""The symbol of a finding: the qualified name of the innermost function or class around a line.

The symbol is what makes a fingerprint survive edits: lines move, ``Class.method`` does not.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from conveyor.domain.scan import MODULE_SYMBOL

_Scope = tuple[int, int, str]  # first line (decorators included), last line, qualified name


def enclosing_symbol(file: Path, line: int | None) -> str:
    """``Class.method`` around ``line`` of ``file``; MODULE_SYMBOL at the top level or when it can't be parsed."""
    if line is None or line < 1:
        return MODULE_SYMBOL
    try:
        stat = file.stat()
    except OSError:
        return MODULE_SYMBOL
    symbol = MODULE_SYMBOL
    # Scopes come in pre-order, so the last one that contains the line is the innermost.
    for first, last, name in _scopes(str(file), stat.st_mtime_ns, stat.st_size):
        if first <= line <= last:
            symbol = name
    return symbol


@lru_cache(maxsize=256)
def _scopes(file: str, mtime_ns: int, size: int) -> tuple[_Scope, ...]:
    """Every def and class of ``file`` (keyed on mtime and size so an edited file is parsed again)."""
    del mtime_ns, size
    try:
        tree = ast.parse(Path(file).read_bytes(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return ()
    scopes: list[_Scope] = []
    _collect(tree, "", scopes)
    return tuple(scopes)


def _collect(node: ast.AST, prefix: str, scopes: list[_Scope]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            scopes.append((first, child.end_lineno or child.lineno, name))
            _collect(child, f"{name}.", scopes)
        else:
            _collect(child, prefix, scopes)
