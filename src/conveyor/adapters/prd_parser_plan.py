"""From requirements to a :class:`~conveyor.domain.roles.Plan`: titles, dependencies, estimates (both formats)."""

from __future__ import annotations

import graphlib
import re
from collections.abc import Iterable

from pydantic import ValidationError

from conveyor.adapters import prd_parser_text as txt
from conveyor.adapters.prd_parser_model import (
    ACCEPTED_STRUCTURES,
    Assumption,
    IgnoredItem,
    IgnoreReason,
    ItemKind,
    Marker,
    PrdItem,
    PrdParse,
    Requirement,
    SectionRef,
)
from conveyor.domain.errors import InputError, Problem
from conveyor.domain.roles import Plan, PlannedTicket

_KIND_PHRASE = {
    ItemKind.CHECKBOX: "checkbox item",
    ItemKind.LIST_ITEM: "list item",
    ItemKind.USER_STORY: "user story",
    ItemKind.SECTION: "feature section",
    ItemKind.JSON: "requirement",
}


def build_parse(
    path: str,
    *,
    title: str,
    fmt: str,
    requirements: list[Requirement],
    sections: list[SectionRef],
    assumptions: Iterable[Assumption],
    extra_ignored: Iterable[IgnoredItem] = (),
) -> PrdParse:
    """The parse of a PRD whose requirements were read; raises InputError naming file and line."""
    ordered = sorted(requirements, key=lambda r: r.line)
    tickets = [r for r in ordered if r.ignored is None]
    ignored = sorted(
        [*(_ignored_item(r, path) for r in ordered if r.ignored is not None), *extra_ignored], key=lambda i: i.line
    )
    if not tickets:
        if ignored:
            kinds = ", ".join(sorted({i.reason.value for i in ignored}))
            message = f"nothing to ticket: all {len(ignored)} requirement-shaped items are not ticketed ({kinds})"
        else:
            message = f"no requirement structure found; accepted structures: {ACCEPTED_STRUCTURES}"
        raise InputError.single(path, None, message)
    _check_ids(path, ordered)
    titles = _titles(tickets)
    depends = _dependencies(path, tickets, ordered, titles, sections)
    planned = [
        _planned(path, r, titles[i], [_handle(tickets[d], titles[d]) for d in depends[i]])
        for i, r in enumerate(tickets)
    ]
    try:
        plan = Plan(tickets=planned)
    except ValidationError as exc:  # pragma: no cover - the checks above find these first, with lines
        raise InputError.single(path, None, f"the parsed plan is invalid: {exc}") from None
    items = tuple(
        PrdItem(titles[i], path, r.line, r.kind, r.text, r.priority, r.section, r.id_hint)
        for i, r in enumerate(tickets)
    )
    return PrdParse(path, title, fmt, plan, items, tuple(ignored), tuple(sorted(assumptions, key=lambda a: a.line)))


def _check_ids(path: str, requirements: list[Requirement]) -> None:
    first: dict[str, int] = {}
    problems = []
    for req in requirements:
        if req.id_hint is None:
            continue
        name = req.id_hint.casefold()
        if name in first:
            problems.append(Problem(path, req.line, f"id {req.id_hint!r} is used twice (first at line {first[name]})"))
        first.setdefault(name, req.line)
    if problems:
        raise InputError(problems)


def _ignored_item(req: Requirement, path: str) -> IgnoredItem:
    assert req.ignored is not None  # noqa: S101 - the caller filters
    return IgnoredItem(txt.plain(req.text), path, req.line, req.ignored, req.ignored_detail or req.ignored.value)


def _handle(req: Requirement, title: str) -> str:
    return req.id_hint or title


def _base_title(req: Requirement) -> str:
    if req.title is not None:
        return txt.truncate(req.title)
    if req.kind is ItemKind.USER_STORY and (found := txt.story(req.text)) is not None:
        return txt.story_title(found)
    if req.kind is ItemKind.SECTION:
        return txt.imperative(req.text, "Implement", min_words=2)
    return txt.imperative(req.text)


def _titles(tickets: list[Requirement]) -> list[str]:
    """Titles unique among titles and id hints (case-folded): a repeat gets its section, then its line, appended."""
    taken = {r.id_hint.casefold() for r in tickets if r.id_hint}
    titles: list[str] = []
    for req in tickets:
        base = _base_title(req) or f"Meet the requirement at line {req.line}"
        candidates = [base]
        if req.section:
            candidates.append(_suffixed(base, re.sub(r"^\S*\d\S*\s+", "", req.section)))
        candidates.append(_suffixed(base, f"line {req.line}"))
        title = next(c for c in candidates if c.casefold() not in taken or c is candidates[-1])
        taken.add(title.casefold())
        titles.append(title)
    return titles


def _suffixed(base: str, suffix: str) -> str:
    tail = f" ({suffix})"
    return txt.truncate(base, txt.TITLE_MAX - len(tail)) + tail


def _index(requirements: list[Requirement], titles: dict[int, str]) -> dict[str, list[Requirement]]:
    index: dict[str, list[Requirement]] = {}
    for req in requirements:
        names = [req.id_hint or "", req.text, _base_title(req), titles.get(id(req), "")]
        for name in {txt.key(n) for n in names if n}:
            if name:
                index.setdefault(name, []).append(req)
    return index


class _Resolver:
    """Resolves dependency markers to tickets; collects every problem with its line."""

    def __init__(self, path: str, everything: list[Requirement], titles: dict[int, str], sections: list[SectionRef]):
        self.path = path
        self.problems: list[Problem] = []
        self.index = _index(everything, titles)
        self.sections: dict[str, list[SectionRef]] = {}
        for section in sections:
            for name in section.keys:
                self.sections.setdefault(txt.key(name), []).append(section)

    def lookup(self, name: str, marker: Marker) -> list[Requirement] | None:
        found = self.index.get(txt.key(name))
        if found is not None:
            if len(found) > 1:
                lines = ", ".join(str(r.line) for r in found)
                self.problems.append(
                    Problem(self.path, marker.line, f"dependency {name!r} is ambiguous (lines {lines})")
                )
                return []
            return found
        refs = self.sections.get(txt.key(name))
        return None if refs is None else [m for ref in refs for m in ref.members]

    def resolve(self, marker: Marker) -> list[Requirement]:
        """The requirements ``marker`` names: its whole text, else each comma/semicolon part, else "and" pieces."""
        whole = self.lookup(marker.target, marker)
        if whole is not None:
            return whole
        out: list[Requirement] = []
        for part in txt.split_targets(marker.target):
            found = self.lookup(part, marker)
            if found is None:
                pieces = [p for p in re.split(r"\s+and\s+", part, flags=re.IGNORECASE) if txt.key(p)]
                resolved = [self.lookup(p, marker) for p in pieces] if len(pieces) > 1 else [None]
                if any(r is None for r in resolved):
                    self.problems.append(
                        Problem(
                            self.path,
                            marker.line,
                            f"dependency {part!r} names no requirement id, title or feature section of this PRD",
                        )
                    )
                    continue
                found = [req for r in resolved if r is not None for req in r]
            out += found
        return out


def _dependencies(
    path: str,
    tickets: list[Requirement],
    everything: list[Requirement],
    titles: list[str],
    sections: list[SectionRef],
) -> list[list[int]]:
    """For each ticket, the positions of the tickets its markers name; every problem is raised with its line."""
    position = {id(r): i for i, r in enumerate(tickets)}
    resolver = _Resolver(path, everything, {id(r): titles[i] for i, r in enumerate(tickets)}, sections)
    edges: list[list[int]] = [[] for _ in tickets]
    edge_line: dict[tuple[int, int], int] = {}
    for i, req in enumerate(tickets):
        for marker in req.markers:
            for target in resolver.resolve(marker):
                problem = _edge_problem(req, titles[i], target, marker)
                if problem is not None:
                    resolver.problems.append(Problem(path, marker.line, problem))
                elif target is not req and target.ignored is None and (j := position[id(target)]) not in edges[i]:
                    edges[i].append(j)
                    edge_line[(i, j)] = marker.line
    if resolver.problems:
        raise InputError(resolver.problems)
    try:
        graphlib.TopologicalSorter(dict(enumerate(edges))).prepare()
    except graphlib.CycleError as exc:
        cycle: list[int] = exc.args[1]  # each node is a dependency of the next
        names = " -> ".join(_handle(tickets[n], titles[n]) for n in reversed(cycle))
        raise InputError.single(path, edge_line[(cycle[-1], cycle[-2])], f"dependency cycle: {names}") from None
    return edges


def _edge_problem(req: Requirement, title: str, target: Requirement, marker: Marker) -> str | None:
    """Why ``req`` cannot depend on ``target``; None when it can (or when the edge is simply dropped)."""
    if target is req:
        return None if marker.from_section else f"{title!r} depends on itself"
    if target.ignored is None or target.ignored is IgnoreReason.DELIVERED:
        return None  # a ticket; or delivered, so the dependency is met
    return (
        f"{title!r} depends on {txt.plain(target.text)!r} (line {target.line}), which is not ticketed "
        f"({target.ignored_detail or target.ignored.value})"
    )


def _description(path: str, req: Requirement) -> str:
    body = " ".join(req.details) if req.kind is ItemKind.SECTION and req.details else req.text
    extra = req.details if req.kind is not ItemKind.SECTION else []
    what = _KIND_PHRASE[req.kind]
    if req.priority is not None:
        what = f"{req.priority.label} {what}"
    if req.id_hint:
        what = f"{what} {req.id_hint}"
    origin = f"From {path}:{req.line}, {what}"
    if req.section and req.kind is not ItemKind.SECTION:
        origin += f' in section "{req.section}"'
    elif req.kind is ItemKind.SECTION:
        origin += f' "{req.section or req.text}"'
    if txt.ASSUMPTION in req.text or any(txt.ASSUMPTION in c for c in req.criteria):
        origin += " (marked ASSUMPTION in the PRD)"
    return "\n\n".join([txt.collapse(body), *(txt.collapse(d) for d in extra), origin + "."])


def _planned(path: str, req: Requirement, title: str, depends_on: list[str]) -> PlannedTicket:
    files = req.touch_set if req.touch_set is not None else txt.touch_set([req.text, *req.criteria, *req.details])
    text = " ".join([req.text, *req.criteria])
    task_type, estimate = txt.task_type_and_estimate(text, files)
    return PlannedTicket(
        id_hint=req.id_hint,
        title=title,
        description=_description(path, req),
        acceptance_criteria=[txt.collapse(c) for c in req.criteria],
        depends_on=depends_on,
        complexity=req.complexity or txt.complexity(req.text, req.criteria, files),
        touch_set=files,
        task_type=task_type,
        estimate_tokens=estimate,
    )
