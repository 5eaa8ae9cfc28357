"""The first line of a bullet or heading: the finding id, inline severity tags, the title and its location.

Rules are documented in :mod:`conveyor.adapters.review_report`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.adapters.review_report_text import (
    SEVERITY_WORD,
    clean,
    is_finding_id,
    is_reference,
    parse_location,
    severity_word,
    split_locations,
)
from conveyor.domain.ticket import Severity

_NUMBERING = re.compile(r"^\d+(?:\.\d+)*[.)]?\s+|^(?:finding|issue)\s+#?", re.IGNORECASE)
_TAG = rf"[\[(]\s*(?:severity\s*[:=]\s*)?(?P<sev>{SEVERITY_WORD})(?:\s+severity)?\s*[\])]"
_LEADING_TAG = re.compile(
    rf"^(?:\*\*)?{_TAG}(?:\*\*)?\s*(?:[:|]|[-\u2013—](?=\s))?\s*|^\*\*(?P<bold>{SEVERITY_WORD})\*\*\s*"
    r"(?:[:|]|[-\u2013—](?=\s))?\s*"
    rf"|^(?P<word>{SEVERITY_WORD})\s*(?:[:|]|[-\u2013—](?=\s))\s*",
    re.IGNORECASE,
)
_SYMBOLS = re.compile(r"^[^\w\s\[(*`]+\s*")  # emoji badges such as 🔴
_TOKEN = re.compile(
    r"^(?P<open>\*\*|`|\[)?(?P<tok>[A-Za-z0-9](?:[\w.\-]*[A-Za-z0-9])?)(?P<close>\*\*|`|\](?:\([^)]*\))?)?"
)
_AFTER_ID_TAG = re.compile(rf"^\s*{_TAG}", re.IGNORECASE)
_AFTER_ID_WORD = re.compile(
    rf"^\s*[-\u2013—:|]\s*(?:\*\*)?(?P<sev>{SEVERITY_WORD})(?:\*\*)?\s*(?=[-\u2013—:|])", re.IGNORECASE
)
_SEPARATOR = re.compile(r"^\s*(?:[:|]|[-\u2013—]+)?\s*")
_FINDING_START = re.compile(r"^\s*(?:[:\-\u2013—|(\[]|$)")
_TRAILING_TAG = re.compile(rf"\s*{_TAG}\s*$", re.IGNORECASE)
_TRAILING_PAREN = re.compile(r"\s*\((?P<loc>[^()]*)\)\s*$")
_TRAILING_LOC = re.compile(
    r"\s+(?:—|\u2013|-|@|in|at|:)\s+(?P<loc>`?[^\s`]+`?(?:\s+L\d+(?:\s*[-\u2013]\s*L?\d+)?)?)\s*$", re.IGNORECASE
)
_BACKTICKED = re.compile(r"`([^`]+)`")
_CONTEXT_FILLER = frozenset(
    {"severity", "priority", "risk", "issues", "issue", "findings", "finding", "vulnerabilities", "items", "problems"}
)


@dataclass
class Head:
    """``token`` is the leading word (the id when it is one); ``statements`` are (role, value) pairs."""

    token: str
    title: str
    statements: list[tuple[str, str]]

    @property
    def finding_id(self) -> str | None:
        return self.token if is_finding_id(self.token) and not is_reference(self.token) else None


def parse_head(text: str, *, heading: bool) -> Head | None:
    """Id, title and inline severity/location of a bullet or heading; None when it starts with no token."""
    rest = text.strip()
    statements: list[tuple[str, str]] = []
    if heading:
        rest = _NUMBERING.sub("", rest, count=1)
    rest = _SYMBOLS.sub("", rest, count=1)
    tag = _LEADING_TAG.match(rest)
    if tag:
        statements.append(("severity", tag["sev"] or tag["bold"] or tag["word"]))
        rest = _SYMBOLS.sub("", rest[tag.end() :], count=1)
    token = _TOKEN.match(rest)
    if token is None:
        return None
    rest = rest[token.end() :]
    marked = token["open"] is not None and (token["close"] is not None or token["open"] == "**")
    if not heading and not marked and not _FINDING_START.match(rest):
        return None  # prose that happens to start with a token, not a finding position
    for pattern in (_AFTER_ID_TAG, _AFTER_ID_WORD):
        after = pattern.match(rest)
        if after:
            statements.append(("severity", after["sev"]))
            rest = rest[after.end() :]
            break
    rest = _SEPARATOR.sub("", rest, count=1)
    title = _trailing(rest.replace("**", "").strip(), statements)
    return Head(token["tok"], title.strip(" \t:|-\u2013—"), statements)


def _trailing(title: str, statements: list[tuple[str, str]]) -> str:
    """Strip trailing severity tags and locations off a title, stating them."""
    located = False
    for _ in range(3):
        tag = _TRAILING_TAG.search(title)
        if tag:
            statements.append(("severity", tag["sev"]))
            title = title[: tag.start()]
            continue
        paren = _TRAILING_PAREN.search(title)
        parts = split_locations(paren["loc"]) if paren and not located else []
        if paren and parts and parse_location(parts[0], strict=True):
            statements.append(("file", paren["loc"]))
            title, located = title[: paren.start()], True
            continue
        loc = _TRAILING_LOC.search(title)
        if loc and not located and parse_location(loc["loc"], strict=True):
            statements.append(("file", loc["loc"]))
            title, located = title[: loc.start()], True
            continue
        break
    if not located:
        for candidate in _BACKTICKED.findall(title):
            if parse_location(candidate, strict=True):
                statements.append(("file", candidate))
                break
    return title


def context_severity(text: str) -> Severity | None:
    """The one severity a section heading names (``## High``, ``### Critical Issues (2)``), or None."""
    words = re.findall(r"[a-z0-9]+", clean(text).lower())
    severities = {s for word in words if (s := severity_word(word)) is not None}
    if len(severities) != 1:
        return None
    if all(word.isdigit() or word in _CONTEXT_FILLER or severity_word(word) for word in words):
        return severities.pop()
    return None
