"""Delivered requirements marked in docs/PRD.md at release (seed 001 Stopping Criteria 5: "PRD is current").

Two marks, both idempotent (marking the same release twice gives the same text):

- A managed section between ``<!-- conveyor:delivered:start -->`` and ``<!-- conveyor:delivered:end -->``
  (each marker alone on its line) lists, per release, the delivered tickets: ``### v<version>`` (with the
  date when given), then ``- <id> — <title>``. The section is appended at the end of the PRD when absent and
  rewritten when present: the release's list is replaced, other releases' lists are kept, newest first.
  Anything else a person wrote between the markers is replaced.
- A checkbox line ``- [ ] text`` (also ``*``, ``+`` or ``1.`` items) outside the managed section and
  outside fenced code becomes ``- [x] text`` when its text, normalised, equals the normalised title or an
  acceptance criterion of a delivered ticket, or when it names a delivered ticket's id. Normalised: case
  folded, punctuation read as spaces, whitespace collapsed. Boxes already ticked stay as they are; nothing
  is ever unticked.

Delivered tickets are the done ones; the caller may pass the whole milestone. Markers that do not form one
pair (a start without an end, an end without a start, either twice) raise InputError naming the file and
the line; the PRD is then left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from conveyor.domain.errors import InputError
from conveyor.domain.ticket import State, Ticket
from conveyor.domain.versions import Version

PRD_PATH = "docs/PRD.md"
START_MARKER = "<!-- conveyor:delivered:start -->"
END_MARKER = "<!-- conveyor:delivered:end -->"
SECTION_HEADING = "## Delivered requirements"
_INTRO = "Written by Conveyor at each milestone release; edits between these markers are replaced."

_CHECKBOX = re.compile(r"^(?P<lead>\s*(?:[-*+]|\d+[.)])\s+)\[ \](?P<gap>\s+)(?P<text>.*\S)\s*$")
_RELEASE = re.compile(r"^###\s+v?(?P<version>\d+\.\d+\.\d+)\b")
_FENCE = re.compile(r"^\s*(```|~~~)")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class PrdMarks:
    text: str
    checked: tuple[tuple[int, str], ...]  # (1-based line, item text) of the boxes this release ticked


def normalise(text: str) -> str:
    """Case folded, punctuation read as spaces, whitespace collapsed: how PRD items and tickets are compared."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def _markers(lines: Sequence[str], path: str) -> tuple[int, int] | None:
    """0-based indexes of the start and end markers, or None when there are none."""
    start: int | None = None
    end: int | None = None
    in_fence = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        if in_fence:
            continue
        marker = line.strip()
        if marker == START_MARKER:
            if start is not None:
                raise InputError.single(path, index + 1, f"a second {START_MARKER} (the first is at line {start + 1})")
            start = index
        elif marker == END_MARKER:
            if start is None:
                raise InputError.single(path, index + 1, f"{END_MARKER} without a {START_MARKER} before it")
            if end is not None:
                raise InputError.single(path, index + 1, f"a second {END_MARKER} (the first is at line {end + 1})")
            end = index
    if start is not None and end is None:
        raise InputError.single(path, start + 1, f"{START_MARKER} without a {END_MARKER} after it")
    return (start, end) if start is not None and end is not None else None


def _releases(section: Sequence[str]) -> dict[str, list[str]]:
    """Version → the lines of its list (heading included) in an existing managed section."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in section:
        found = _RELEASE.match(line)
        if found is not None:
            current = out.setdefault(found["version"], [])
            current.clear()
            current.append(line.rstrip())
        elif line.startswith("#"):
            current = None  # a heading of a person's: not a release list
        elif current is not None:
            current.append(line.rstrip())
    return {version: _trim(lines) for version, lines in out.items()}


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _section(releases: dict[str, list[str]]) -> list[str]:
    out = [START_MARKER, SECTION_HEADING, "", _INTRO, ""]
    for version in sorted(releases, key=Version.parse, reverse=True):
        out += [*releases[version], ""]
    return [*_trim(out), END_MARKER]


def mark_delivered(
    text: str,
    version: str,
    tickets: Sequence[Ticket],
    *,
    path: str = PRD_PATH,
    released_on: date | None = None,
) -> PrdMarks:
    """The PRD with the release's delivered tickets marked (rules in the module docstring)."""
    version = str(Version.parse(version))
    lines = text.splitlines()
    markers = _markers(lines, path)
    delivered = sorted((t for t in tickets if t.state is State.DONE), key=lambda t: t.id)

    phrases = {normalise(p) for t in delivered for p in (t.title, *t.acceptance_criteria)} - {""}
    ids = [re.compile(rf"(?<![A-Za-z0-9-]){re.escape(t.id)}(?!-?[A-Za-z0-9])") for t in delivered]
    checked: list[tuple[int, str]] = []
    in_fence = False
    managed = range(markers[0], markers[1] + 1) if markers else range(0)
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        box = None if in_fence or index in managed else _CHECKBOX.match(line)
        if box is None:
            continue
        item = box["text"]
        if normalise(item) in phrases or any(p.search(item) for p in ids):
            lines[index] = f"{box['lead']}[x]{box['gap']}{item}"
            checked.append((index + 1, item))

    releases = _releases(lines[markers[0] + 1 : markers[1]]) if markers else {}
    heading = f"### v{version}" + (f" ({released_on.isoformat()})" if released_on else "")
    items = [f"- {t.id} — {' '.join(t.title.split())}" for t in delivered] or ["- No ticket was delivered."]
    releases[version] = [heading, "", *items]
    section = _section(releases)
    if markers:
        lines[markers[0] : markers[1] + 1] = section
    else:
        body = _trim(lines)
        lines = [*body, *([""] if body else []), *section]
    return PrdMarks("\n".join(lines) + "\n", tuple(checked))
