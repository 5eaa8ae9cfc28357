"""Headings of a PRD: which are feature sections, which are context, which are out of scope (rules:
:mod:`conveyor.adapters.prd_parser`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from conveyor.adapters import prd_parser_text as txt
from conveyor.adapters.prd_parser_model import Priority

INFORMATIONAL_TITLES = frozenset(
    re.split(
        r"\s*,\s*",
        "overview, introduction, intro, summary, executive summary, tl;dr, background, context, problem, "
        "problem statement, the problem, purpose, vision, motivation, goals, objectives, goals and non-goals, "
        "success metrics, success criteria, metrics, kpis, personas, user personas, users, target users, audience, "
        "target audience, stakeholders, glossary, definitions, terminology, references, appendix, open questions, "
        "questions, risks, risks and mitigations, assumptions, constraints, dependencies, timeline, milestones, "
        "roadmap, release plan, revision history, change log, changelog, document history, history, approvals, "
        "sign-off, table of contents, contents, toc, notes, faq, competitive analysis, competitors, research, "
        "scope, in scope, status, owners, team, contacts",
    )
)
EXCLUDED_TITLES = frozenset(
    {
        "out of scope",
        "out-of-scope",
        "not in scope",
        "non-goals",
        "non goals",
        "nongoals",
        "future",
        "future work",
        "future considerations",
        "future enhancements",
        "later",
        "deferred",
        "parking lot",
        "icebox",
    }
)
_DOTTED = re.compile(r"^(?P<num>\d{1,2}(?:\.\d{1,2})+)\.?\s+(?P<title>\S.*)$")
_NUMBERED = re.compile(r"^(?P<num>\d{1,2})[.):]\s*(?P<title>\S.*)$")
_FEATURE_WORD = re.compile(r"^(?:feature|epic)\s*(?:#?\s*(?P<num>\d{1,3}))?\s*[:.)–—-]\s*(?P<title>\S.*)$", re.I)  # noqa: RUF001
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'`(\[*_])")


def normal_title(title: str) -> str:
    return re.sub(r"\s*\(.*?\)\s*", " ", txt.plain(title)).strip().rstrip(":").strip().casefold()


def feature_heading(heading: str) -> tuple[str | None, str] | None:
    """(number, title) of a numbered feature section heading, or None for any other heading."""
    text = txt.plain(heading)
    match = _DOTTED.match(text) or _NUMBERED.match(text) or _FEATURE_WORD.match(text)
    if match is None:
        return None
    return match.group("num"), match.group("title").strip()


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(txt.collapse(text)) if s.strip()]


class HeadingKind(StrEnum):
    PRIORITY = "priority"  # 'Must have', '5. Should have': the subtree's priority
    EXCLUDED = "excluded"  # 'Out of scope', 'Non-goals': the subtree is reported, not ticketed
    INFORMATIONAL = "informational"  # 'Overview', '2. Goals': the subtree is outside any feature section
    FEATURE = "feature"  # '## 1. Search', '### Feature 2: Export'
    PLAIN = "plain"  # anything else: the subtree keeps the surrounding context


@dataclass(frozen=True)
class Heading:
    kind: HeadingKind
    text: str  # the heading as plain text, markers removed
    priority: Priority | None = None
    number: str | None = None
    name: str = ""  # a feature section's title without number and id
    id_hint: str | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """The names a dependency marker may use for this feature section."""
        numbers = (self.number, f"section {self.number}", f"feature {self.number}") if self.number else ()
        return (self.text, self.name, *numbers, *((self.id_hint,) if self.id_hint else ()))


def classify(heading: str) -> Heading:
    text = txt.plain(txt.extract_markers(heading)[0])
    numbered = feature_heading(text)
    priority = txt.priority_label(text) or (txt.priority_label(numbered[1]) if numbered else None)
    if priority is not None:
        return Heading(HeadingKind.PRIORITY, text, priority)
    normal = normal_title(text)
    title = normal_title(numbered[1]) if numbered else normal
    if normal in EXCLUDED_TITLES or title in EXCLUDED_TITLES or normal.startswith(("out of scope", "non-goal")):
        return Heading(HeadingKind.EXCLUDED, text)
    if title in INFORMATIONAL_TITLES:
        return Heading(HeadingKind.INFORMATIONAL, text)
    if numbered is None:
        return Heading(HeadingKind.PLAIN, text)
    number, name = numbered
    id_hint, name = txt.id_prefix(name)
    return Heading(HeadingKind.FEATURE, text, number=number, name=name, id_hint=id_hint)
