"""CHANGELOG.md in the Keep a Changelog 1.1.0 format (https://keepachangelog.com/en/1.1.0/), updated at release.

Releasing version V on date D:

- No file yet: it starts with the title, the standard introduction and ``## [Unreleased]``.
- ``## [V] - D`` goes right below ``## [Unreleased]`` (created above the first release when missing), and
  Unreleased is left empty: whatever a person wrote there moves into V.
- V's subsections come in the standard order (Added, Changed, Deprecated, Removed, Fixed, Security, then any
  other subsection a person wrote, in their order). Into them go, in this order: what V's section already
  held (a re-release), what Unreleased held, and one entry ``- <title> (<ticket id>)`` per delivered ticket.
- A ticket already named (its id as a word) in V's section or under Unreleased gets no generated entry:
  the person's words for it win, and releasing V again neither duplicates nor loses an entry. Releasing the
  same version twice with the same tickets gives the same file; the date is the latest release's.
- Everything else is kept as written: the preamble, other releases, other link references.
- With ``compare_url`` (e.g. ``https://github.com/o/r/compare``), the link references at the bottom are kept
  current: ``[unreleased]: <compare_url>/vV...HEAD`` and ``[V]: <compare_url>/vP...vV`` (P the release below
  V in the file); the first release links to ``.../releases/tag/vV`` when the URL ends in ``/compare``.

Sections by ticket (:func:`changelog_section`): a ticket of category SEC goes to Security whatever its task
type; otherwise by task type (:data:`SECTION_BY_TYPE`): new features under Added; security and auth work
under Security; guards, error handling and small fixes under Fixed; refactors, cleanups, style, tests and
docs under Changed; verification tickets (they change nothing) get no entry; an unclassified ticket goes to
Changed. Only done tickets are entries. Deprecated and Removed are left to people.

A file this module cannot parse is never rewritten: InputError names the file and line. That is: a level-2
heading that is neither ``[Unreleased]`` nor a version (``[X.Y.Z]`` with an optional ``- YYYY-MM-DD``), a bad
date, or two sections for one version (or two Unreleased sections). Headings inside fenced code are text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from conveyor.domain.errors import InputError
from conveyor.domain.ticket import State, TaskType, Ticket, TicketKind

CHANGELOG_PATH = "CHANGELOG.md"
KAC_SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
HEADER = (
    "# Changelog\n\n"
    "All notable changes to this project will be documented in this file.\n\n"
    "The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),\n"
    "and this project adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).\n"
)

SECTION_BY_TYPE: dict[TaskType, str | None] = {
    TaskType.FEATURE_ADD: "Added",
    TaskType.SECURITY_FIX: "Security",
    TaskType.AUTH_ADD: "Security",
    TaskType.GUARD_ADD: "Fixed",
    TaskType.ERROR_HANDLING: "Fixed",
    TaskType.SINGLE_LINE_FIX: "Fixed",
    TaskType.REFACTOR: "Changed",
    TaskType.COMPLEX_REFACTOR: "Changed",
    TaskType.BULK_CLEANUP: "Changed",
    TaskType.STYLE_FIX: "Changed",
    TaskType.TEST_ADD: "Changed",
    TaskType.DOCS: "Changed",
    TaskType.VERIFICATION: None,
}

_SEMVER = r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_RELEASE_HEADING = re.compile(r"^##(?!#)")
_UNRELEASED = re.compile(r"^##\s+\[?unreleased\]?\s*$", re.IGNORECASE)
_VERSION_HEADING = re.compile(
    rf"^##\s+(?:\[(?P<bracketed>[^\]]*)\]|(?P<bare>{_SEMVER}))"
    r"(?:\s+[-\u2013\u2014]\s+(?P<date>\S+))?(?:\s+\[YANKED\])?\s*$",
    re.IGNORECASE,
)
_SUBSECTION = re.compile(r"^###(?!#)\s*(?P<name>.*?)\s*$")
_LINK_REF = re.compile(r"^\s{0,3}\[(?P<label>[^\]]+)\]:\s*\S")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BULLET = re.compile(r"^[-*+]\s")
_TICKET_ID = r"[A-Z][A-Z0-9]*-[A-Z][A-Z0-9]*-\d{3,}(?:-[A-Z0-9]+)*"


@dataclass(frozen=True)
class ChangelogEntry:
    section: str  # one of KAC_SECTIONS
    text: str  # one line, without the bullet
    ticket_id: str | None = None


def changelog_section(ticket: Ticket) -> str | None:
    """The Keep a Changelog section of a ticket's entry, or None for a ticket that changes nothing."""
    if ticket.kind is TicketKind.VERIFICATION:
        return None
    if ticket.category == "SEC":
        return "Security"
    if ticket.task_type is None:
        return "Changed"
    return SECTION_BY_TYPE[ticket.task_type]


def changelog_entries(tickets: Iterable[Ticket]) -> list[ChangelogEntry]:
    """One entry per done ticket with a section, by ticket id."""
    entries = []
    for ticket in sorted(tickets, key=lambda t: t.id):
        section = changelog_section(ticket)
        if ticket.state is State.DONE and section is not None:
            text = " ".join(ticket.title.split())
            entries.append(ChangelogEntry(section, f"{text} ({ticket.id})", ticket.id))
    return entries


# ── the document ──────────────────────────────────────────────────────────────────────────────────────


@dataclass
class _Block:
    line: int  # 1-based line of the heading
    heading: str
    key: str  # "unreleased" or the version without its "v"
    body: list[str] = field(default_factory=list)


@dataclass
class _Document:
    preamble: list[str]
    blocks: list[_Block]
    footer: list[str]  # the link references at the end of the file


@dataclass
class _Section:
    name: str | None  # None: the text before the first subsection
    lines: list[str] = field(default_factory=list)


def _trim(lines: Sequence[str]) -> list[str]:
    start = 0
    end = len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return list(lines[start:end])


def _footer_start(lines: Sequence[str]) -> int:
    start = len(lines)
    index = len(lines) - 1
    while index >= 0 and (not lines[index].strip() or _LINK_REF.match(lines[index])):
        if lines[index].strip():
            start = index
        index -= 1
    return start


def _parse(text: str, path: str) -> _Document:
    lines = text.splitlines()
    footer_at = _footer_start(lines)
    preamble: list[str] = []
    blocks: list[_Block] = []
    seen: dict[str, int] = {}
    in_fence = False
    for number, line in enumerate(lines[:footer_at], start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        if in_fence or not _RELEASE_HEADING.match(line):
            (blocks[-1].body if blocks else preamble).append(line)
            continue
        key = _heading_key(line, number, path)
        if key in seen:
            what = "Unreleased" if key == "unreleased" else f"version {key}"
            raise InputError.single(path, number, f"a second section for {what} (the first is at line {seen[key]})")
        seen[key] = number
        blocks.append(_Block(number, line.rstrip(), key))
    return _Document(preamble, blocks, _trim(lines[footer_at:]))


def _heading_key(line: str, number: int, path: str) -> str:
    if _UNRELEASED.match(line):
        return "unreleased"
    found = _VERSION_HEADING.match(line)
    version = found and (found["bracketed"] or found["bare"])
    if found is None or not version or not re.fullmatch(_SEMVER, version.strip()):
        raise InputError.single(
            path,
            number,
            f"{line.strip()!r} is not a release heading: expected '## [Unreleased]' or '## [X.Y.Z] - YYYY-MM-DD'",
        )
    if found["date"] is not None:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", found["date"]):
                raise ValueError
            date.fromisoformat(found["date"])
        except ValueError:
            raise InputError.single(
                path, number, f"release date {found['date']!r} is not a date of the form YYYY-MM-DD"
            ) from None
    return version.strip().removeprefix("v").removeprefix("V")


def _sections(body: Sequence[str]) -> list[_Section]:
    sections = [_Section(None)]
    in_fence = False
    for line in body:
        if _FENCE.match(line):
            in_fence = not in_fence
        found = None if in_fence else _SUBSECTION.match(line)
        if found is not None:
            sections.append(_Section(_canonical(found["name"])))
        else:
            sections[-1].lines.append(line)
    for section in sections:
        section.lines = _trim(section.lines)
    return [s for s in sections if s.name is not None or s.lines]


def _canonical(name: str) -> str:
    return next((known for known in KAC_SECTIONS if known.lower() == name.lower()), name)


def _join(parts: Iterable[list[str]]) -> list[str]:
    """Concatenate line groups; a blank line between them unless the next one continues a list."""
    out: list[str] = []
    for part in parts:
        if not part:
            continue
        if out and not (_BULLET.match(part[0]) and (_BULLET.match(out[-1]) or out[-1].startswith((" ", "\t")))):
            out.append("")
        out.extend(part)
    return out


def _mentions(ticket_id: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9-]){re.escape(ticket_id)}(?!-?[A-Za-z0-9])", text) is not None


def _release_body(existing: Sequence[str], unreleased: Sequence[str], entries: Sequence[ChangelogEntry]) -> list[str]:
    old, moved = _sections(existing), _sections(unreleased)
    written = "\n".join([*existing, *unreleased])
    generated: dict[str, list[str]] = {}
    for entry in entries:
        named = entry.ticket_id is not None and _mentions(entry.ticket_id, written)
        line = f"- {entry.text}"
        if not named and line not in written.splitlines() and line not in generated.get(entry.section, []):
            generated.setdefault(entry.section, []).append(line)
    names: list[str | None] = [None, *KAC_SECTIONS]
    for section in [*old, *moved]:
        if section.name not in names:
            names.append(section.name)
    out: list[str] = []
    for name in names:
        parts = [s.lines for s in [*old, *moved] if s.name == name]
        lines = _join([*parts, generated.get(name or "", [])] if name is not None else parts)
        if not lines:
            continue
        if name is not None:
            out += [f"### {name}", ""]
        out += [*lines, ""]
    return _trim(out)


def _link_refs(footer: list[str], version: str, previous: str | None, compare_url: str, tag_prefix: str) -> list[str]:
    base = compare_url.rstrip("/")
    if previous is not None:
        version_url = f"{base}/{tag_prefix}{previous}...{tag_prefix}{version}"
    elif base.endswith("/compare"):
        version_url = f"{base.removesuffix('/compare')}/releases/tag/{tag_prefix}{version}"
    else:
        version_url = None
    wanted = {"unreleased": f"[unreleased]: {base}/{tag_prefix}{version}...HEAD"}
    if version_url is not None:
        wanted[version.lower()] = f"[{version}]: {version_url}"
    out: list[str] = []
    for line in footer:
        found = _LINK_REF.match(line)
        label = found["label"].strip().lower() if found else None
        out.append(wanted.pop(label) if label in wanted else line)
    new = list(wanted.values())
    at = next((i + 1 for i, line in enumerate(out) if line.lower().startswith("[unreleased]:")), 0)
    return [*out[:at], *new, *out[at:]] if at else [*new, *out]


def release_changelog(
    text: str | None,
    version: str,
    released_on: date,
    entries: Sequence[ChangelogEntry],
    *,
    path: str = CHANGELOG_PATH,
    compare_url: str | None = None,
    tag_prefix: str = "v",
) -> str:
    """The changelog with ``version`` released (rules in the module docstring); InputError if unparseable.

    ``text`` is the current file, or None when there is none.
    """
    version = version.strip().removeprefix("v")
    if not re.fullmatch(_SEMVER, version):
        raise ValueError(f"{version!r} is not a version")
    doc = _parse(HEADER if text is None else text, path)
    unreleased = next((b for b in doc.blocks if b.key == "unreleased"), None)
    if unreleased is None:
        unreleased = _Block(0, "## [Unreleased]", "unreleased")
        doc.blocks.insert(0, unreleased)
    release = next((b for b in doc.blocks if b.key == version), None)
    if release is None:
        release = _Block(0, "", version)
        doc.blocks.insert(doc.blocks.index(unreleased) + 1, release)
    release.body = _release_body(release.body, unreleased.body, entries)
    release.heading = f"## [{version}] - {released_on.isoformat()}"
    unreleased.body = []
    if compare_url:
        releases = [b.key for b in doc.blocks if b.key != "unreleased"]
        after = releases[releases.index(version) + 1 :]
        doc.footer = _link_refs(doc.footer, version, after[0] if after else None, compare_url, tag_prefix)
    return _render(doc)


def _render(doc: _Document) -> str:
    out = _trim(doc.preamble)
    for block in doc.blocks:
        out += ["", block.heading] if out else [block.heading]
        body = _trim(block.body)
        if body:
            out += ["", *body]
    if doc.footer:
        out += ["", *doc.footer]
    return "\n".join(out) + "\n"
