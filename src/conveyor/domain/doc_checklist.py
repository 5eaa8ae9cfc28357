"""The documentation checklist of a milestone release, made mechanical (seed 001 Documentation Gate).

The checklist is a TOML file: the default ships as ``conveyor/checklists/documentation.toml``; a repository
overrides it as a whole with :data:`OVERRIDE_PATH`. This module parses its text (reading the file is the
caller's job) and applies it to the changes of a milestone's tickets.

Rules of the check:

- A rule triggers for a ticket when the ticket's change touches a path matching one of the rule's ``paths``,
  or adds a line matching one of its ``diff_patterns`` (regular expressions, searched) in a file matching its
  ``diff_paths`` (every file when ``diff_paths`` is empty). Paths matching the rule's ``exclude``, the
  checklist's ``[ignore] paths`` or a docs path never trigger it.
- A triggered rule is satisfied by a documentation change in the same ticket (a changed path matching the
  rule's ``docs_paths``, or ``[docs] paths`` when the rule has none), or else by a recorded waiver: a
  non-blank waiver text, such as the knowledge steward's ``Docs: waived (reason)`` note
  (:func:`waiver_from_notes` finds it in a ticket's notes). Otherwise the rule is missing for that ticket
  and the release stops with the list of what is missing.

Globs are relative to the repository root. ``*`` and ``?`` match within one path segment, ``**`` as a whole
segment matches any number of directories (zero included), ``[abc]``/``[!abc]`` are character classes, and a
trailing ``/`` means everything below. A glob without ``/`` matches a file name at any depth (``*.md`` matches
``docs/x.md``), as in .gitignore. A glob with a leading ``/``, ``\\``, ``.``/``..`` segments, an empty
segment, ``**`` mixed with other characters in a segment, or an unclosed or empty class is an error.

Changed paths are normalised (``\\`` → ``/``, leading ``./`` dropped). The diff is the unified diff of the
ticket's change as git writes it (``+++ b/<path>``); only added lines are searched.

A checklist that cannot be parsed raises :class:`~conveyor.domain.errors.InputError` naming the file and the
line: TOML syntax, unknown keys, wrong types, bad globs or regular expressions, duplicate rule ids.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from conveyor.domain.errors import InputError, Problem

DEFAULT_CHECKLIST_RESOURCE = "conveyor/checklists/documentation.toml"  # package data (conveyor.checklists)
OVERRIDE_PATH = "automations/checklists/documentation.toml"  # a repository's own checklist replaces the default
CHECKLIST_VERSION = 1

_TOP_KEYS = frozenset({"version", "docs", "ignore", "rule"})
_DOCS_KEYS = frozenset({"paths"})
_IGNORE_KEYS = frozenset({"paths"})
_RULE_KEYS = frozenset(
    {"id", "description", "paths", "exclude", "diff_paths", "diff_patterns", "docs_paths", "satisfy"}
)
_RULE_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TOML_POSITION = re.compile(r"\(at line (?P<line>\d+), column \d+\)")


# ── globs ─────────────────────────────────────────────────────────────────────────────────────────────


def normalise_path(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression of a checklist glob (rules in the module docstring); ValueError if malformed."""
    if not pattern.strip():
        raise ValueError("empty glob")
    if "\\" in pattern:
        raise ValueError(f"glob {pattern!r} contains a backslash: separate directories with /")
    if pattern.startswith("/"):
        raise ValueError(f"glob {pattern!r} starts with /: globs are relative to the repository root")
    body = pattern[:-1] + "/**" if pattern.endswith("/") else pattern
    segments = body.split("/")
    anywhere = len(segments) == 1
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in {"", ".", ".."}:
            raise ValueError(f"glob {pattern!r} has an empty, '.' or '..' segment")
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        if "**" in segment:
            raise ValueError(f"glob {pattern!r}: '**' must be a whole path segment, as in a/**/b")
        parts.append(_translate_segment(segment, pattern) + ("" if last else "/"))
    prefix = "(?:.*/)?" if anywhere else ""
    return re.compile(prefix + "".join(parts), re.DOTALL)


def _translate_segment(segment: str, pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in {"!", "^"} else i + 1)
            if end == -1:
                raise ValueError(f"glob {pattern!r} has an unclosed '['")
            inner = segment[i + 1 : end]
            negate = inner[:1] in {"!", "^"}
            inner = inner[1:] if negate else inner
            if not inner:
                raise ValueError(f"glob {pattern!r} has an empty character class")
            escaped = inner.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[")
            out.append(f"[{'^/' if negate else ''}{escaped}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def glob_matches(pattern: str, path: str) -> bool:
    return compile_glob(pattern).fullmatch(normalise_path(path)) is not None


def _any_match(patterns: Iterable[str], path: str) -> bool:
    return any(glob_matches(p, path) for p in patterns)


# ── the checklist ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class DocRule:
    id: str
    description: str
    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    diff_paths: tuple[str, ...] = ()
    diff_patterns: tuple[str, ...] = ()
    docs_paths: tuple[str, ...] | None = None  # None: the checklist's [docs] paths
    satisfy: str = ""


@dataclass(frozen=True)
class Checklist:
    source: str  # the file it came from, for messages
    docs_paths: tuple[str, ...]
    ignore: tuple[str, ...]
    rules: tuple[DocRule, ...]

    def rule(self, rule_id: str) -> DocRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


class _Locator:
    """Lines of tables and keys in a TOML text: TOML parsers give positions for syntax errors only."""

    _ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]")
    _TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')\s*=")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.tables: dict[tuple[str, int | None], int] = {("", None): 1}
        self.keys: dict[tuple[str, int | None, str], int] = {}
        self.key_lines: list[int] = []
        counts: dict[str, int] = {}
        table: tuple[str, int | None] = ("", None)
        for number, line in enumerate(self.lines, start=1):
            if found := self._ARRAY_TABLE.match(line):
                name = found[1].strip("\"'")
                table = (name, counts.get(name, 0))
                counts[name] = counts.get(name, 0) + 1
                self.tables[table] = number
                self.key_lines.append(number)
            elif found := self._TABLE.match(line):
                table = (found[1].strip("\"'"), None)
                self.tables[table] = number
                self.key_lines.append(number)
            elif found := self._KEY.match(line):
                self.keys.setdefault((*table, found[1].strip("\"'")), number)
                self.key_lines.append(number)

    def table(self, name: str, index: int | None = None) -> int | None:
        return self.tables.get((name, index))

    def key(self, name: str, index: int | None, key: str) -> int | None:
        """The line of ``key`` in a table; a top-level name may be a table header instead; else the table's line."""
        found = self.keys.get((name, index, key))
        if found is None and not name:
            found = self.tables.get((key, None)) or self.tables.get((key, 0))
        return found if found is not None else self.table(name, index)

    def value(self, name: str, index: int | None, key: str, value: str) -> int | None:
        """The line of ``value`` in a (possibly multi-line) array under ``key``; else the key's line."""
        start = self.keys.get((name, index, key))
        if start is None:
            return self.table(name, index)
        stop = next((n for n in self.key_lines if n > start), len(self.lines) + 1)
        quoted = (f'"{value}"', f"'{value}'", repr(value))
        for number in range(start, stop):
            if any(q in self.lines[number - 1] for q in quoted):
                return number
        return start


def parse_checklist(text: str, path: str = OVERRIDE_PATH) -> Checklist:
    """The checklist in ``text`` (TOML), or InputError listing every problem with ``path`` and its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        position = _TOML_POSITION.search(str(exc))
        line = int(position["line"]) if position else None
        message = _TOML_POSITION.sub("", str(exc)).strip()
        raise InputError.single(path, line, f"not valid TOML: {message}") from None
    return _Parser(path, text).checklist(data)


class _Parser:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.where = _Locator(text)
        self.problems: list[Problem] = []

    def add(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def checklist(self, data: dict[str, object]) -> Checklist:
        where = self.where
        for key in sorted(set(data) - _TOP_KEYS):
            self.add(where.key("", None, key), f"unknown key {key!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
        version = data.get("version", CHECKLIST_VERSION)
        if version != CHECKLIST_VERSION:
            self.add(where.key("", None, "version"), f"version must be {CHECKLIST_VERSION}, got {version!r}")
        if "docs" not in data:
            self.add(None, "no [docs] table: its paths say what counts as a documentation change")
        docs = self.table(data, "docs", _DOCS_KEYS)
        docs_paths = self.globs(docs, "docs", None, "paths")
        if isinstance(data.get("docs"), dict) and not docs.get("paths"):
            self.add(where.table("docs"), "[docs] paths must list at least one glob")
        ignore_paths = self.globs(self.table(data, "ignore", _IGNORE_KEYS), "ignore", None, "paths")
        raw_rules = data.get("rule", [])
        if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
            self.add(where.key("", None, "rule"), "rule must be an array of tables ([[rule]])")
            raw_rules = []
        rules: list[DocRule] = []
        first: dict[str, int] = {}
        for index, raw in enumerate(raw_rules):
            rule = self.rule(raw, index)
            if rule.id in first:
                self.add(
                    where.key("rule", index, "id"),
                    f"rule id {rule.id!r} is used twice (first at line {first[rule.id]})",
                )
            first.setdefault(rule.id, where.key("rule", index, "id") or 0)
            rules.append(rule)
        if self.problems:
            raise InputError(self.problems)
        return Checklist(self.path, tuple(docs_paths), tuple(ignore_paths), tuple(rules))

    def table(self, data: Mapping[str, object], name: str, allowed: frozenset[str]) -> dict[str, object]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            self.add(self.where.key("", None, name), f"{name} must be a table ([{name}])")
            return {}
        self.unknown(value, allowed, name, None)
        return value

    def unknown(self, table: Mapping[str, object], allowed: frozenset[str], name: str, index: int | None) -> None:
        label = f"[[{name}]] number {index + 1}" if index is not None else f"[{name}]"
        for key in sorted(set(table) - allowed):
            self.add(
                self.where.key(name, index, key),
                f"unknown key {key!r} in {label} (allowed: {', '.join(sorted(allowed))})",
            )

    def strings(self, table: Mapping[str, object], name: str, index: int | None, key: str) -> list[str]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(self.where.key(name, index, key), f"{key} must be a list of strings")
            return []
        return list(value)

    def globs(self, table: Mapping[str, object], name: str, index: int | None, key: str) -> list[str]:
        good: list[str] = []
        for pattern in self.strings(table, name, index, key):
            try:
                compile_glob(pattern)
            except ValueError as exc:
                self.add(self.where.value(name, index, key, pattern), f"{key}: {exc}")
            else:
                good.append(pattern)
        return good

    def rule(self, raw: dict[str, object], index: int) -> DocRule:
        where = self.where
        self.unknown(raw, _RULE_KEYS, "rule", index)
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id):
            self.add(
                where.key("rule", index, "id"),
                f"rule number {index + 1}: id must be a lower-case name such as 'cli' (got {rule_id!r})",
            )
            rule_id = f"rule-{index + 1}"
        texts: dict[str, str] = {}
        for key in ("description", "satisfy"):
            value = raw.get(key, "")
            if not isinstance(value, str):
                self.add(where.key("rule", index, key), f"{key} must be a string")
                value = ""
            texts[key] = value
        diff_patterns = self.strings(raw, "rule", index, "diff_patterns")
        for pattern in diff_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.add(
                    where.value("rule", index, "diff_patterns", pattern),
                    f"diff_patterns: bad regular expression {pattern!r}: {exc}",
                )
        if not raw.get("paths") and not diff_patterns:
            self.add(
                where.table("rule", index), f"rule {rule_id!r} needs paths or diff_patterns: it could never trigger"
            )
        docs_paths = None
        if "docs_paths" in raw:
            docs_paths = tuple(self.globs(raw, "rule", index, "docs_paths"))
            if not raw["docs_paths"]:
                self.add(where.key("rule", index, "docs_paths"), f"rule {rule_id!r}: docs_paths is empty")
        return DocRule(
            id=rule_id,
            description=texts["description"] or rule_id,
            paths=tuple(self.globs(raw, "rule", index, "paths")),
            exclude=tuple(self.globs(raw, "rule", index, "exclude")),
            diff_paths=tuple(self.globs(raw, "rule", index, "diff_paths")),
            diff_patterns=tuple(diff_patterns),
            docs_paths=docs_paths,
            satisfy=texts["satisfy"],
        )


# ── inputs: diffs and waivers ─────────────────────────────────────────────────────────────────────────

_HUNK = re.compile(r"^@@ -\d+(?:,(?P<old>\d+))? \+\d+(?:,(?P<new>\d+))? @@")
_WAIVER = re.compile(r"\bdocs:\s*waived\b", re.IGNORECASE)


def added_lines_by_path(diff: str) -> dict[str, list[str]]:
    """Path → the lines a unified diff adds to it (without the ``+``), in diff order.

    Hunk lengths are followed, so an added line whose text starts with ``++`` is not taken for a header.
    Deleted files add nothing; paths lose git's ``b/`` prefix.
    """
    added: dict[str, list[str]] = {}
    path: str | None = None
    old = new = 0
    for line in diff.splitlines():
        if old > 0 or new > 0:
            marker, text = line[:1], line[1:]
            if marker == "+":
                new -= 1
                if path is not None:
                    added.setdefault(path, []).append(text)
            elif marker == "-":
                old -= 1
            elif marker in {" ", ""}:
                old, new = old - 1, new - 1
            continue  # "\ No newline at end of file" and the like
        if line.startswith("+++ "):
            target = line[4:].split("\t")[0].strip().strip('"')
            path = None if target == "/dev/null" else normalise_path(target.removeprefix("b/"))
        elif hunk := _HUNK.match(line):
            old = int(hunk["old"]) if hunk["old"] is not None else 1
            new = int(hunk["new"]) if hunk["new"] is not None else 1
    return added


def waiver_from_notes(notes: str) -> str | None:
    """The ``Docs: waived (reason)`` note in a ticket's notes (the steward's words), or None.

    The reason runs to its matching parenthesis, so a reason may itself hold parentheses.
    """
    found = _WAIVER.search(notes)
    if found is None:
        return None
    end = found.end()
    rest = notes[end:]
    stripped = rest.lstrip()
    if stripped.startswith("("):
        depth = 0
        start = len(rest) - len(stripped)
        for offset, char in enumerate(stripped):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                end += start + offset + 1
                break
        else:
            end = len(notes)
    return notes[found.start() : end].strip()


# ── the check ─────────────────────────────────────────────────────────────────────────────────────────


class DocStatus(StrEnum):
    NOT_APPLICABLE = "not-applicable"  # no rule triggered
    DOCUMENTED = "documented"  # every triggered rule has its docs change
    WAIVED = "waived"  # some triggered rule is covered by the waiver only
    MISSING = "missing"  # some triggered rule has neither


@dataclass(frozen=True)
class TicketChange:
    """One ticket's change: its changed paths, its unified diff (optional) and its recorded waiver, if any."""

    ticket_id: str
    paths: tuple[str, ...]
    diff: str | None = None
    waiver: str | None = None


@dataclass(frozen=True)
class RuleHit:
    rule_id: str
    description: str
    paths: tuple[str, ...]  # the paths that triggered the rule
    evidence: tuple[str, ...]  # "path: added line" for the diff patterns that matched (first line per path)
    status: DocStatus  # DOCUMENTED, WAIVED or MISSING
    docs: tuple[str, ...]  # the changed docs paths that satisfied it
    satisfy: str  # what would satisfy it


@dataclass(frozen=True)
class MissingDocs:
    ticket_id: str
    rule_id: str
    description: str
    paths: tuple[str, ...]
    satisfy: str

    def __str__(self) -> str:
        return (
            f"{self.ticket_id}: {self.description} changed ({', '.join(self.paths)}) with neither a docs change "
            f"nor a waiver ({self.rule_id}): {self.satisfy}"
        )


@dataclass(frozen=True)
class TicketDocCheck:
    ticket_id: str
    hits: tuple[RuleHit, ...]
    docs_changed: tuple[str, ...]
    waiver: str | None

    @property
    def status(self) -> DocStatus:
        statuses = {hit.status for hit in self.hits}
        for status in (DocStatus.MISSING, DocStatus.WAIVED, DocStatus.DOCUMENTED):
            if status in statuses:
                return status
        return DocStatus.NOT_APPLICABLE

    @property
    def missing(self) -> list[MissingDocs]:
        return [
            MissingDocs(self.ticket_id, hit.rule_id, hit.description, hit.paths, hit.satisfy)
            for hit in self.hits
            if hit.status is DocStatus.MISSING
        ]


@dataclass(frozen=True)
class DocChecklistReport:
    source: str
    tickets: tuple[TicketDocCheck, ...] = field(default_factory=tuple)

    @property
    def missing(self) -> list[MissingDocs]:
        return [item for ticket in self.tickets for item in ticket.missing]

    @property
    def ok(self) -> bool:
        return not self.missing


def _default_satisfy(docs_paths: Sequence[str]) -> str:
    return (
        f"change a documentation file ({', '.join(docs_paths)}) in the same ticket, "
        "or record a waiver 'Docs: waived (reason)'"
    )


def check_ticket(checklist: Checklist, change: TicketChange) -> TicketDocCheck:
    """The checklist applied to one ticket's change (rules in the module docstring)."""
    changed = [normalise_path(p) for p in dict.fromkeys(change.paths)]
    added = added_lines_by_path(change.diff) if change.diff else {}
    waiver = change.waiver if change.waiver and change.waiver.strip() else None
    all_docs = sorted({p for p in changed if _any_match(checklist.docs_paths, p)})

    def eligible(rule: DocRule, path: str) -> bool:
        return not (
            _any_match(checklist.ignore, path)
            or _any_match(rule.exclude, path)
            or _any_match(checklist.docs_paths, path)
            or (rule.docs_paths is not None and _any_match(rule.docs_paths, path))
        )

    hits: list[RuleHit] = []
    for rule in checklist.rules:
        triggered = [p for p in changed if eligible(rule, p) and _any_match(rule.paths, p)]
        evidence: list[str] = []
        if rule.diff_patterns:
            patterns = [re.compile(p) for p in rule.diff_patterns]
            for path, lines in added.items():
                if not eligible(rule, path) or (rule.diff_paths and not _any_match(rule.diff_paths, path)):
                    continue
                line = next((t for t in lines if any(p.search(t) for p in patterns)), None)
                if line is not None:
                    evidence.append(f"{path}: {line.strip()}")
                    if path not in triggered:
                        triggered.append(path)
        if not triggered:
            continue
        docs_globs = rule.docs_paths if rule.docs_paths is not None else checklist.docs_paths
        docs = tuple(p for p in changed if _any_match(docs_globs, p))
        status = DocStatus.DOCUMENTED if docs else DocStatus.WAIVED if waiver else DocStatus.MISSING
        hits.append(
            RuleHit(
                rule_id=rule.id,
                description=rule.description,
                paths=tuple(triggered),
                evidence=tuple(evidence),
                status=status,
                docs=docs,
                satisfy=rule.satisfy or _default_satisfy(docs_globs),
            )
        )
    return TicketDocCheck(change.ticket_id, tuple(hits), tuple(all_docs), waiver)


def check_documentation(checklist: Checklist, changes: Iterable[TicketChange]) -> DocChecklistReport:
    """The checklist applied to each ticket's change; ``report.missing`` lists what stops the release."""
    return DocChecklistReport(checklist.source, tuple(check_ticket(checklist, c) for c in changes))
