"""The repository map given to the implementer: files and their top-level symbols, ranked, under a budget.

It replaces seed 004's first-40-files snapshot. Files come from ``git ls-files`` (tracked, plus untracked files
that are not ignored) when the directory is a git repository, else from a walk that skips .git, .venv,
node_modules, __pycache__, .conveyor and the like; binary files are left out. Symbols: Python through ``ast``
(classes with their methods' names, functions with signatures); JavaScript/TypeScript, Go, Rust and Java
through simple regular expressions. Files are ranked by relevance to the query (the ticket's title,
description, finding and location): a file named in the query first, then the overlap of query terms with
the file's path and symbols, then shorter paths. As many files as fit the token budget are shown with their
symbols (tokens are estimated as characters / 4); then the paths of the rest while the budget lasts.
The output is deterministic: ties are broken by path.
"""

from __future__ import annotations

import ast
import fnmatch
import math
import os
import re
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from conveyor.adapters.agents.tools_paths import SKIP_DIRS

MAX_PARSE_BYTES = 300_000
MAX_SYMBOL_FILES = 2_000
MAX_SYMBOLS_PER_FILE = 40
MAX_SYMBOL_CHARS = 120
CHARS_PER_TOKEN = 4

_BINARY = """.png .jpg .jpeg .gif .bmp .ico .webp .pdf .zip .gz .tgz .bz2 .xz .7z .tar .jar .war .whl .egg .so .dll
.dylib .exe .bin .o .a .class .pyc .pyo .woff .woff2 .ttf .otf .eot .mp3 .mp4 .mov .avi .wav .ogg .sqlite .db
.parquet .pkl .npy .npz"""
BINARY_SUFFIXES = frozenset(_BINARY.split())
_STOP = """the and for with that this from into when then than should must will can are was were has have not but
all any add fix use uses used make new old its their there where which what who how why get set let out per via
off file files ticket task"""
_STOPWORDS = frozenset(_STOP.split())
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_FILE_MENTION = re.compile(r"[\w./-]+\.[A-Za-z0-9]+")

_JS_PATTERNS = [
    re.compile(r"^export\s+(?:default\s+)?(?:async\s+)?function\*?\s+(\w+)\s*(\([^)]*\))?"),
    re.compile(r"^(?:async\s+)?function\*?\s+(\w+)\s*(\([^)]*\))?"),
    re.compile(r"^(?:export\s+)?(?:default\s+)?(?:abstract\s+)?(class\s+\w+)"),
    re.compile(r"^(?:export\s+)?(?:declare\s+)?((?:interface|type|enum)\s+\w+)"),
    re.compile(r"^export\s+(?:const|let|var)\s+(\w+)"),
]
_GO_PATTERNS = [
    re.compile(r"^func\s+(\([^)]*\)\s*)?(\w+)\s*(\([^)]*\))"),
    re.compile(r"^type\s+(\w+\s+(?:struct|interface))"),
]
_RUST_PATTERNS = [
    re.compile(r"^(?:pub(?:\([\w:]+\))?\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)\s*(?:<[^>]*>)?\s*(\([^)]*\))?"),
    re.compile(r"^(?:pub(?:\([\w:]+\))?\s+)?((?:struct|enum|trait|mod)\s+\w+)"),
    re.compile(r"^(impl(?:<[^>]*>)?\s+[\w:<>, ]+)"),
]
_JAVA_PATTERNS = [
    re.compile(
        r"^\s*(?:public\s+|protected\s+|private\s+)?(?:abstract\s+|final\s+|static\s+|sealed\s+)*"
        r"((?:class|interface|enum|record)\s+\w+)"
    ),
    re.compile(r"^\s+public\s+(?:static\s+|final\s+|abstract\s+|synchronized\s+)*[\w<>\[\], ?]+\s+(\w+)\s*\("),
]


@dataclass(frozen=True)
class RepoMap:
    """``text`` for the prompt; ``files`` shown with symbols; ``listed`` shown by path only."""

    text: str
    files: tuple[str, ...]
    listed: tuple[str, ...]
    total_files: int
    token_budget: int

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.text)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# -- listing -------------------------------------------------------------------------------------------------


def _skipped(path: str, exclude: Sequence[str]) -> bool:
    parts = path.split("/")
    if any(part in SKIP_DIRS for part in parts[:-1]) or parts[-1] == ".git":
        return True
    if PurePosixPath(path).suffix.lower() in BINARY_SUFFIXES:
        return True
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in exclude)


def _git_files(workdir: Path) -> list[str] | None:
    if not (workdir / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=workdir,
            capture_output=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted({name for name in done.stdout.decode("utf-8", "replace").split("\0") if name})


def _walk_files(workdir: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(workdir):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        rel_dir = Path(dirpath).relative_to(workdir).as_posix()
        found += [name if rel_dir == "." else f"{rel_dir}/{name}" for name in filenames]
    return sorted(found)


def _is_text_file(path: Path) -> bool:
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with path.open("rb") as handle:
            return b"\x00" not in handle.read(1024)
    except OSError:
        return False


def list_files(workdir: Path, *, exclude: Sequence[str] = ()) -> list[str]:
    """The repository's text files, relative and sorted (module docstring)."""
    names = _git_files(workdir)
    if names is None:
        names = _walk_files(workdir)
    return [name for name in names if not _skipped(name, exclude) and _is_text_file(workdir / name)]


# -- symbols -------------------------------------------------------------------------------------------------


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SYMBOL_CHARS else text[: MAX_SYMBOL_CHARS - 3] + "..."


def _python_function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return _short(f"{prefix} {node.name}({ast.unparse(node.args)}){returns}")


def python_symbols(source: str) -> list[str]:
    """Public top-level classes (with their public methods' names) and functions (with signatures).

    [] when the source does not parse.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    symbols: list[str] = []
    for node in tree.body:
        if getattr(node, "name", "").startswith("_"):
            continue  # private: not what other code uses
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            symbols.append(_python_function(node))
        elif isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(base) for base in node.bases)
            methods = [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not item.name.startswith("_")
            ]
            head = f"class {node.name}({bases})" if bases else f"class {node.name}"
            symbols.append(_short(head + (": " + ", ".join(methods) if methods else "")))
    return symbols


def _regex_symbols(source: str, patterns: Sequence[re.Pattern[str]]) -> list[str]:
    symbols: list[str] = []
    for line in source.splitlines():
        for pattern in patterns:
            match = pattern.match(line)
            if match:
                symbols.append(_short(" ".join(group.strip() for group in match.groups() if group)))
                break
    return symbols


_LANGUAGES: dict[str, Sequence[re.Pattern[str]]] = {
    **dict.fromkeys((".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts"), _JS_PATTERNS),
    ".go": _GO_PATTERNS,
    ".rs": _RUST_PATTERNS,
    ".java": _JAVA_PATTERNS,
}


def file_symbols(path: str, source: str) -> list[str]:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in {".py", ".pyi"}:
        symbols = python_symbols(source)
    elif suffix in _LANGUAGES:
        symbols = _regex_symbols(source, _LANGUAGES[suffix])
    else:
        return []
    return symbols[:MAX_SYMBOLS_PER_FILE]


def _read_symbols(workdir: Path, path: str) -> list[str]:
    full = workdir / path
    try:
        if full.stat().st_size > MAX_PARSE_BYTES:
            return []
        source = full.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return file_symbols(path, source)


# -- ranking -------------------------------------------------------------------------------------------------


def terms(text: str) -> set[str]:
    """Lower-case words of ``text``, camelCase and snake_case split, without short words and stopwords."""
    words: set[str] = set()
    for word in _WORD.findall(text):
        for part in [word, *_CAMEL.findall(word)]:
            lowered = part.lower()
            if len(lowered) >= 3 and lowered not in _STOPWORDS:
                words.add(lowered)
    return words


def _named(path: str, query: str, mentions: set[str]) -> int:
    """2 when the query names the path, 1 when it names the file (basename), else 0."""
    if path in query:
        return 2
    return 1 if PurePosixPath(path).name in mentions else 0


def rank_files(paths: Sequence[str], symbols: Mapping[str, Sequence[str]], query: str) -> list[str]:
    """``paths`` by relevance to ``query``: named in it first, then term overlap, then shorter, then by name.

    Overlap: each query term found in the path counts twice, in the symbols once, weighted by its rarity
    among the files (a term every file has, like ``src``, counts little).
    """
    query_terms = terms(query)
    mentions = {PurePosixPath(m).name for m in _FILE_MENTION.findall(query)}
    path_terms = {path: terms(path) & query_terms for path in paths}
    symbol_terms = {path: (terms(" ".join(symbols.get(path, ()))) & query_terms) - path_terms[path] for path in paths}
    frequency = Counter(term for path in paths for term in path_terms[path] | symbol_terms[path])
    weight = {term: math.log(1 + len(paths) / count) for term, count in frequency.items()}

    def key(path: str) -> tuple[int, float, int, str]:
        score = 2 * sum(weight[t] for t in path_terms[path]) + sum(weight[t] for t in symbol_terms[path])
        return (-_named(path, query, mentions), -round(score, 9), len(path), path)

    return sorted(paths, key=key)


# -- the map -------------------------------------------------------------------------------------------------


def build_repo_map(
    workdir: Path,
    *,
    query: str,
    token_budget: int = 2000,
    exclude: Sequence[str] = (),
) -> RepoMap:
    """The map of ``workdir`` ranked by relevance to ``query``, at most ``token_budget`` tokens (chars / 4).

    ``exclude``: glob patterns of relative paths to leave out (e.g. ``docs/TASKS.md``).
    """
    paths = list_files(workdir, exclude=exclude)
    candidates = paths
    if len(paths) > MAX_SYMBOL_FILES:  # parse only the files most likely to matter (ranked by path alone)
        candidates = rank_files(paths, {}, query)[:MAX_SYMBOL_FILES]
    symbols = {path: _read_symbols(workdir, path) for path in candidates}
    ranked = rank_files(paths, symbols, query)

    budget_chars = max(token_budget, 0) * CHARS_PER_TOKEN
    header = (
        f"Repository map: {len(paths)} files ranked by relevance to the ticket; top-level symbols of the first "
        f"ones, then paths only (budget {token_budget} tokens, estimated as characters / 4).\n"
    )
    if len(header) > budget_chars:
        return RepoMap("", (), (), len(paths), token_budget)
    blocks: list[str] = []
    shown: list[str] = []
    used = len(header)
    for path in ranked:  # in rank order until one does not fit
        entries = symbols.get(path, [])
        block = f"{path}:\n" + "".join(f"  {entry}\n" for entry in entries) if entries else f"{path}\n"
        if used + len(block) > budget_chars:
            break
        blocks.append(block)
        shown.append(path)
        used += len(block)
    rest = ranked[len(shown) :]
    listed: list[str] = []
    if rest:
        other_header = "Other files (paths only):\n"
        reserve = len(f"... and {len(rest)} more files\n")
        if used + len(other_header) + reserve <= budget_chars:
            used += len(other_header)
            for path in rest:
                line = f"{path}\n"
                left_after = len(rest) - len(listed) - 1
                more = len(f"... and {left_after} more files\n") if left_after else 0
                if used + len(line) + more > budget_chars:
                    break
                listed.append(path)
                used += len(line)
            blocks.append(other_header + "".join(f"{path}\n" for path in listed))
        left = len(rest) - len(listed)
        if left and used + len(f"... and {left} more files\n") <= budget_chars:
            blocks.append(f"... and {left} more files\n")
    text = header + "".join(blocks)
    return RepoMap(text, tuple(shown), tuple(listed), len(paths), token_budget)
