"""Re-runs of bootstrap upsert (issue 4, behaviour 8): the existing backlog merged with a freshly built one.

``fresh`` is what bootstrap builds from the current input (:func:`~conveyor.domain.bootstrap.backlog_from_findings`
or :func:`~conveyor.domain.bootstrap_plan.backlog_from_plan`), numbered from 001 as if nothing existed;
``existing`` is the backlog on disk. The rules:

1. **Duplicates in fresh** (a later ticket with the same finding id, or the same file and title, as an earlier
   one) are merged into the earlier one: references to the later one point to the earlier one.
2. **Ownership.** Only tickets the input owns are matched, updated or obsoleted; every other ticket passes
   through untouched (follow-ups with an id suffix such as ``-QA``, rows a person added). The default owner
   test (:func:`default_owns`): for a findings input, tickets with a finding id and the generated phase tickets
   (documentation and verification tickets with a phase and no finding id); for a plan input, tickets without a
   finding id that have acceptance criteria (rows typed into TASKS.md have none). Never a suffixed id.
3. **Matching** of a fresh ticket to an owned, not obsolete existing one, first that applies: the same finding
   id; the same file and normalised title; for tickets without finding id on both sides, the same normalised
   title. An obsolete ticket is never matched: a finding that comes back gets a new ticket.
4. **Matched tickets** keep their id, branch, state, flags, timestamps, agent, used tokens, cost, notes,
   iterations and attempts. While not started (state queued) they take the fresh descriptive and planning
   fields: title, description, acceptance criteria, severity, phase, finding id, source, repo, touch set, task
   type, complexity, estimate and dependencies (the fresh ones, renamed to final ids, plus any existing
   dependency on a ticket the input does not own); the issue only when the phase changed. Once started they
   take nothing (the work under way was planned with the old text), with one exception: an old dependency
   that would close a cycle with the new structure (say the finding moved to an earlier phase) is dropped;
   it no longer holds anything back, the ticket having started.
5. **New tickets** are appended in fresh order with new ids: per prefix and category, numbers continue after
   the highest number any existing id has (suffixed and obsolete ones included), so an id is never reused.
6. **Gone from the input:** an owned ticket no fresh ticket matched becomes obsolete (a legal transition, with a
   note saying why) unless it is already terminal (done stays done, skipped stays skipped). Nothing is deleted.
   An owned ticket whose key another existing ticket already matched is a duplicate: obsoleted the same way.
7. With no input change the result equals ``existing`` exactly (same tickets, same order), so the caller
   writes nothing.

Limitation: a phase verification ticket that is already done does not take tickets added to its phase later;
the following phases then wait on the done verification only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from conveyor.domain.backlog import Backlog
from conveyor.domain.bootstrap import branch_for, normalise_path, normalise_title
from conveyor.domain.ids import format_ticket_id, parse_ticket_id
from conveyor.domain.ticket import State, Ticket, TicketKind, transition

Owns = Callable[[Ticket], bool]

UPDATABLE_FIELDS: tuple[str, ...] = (
    "title",
    "description",
    "acceptance_criteria",
    "severity",
    "phase",
    "finding_id",
    "source",
    "repo",
    "touch_set",
    "task_type",
    "complexity",
    "estimate_tokens",
    "depends_on",
)
GONE_NOTE = "obsolete: no longer in the bootstrap input"


@dataclass(frozen=True)
class DuplicateMerge:
    """``duplicate`` (a fresh ticket's finding id or title, or an existing ticket's id) was merged into ``kept_id``."""

    kept_id: str
    duplicate: str
    reason: str  # "same finding id" | "same file and title" | "duplicate in the existing backlog"


@dataclass(frozen=True)
class MergeResult:
    tickets: list[Ticket]
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    obsoleted: list[str] = field(default_factory=list)
    merged_duplicates: list[DuplicateMerge] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.obsoleted)


def _suffixed(ticket: Ticket) -> bool:
    return bool(parse_ticket_id(ticket.id).suffixes)


def owned_by_findings(ticket: Ticket) -> bool:
    if _suffixed(ticket):
        return False
    if ticket.finding_id is not None:
        return True
    return ticket.kind in (TicketKind.VERIFICATION, TicketKind.DOCS) and ticket.phase is not None


def owned_by_plan(ticket: Ticket) -> bool:
    return not _suffixed(ticket) and ticket.finding_id is None and bool(ticket.acceptance_criteria)


def default_owns(existing: Sequence[Ticket], fresh: Sequence[Ticket]) -> Owns:
    """Findings ownership when the input is a findings input (fresh, or else existing, has finding ids)."""
    findings_input = any(t.finding_id for t in fresh) or (not fresh and any(t.finding_id for t in existing))
    return owned_by_findings if findings_input else owned_by_plan


def _file(ticket: Ticket) -> str | None:
    if ticket.source is not None:
        return normalise_path(ticket.source.file)
    return normalise_path(ticket.touch_set[0]) if len(ticket.touch_set) == 1 else None


_KEY_KINDS = ("finding", "file-title", "title")


def _keys(ticket: Ticket) -> list[tuple[str, tuple[str, ...]]]:
    """Match keys, strongest first, each with the reason a shared key gives."""
    title = normalise_title(ticket.title)
    keys: list[tuple[str, tuple[str, ...]]] = []
    if ticket.finding_id is not None:
        keys.append(("same finding id", ("finding", ticket.finding_id.strip().upper())))
    file = _file(ticket)
    if file is not None:
        keys.append(("same file and title", ("file-title", file, title)))
    if ticket.finding_id is None:
        keys.append(("same title", ("title", title)))
    return keys


def _dedupe_fresh(fresh: Sequence[Ticket]) -> tuple[list[Ticket], dict[str, str], list[tuple[Ticket, Ticket, str]]]:
    """Rule 1: the kept tickets, fresh id → kept fresh id, and (kept, dropped, reason) per merge."""
    seen: dict[tuple[str, ...], Ticket] = {}
    alias: dict[str, str] = {}
    kept: list[Ticket] = []
    merges: list[tuple[Ticket, Ticket, str]] = []
    for ticket in fresh:
        hit = next(((seen[k], why) for why, k in _keys(ticket) if k in seen and why != "same title"), None)
        if hit is not None:
            alias[ticket.id] = hit[0].id
            merges.append((hit[0], ticket, hit[1]))
            continue
        for _, key in _keys(ticket):
            seen.setdefault(key, ticket)
        alias[ticket.id] = ticket.id
        kept.append(ticket)
    return kept, alias, merges


def _match(existing: Sequence[Ticket], fresh: Sequence[Ticket], owner: Owns) -> dict[str, Ticket]:
    """Rule 3, fresh id → existing ticket: by the strongest key over all fresh tickets, then the next key."""
    candidates: dict[tuple[str, ...], list[Ticket]] = {}
    for ticket in existing:
        if owner(ticket) and ticket.state is not State.OBSOLETE:
            for _, key in _keys(ticket):
                candidates.setdefault(key, []).append(ticket)
    match: dict[str, Ticket] = {}
    taken: set[str] = set()
    for kind in _KEY_KINDS:
        for ticket in fresh:
            keys = [k for _, k in _keys(ticket) if k[0] == kind]
            if ticket.id in match or not keys:
                continue
            found = next((e for e in candidates.get(keys[0], []) if e.id not in taken), None)
            if found is not None:
                match[ticket.id] = found
                taken.add(found.id)
    return match


def _final_ids(existing: Sequence[Ticket], fresh: Sequence[Ticket], match: dict[str, Ticket]) -> dict[str, str]:
    """Rule 5, fresh id → final id: the matched ticket's, or the next number after every existing one."""
    highest: dict[tuple[str, str], int] = {}
    for ticket in existing:
        parsed = parse_ticket_id(ticket.id)
        slot = (parsed.prefix, parsed.category)
        highest[slot] = max(highest.get(slot, 0), parsed.number)
    final: dict[str, str] = {}
    for ticket in fresh:
        if ticket.id in match:
            final[ticket.id] = match[ticket.id].id
            continue
        parsed = parse_ticket_id(ticket.id)
        slot = (parsed.prefix, parsed.category)
        highest[slot] = highest.get(slot, 0) + 1
        final[ticket.id] = format_ticket_id(parsed.prefix, parsed.category, highest[slot], *parsed.suffixes)
    return final


def merge_backlog(
    existing: Sequence[Ticket],
    fresh: Sequence[Ticket],
    *,
    owns: Owns | None = None,
    at: datetime | None = None,
    pairs: Mapping[str, str] | None = None,
    gone_note: str = GONE_NOTE,
) -> MergeResult:
    """Upsert ``fresh`` into ``existing`` by the rules of the module docstring.

    ``at`` stamps ``completed_at`` of tickets made obsolete. ``pairs`` (fresh id → existing id of an owned
    ticket) are matches decided by the caller, before rule 3 matches the rest; ``gone_note`` is the note of
    rule 6. Raises the backlog's validation errors when the result has an unknown dependency or a cycle (only
    possible when ``existing`` was edited inconsistently).
    """
    owner = owns or default_owns(existing, fresh)
    fresh_kept, alias, fresh_merges = _dedupe_fresh(fresh)
    by_id = {t.id: t for t in existing}
    given = {f: by_id[e] for f, e in (pairs or {}).items() if e in by_id and owner(by_id[e]) and alias.get(f) == f}
    taken = {t.id for t in given.values()}
    match = given | _match(
        existing, [t for t in fresh_kept if t.id not in given], lambda t: owner(t) and t.id not in taken
    )
    final = _final_ids(existing, fresh_kept, match)

    def renamed(deps: Iterable[str]) -> list[str]:
        return [final.get(alias.get(d, d), d) for d in deps]

    result = _Partial(owned={t.id for t in existing if owner(t)}, renamed=renamed, at=at, gone_note=gone_note)
    result.merge_existing(existing, {e.id: f for f in fresh_kept if (e := match.get(f.id)) is not None})
    added: list[str] = []
    for ticket in fresh_kept:
        if ticket.id not in match:
            new_id = final[ticket.id]
            deps = tuple(dict.fromkeys(d for d in renamed(ticket.depends_on) if d != new_id))
            branch = branch_for(new_id) if ticket.branch is not None else None
            result.tickets.append(ticket.model_copy(update={"id": new_id, "depends_on": deps, "branch": branch}))
            added.append(new_id)

    duplicates = [
        DuplicateMerge(final[kept.id], dropped.finding_id or dropped.title, why) for kept, dropped, why in fresh_merges
    ]
    for ticket in fresh_kept:  # matched by file and title to a started ticket that keeps its own finding id
        found = match.get(ticket.id)
        if found is not None and found.state is not State.QUEUED and _other_finding(ticket, found):
            duplicates.append(DuplicateMerge(found.id, ticket.finding_id or ticket.title, "same file and title"))
    tickets = _break_cycles(result.tickets)
    Backlog(tickets).validate()
    before = {t.id: t for t in existing}
    updated = [t.id for t in tickets if t.id in before and t != before[t.id] and t.id not in result.obsoleted]
    changed = bool(added or updated or result.obsoleted)
    return MergeResult(
        tickets=tickets if changed else list(existing),
        added=added,
        updated=updated,
        obsoleted=result.obsoleted,
        merged_duplicates=duplicates + result.duplicates,
        unchanged=[t.id for t in existing if t.id not in updated and t.id not in result.obsoleted],
    )


def _other_finding(fresh: Ticket, existing: Ticket) -> bool:
    if fresh.finding_id is None or existing.finding_id is None:
        return False
    return fresh.finding_id.strip().upper() != existing.finding_id.strip().upper()


def _break_cycles(tickets: list[Ticket]) -> list[Ticket]:
    """Rule 4's exception: drop a started or finished ticket's old dependency that closes a cycle.

    Queued and new tickets carry the fresh structure, which has no cycle; a cycle can only run through the kept
    dependencies of tickets under way or finished, which no longer hold anything back. A cycle without such a
    dependency (a person's edits) is left for validation to report.
    """
    while (cycle := Backlog(tickets).find_cycle()) is not None:
        by_id = {t.id: t for t in tickets}
        # ``cycle`` runs dependency → dependent.
        edge = next(((d, x) for d, x in itertools.pairwise(cycle) if by_id[x].state is not State.QUEUED), None)
        if edge is None:
            break
        dep, dependent = edge
        tickets = [
            t.model_copy(update={"depends_on": tuple(d for d in t.depends_on if d != dep)}) if t.id == dependent else t
            for t in tickets
        ]
    return tickets


@dataclass
class _Partial:
    """Rules 4 and 6 over the existing tickets, in their order."""

    owned: set[str]
    renamed: Callable[[Iterable[str]], list[str]]
    at: datetime | None
    gone_note: str = GONE_NOTE
    tickets: list[Ticket] = field(default_factory=list)
    obsoleted: list[str] = field(default_factory=list)
    duplicates: list[DuplicateMerge] = field(default_factory=list)

    def merge_existing(self, existing: Sequence[Ticket], matched: dict[str, Ticket]) -> None:
        key_owner: dict[tuple[str, ...], str] = {}
        for ticket in existing:
            if ticket.id in matched:
                for _, key in _keys(ticket):
                    key_owner.setdefault(key, ticket.id)
        for ticket in existing:
            source = matched.get(ticket.id)
            if source is not None:
                self.tickets.append(self._updated(ticket, source) if ticket.state is State.QUEUED else ticket)
            elif ticket.id in self.owned and not ticket.state.is_terminal:
                original = next((key_owner[k] for _, k in _keys(ticket) if k in key_owner), None)
                if original:
                    self.duplicates.append(DuplicateMerge(original, ticket.id, "duplicate in the existing backlog"))
                self.tickets.append(
                    self._obsolete(ticket, f"obsolete: duplicate of {original}" if original else self.gone_note)
                )
                self.obsoleted.append(ticket.id)
            else:
                self.tickets.append(ticket)

    def _obsolete(self, ticket: Ticket, note: str) -> Ticket:
        gone = transition(ticket, State.OBSOLETE, at=self.at)
        return gone.model_copy(update={"notes": f"{ticket.notes}; {note}" if ticket.notes else note})

    def _updated(self, ticket: Ticket, source: Ticket) -> Ticket:
        update: dict[str, object] = {name: getattr(source, name) for name in UPDATABLE_FIELDS}
        deps = [d for d in self.renamed(source.depends_on) if d != ticket.id]
        deps += [d for d in ticket.depends_on if d not in self.owned]  # a person's dependency on their own row
        update["depends_on"] = tuple(dict.fromkeys(deps))
        if source.phase != ticket.phase:
            update["issue"] = source.issue
        merged = ticket.model_copy(update=update)
        return ticket if merged == ticket else merged
