"""Values of the deterministic PRD parser (rules: :mod:`conveyor.adapters.prd_parser`).

Public: what :func:`~conveyor.adapters.prd_parser.parse_prd` returns. Internal (``Requirement``, ``Marker``,
``SectionRef``): what the markdown and JSON readers hand to the plan builder, so both formats become plans by
the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from conveyor.domain.roles import Plan, PlannedTicket

ACCEPTED_STRUCTURES = (
    "checkbox lists ('- [ ] requirement'), MoSCoW lists (items under a 'Must have' / 'Should have' / "
    "'Could have' / \"Won't have\" heading or label), numbered feature sections ('## 1. Search', "
    "'### Feature 2: Export') with bullet requirements, prose or an 'Acceptance criteria' list, and user "
    "stories ('As a <role>, I want <x> so that <y>') followed by an 'Acceptance criteria' list; "
    "or docs/PRD.json with a 'requirements' list"
)


class Priority(StrEnum):
    """MoSCoW priority. Must and should are ticketed; could and won't are reported in ``ignored``."""

    MUST = "must"
    SHOULD = "should"
    COULD = "could"
    WONT = "wont"

    @property
    def ticketed(self) -> bool:
        return self in {Priority.MUST, Priority.SHOULD}

    @property
    def label(self) -> str:
        return {"must": "must-have", "should": "should-have", "could": "could-have", "wont": "won't-have"}[self.value]


class ItemKind(StrEnum):
    """The structure a ticket was read from."""

    CHECKBOX = "checkbox"  # '- [ ] text'
    LIST_ITEM = "list-item"  # a bullet or numbered item of a MoSCoW list or a feature section
    USER_STORY = "user-story"  # 'As a ..., I want ...' with its acceptance criteria
    SECTION = "section"  # a numbered feature section as a whole (prose, or its acceptance criteria list)
    JSON = "json"  # a requirement of PRD.json


class IgnoreReason(StrEnum):
    DELIVERED = "delivered"  # a checked checkbox ('- [x]'), or PRD.json "done": true
    COULD_HAVE = "could-have"
    WONT_HAVE = "wont-have"
    OUT_OF_SCOPE = "out-of-scope"  # inside an 'Out of scope' / 'Non-goals' / 'Future work' section
    EMPTY_SECTION = "empty-section"  # a numbered feature section with no requirement and no prose


@dataclass(frozen=True)
class PrdItem:
    """Where the ticket of the same position in ``PrdParse.plan.tickets`` comes from."""

    title: str
    path: str
    line: int
    kind: ItemKind
    text: str  # the requirement as written (markers removed): a story's sentence, a section's heading
    priority: Priority | None = None
    section: str | None = None  # the numbered feature section it belongs to, e.g. "6.1 Search"
    id_hint: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class IgnoredItem:
    """A requirement-shaped item deliberately not ticketed."""

    text: str
    path: str
    line: int
    reason: IgnoreReason
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.detail}: {self.text}"


@dataclass(frozen=True)
class Assumption:
    """A line marked ``ASSUMPTION:`` (seed 001 Step 0: every guessed requirement is marked)."""

    text: str
    path: str
    line: int


@dataclass(frozen=True)
class PrdParse:
    """The deterministic parser's answer: a plan of the same type the LLM planner returns, plus provenance."""

    path: str
    title: str
    format: str  # "markdown" or "json"
    plan: Plan
    items: tuple[PrdItem, ...]  # parallel to plan.tickets
    ignored: tuple[IgnoredItem, ...] = ()
    assumptions: tuple[Assumption, ...] = ()

    @property
    def delivered(self) -> tuple[IgnoredItem, ...]:
        return tuple(i for i in self.ignored if i.reason is IgnoreReason.DELIVERED)

    def item_for(self, ticket: PlannedTicket) -> PrdItem:
        for planned, item in zip(self.plan.tickets, self.items, strict=True):
            if planned is ticket or planned.title == ticket.title:
                return item
        raise KeyError(ticket.title)

    def summary(self) -> str:
        """One line for the bootstrap report; it says that the deterministic fallback made the plan."""
        counts: dict[str, int] = {}
        for item in self.ignored:
            counts[item.reason.value] = counts.get(item.reason.value, 0) + 1
        ignored = ", ".join(f"{n} {reason}" for reason, n in counts.items())
        parts = [f"{len(self.plan.tickets)} tickets from {self.path} (deterministic PRD parser, no model)"]
        if ignored:
            parts.append(f"not ticketed: {ignored}")
        if self.assumptions:
            parts.append(f"{len(self.assumptions)} assumptions")
        return "; ".join(parts)


# ── internal: what the readers hand to the plan builder ───────────────────────────────────────────────────


@dataclass(frozen=True)
class Marker:
    """A dependency marker: ``target`` names a ticket (id hint, title or text) or a feature section."""

    target: str
    line: int
    from_section: bool = False  # a section-level marker: it applies to every ticket of the section but itself


@dataclass
class Requirement:
    """One requirement-shaped item, ticketed unless ``ignored`` is set."""

    kind: ItemKind
    line: int
    text: str
    criteria: list[str] = field(default_factory=list)
    priority: Priority | None = None
    section: str | None = None
    id_hint: str | None = None
    title: str | None = None  # explicit (PRD.json); else derived from ``text``
    details: list[str] = field(default_factory=list)  # further prose for the description
    markers: list[Marker] = field(default_factory=list)
    touch_set: list[str] | None = None  # explicit (PRD.json); else the file paths the text mentions
    complexity: int | None = None  # explicit (PRD.json); else the heuristic
    ignored: IgnoreReason | None = None
    ignored_detail: str = ""


@dataclass
class SectionRef:
    """A numbered feature section other items may depend on: all its tickets."""

    heading: str
    line: int
    keys: tuple[str, ...]
    members: list[Requirement] = field(default_factory=list)
