"""Markdown → a tree of sections, paragraphs and list items, with 1-based line numbers (for the PRD parser).

Only what PRDs use: ATX headings, bullet and numbered lists with nesting by indentation and lazy continuation
lines, checkboxes, paragraphs. Fenced code, HTML comments, tables, horizontal rules and YAML front matter are
skipped (they never hold requirements); a blockquote marker is dropped and its content read as usual. Label
lines ('Must have:', 'Acceptance criteria:', 'Depends on: X') are paragraphs of their own, and a user story
line starts a new paragraph, so that a label written right under a story is still seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from conveyor.adapters import prd_parser_text as txt

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_ITEM = re.compile(r"^(?P<indent>[ ]*)(?P<marker>[-*+]|\d{1,9}[.)])(?:[ ]+(?P<text>.*))?$")
_CHECK = re.compile(r"^\[(?P<state>[ xX])\](?:[ ]+(?P<text>.*))?$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RULE = re.compile(r"^ {0,3}(?:(?:-[ ]*){3,}|(?:\*[ ]*){3,}|(?:_[ ]*){3,})$")
_TABLE = re.compile(r"^\s*\|")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_COMMENT = re.compile(r"<!--.*?-->")


@dataclass
class Para:
    line: int
    indent: int
    lines: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.lines)


@dataclass
class Item:
    line: int
    indent: int
    check: str | None  # None: no checkbox; " ": open; "x": checked
    parts: list[str]
    children: list[Para | Item] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(p for p in self.parts if p)

    @property
    def checked(self) -> bool:
        return self.check is not None and self.check != " "


Block = Para | Item


@dataclass
class Section:
    level: int
    heading: str
    line: int
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)


def _is_label(text: str) -> bool:
    return txt.priority_label(text) is not None or txt.is_ac_label(text) or txt.marker_line(text) is not None


def content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line that is not code, comment or front matter; skipped ones as ''."""
    lines = text.splitlines()
    fence: str | None = None
    in_comment = False
    front = bool(lines) and lines[0].strip() == "---"
    for number, raw in enumerate(lines, start=1):
        line = raw.expandtabs(4)
        if front:
            front = not (number > 1 and line.strip() in {"---", "..."})
            yield number, ""
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
            yield number, ""
            continue
        if in_comment:
            if "-->" not in line:
                yield number, ""
                continue
            line, in_comment = line.split("-->", 1)[1], False
        line = _COMMENT.sub("", line)
        if "<!--" in line:
            line, in_comment = line.split("<!--", 1)[0], True
        if (opened := _FENCE.match(line)) is not None:
            fence = opened.group(1)
            yield number, ""
            continue
        if _TABLE.match(line) or _RULE.match(line):
            yield number, ""
            continue
        yield number, _QUOTE.sub("", line)


def parse_blocks(text: str) -> Section:
    """The document as a section tree; the root (level 0) holds what comes before the first heading."""
    root = Section(0, "", 0)
    sections = [root]
    items: list[Item] = []
    para: Para | None = None
    blank = True
    for number, line in content_lines(text):
        if not line.strip():
            blank, para = True, None
            continue
        if (heading := _HEADING.match(line)) is not None:
            level = len(heading.group(1))
            while sections[-1].level >= level:
                sections.pop()
            section = Section(level, (heading.group(2) or "").strip(), number)
            sections[-1].children.append(section)
            sections.append(section)
            items, para, blank = [], None, False
            continue
        if (item := _ITEM.match(line)) is not None:
            indent = len(item.group("indent"))
            body = (item.group("text") or "").strip()
            check = None
            if (box := _CHECK.match(body)) is not None:
                check, body = box.group("state").lower(), (box.group("text") or "").strip()
            while items and items[-1].indent >= indent:
                items.pop()
            new = Item(number, indent, check, [body])
            (items[-1].children if items else sections[-1].blocks).append(new)
            items.append(new)
            para, blank = None, False
            continue
        content = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        label = _is_label(content)
        starts = label or txt.story(content) is not None
        if items and not blank and not starts:
            if para is None:
                items[-1].parts.append(content)  # lazy continuation of the item
            else:
                para.lines.append(content)
            continue
        if not starts and para is not None and not blank:
            para.lines.append(content)
            continue
        while items and items[-1].indent >= indent:
            items.pop()
        new_para = Para(number, indent, [content])
        (items[-1].children if items else sections[-1].blocks).append(new_para)
        para = None if label else new_para
        blank = False
    return root
