"""Which ready tickets start now: order, touch-set exclusion and worker slots.

Order (:func:`order_ready`). The ready set is sorted by

1. the longest remaining critical path first, weighed by :func:`~conveyor.domain.backlog.estimate_weight`,
   so the ticket that holds up the most estimated work starts first (seed 001: "blockers first");
2. then seed 001's order: severity rank (critical first, no severity last), phase (lower first, none
   last), fewer dependencies, and finally the id, which makes the order total and reproducible.

Overlap (:func:`touch_sets_overlap`). Touch-set entries are repository paths or :mod:`fnmatch` globs; as in
:func:`fnmatch.fnmatchcase`, ``*`` matches across ``/`` and matching is case-sensitive. Two entries overlap

- when some path matches both: equal paths, a path and a glob that matches it, two globs with a common match;
- when one is a directory and the other could name something below it. An entry is a directory when it ends
  in ``/`` (``src/app/`` covers everything under it), or when it is a plain path and the other entry's
  literal part (before its first ``*``, ``?`` or ``[``) lies below it (``src/app`` and
  ``src/app/*.py``). A plain path is not otherwise assumed to be a directory: ``src/README.md`` and
  ``src/*.py`` do not overlap, although ``src/README.md/x.py`` would match the glob.

Entries are normalised first: surrounding blanks and leading ``./`` go, repeated ``/`` collapse, a git-style
``**/`` also matches no directory at all, and ``.`` or ``./`` means the whole repository. An empty touch set
declares nothing and so overlaps nothing.

Dispatch (:func:`plan_dispatch`). Free slots are the workers the budget mode allows
(:func:`~conveyor.domain.budget.max_workers`) minus the tickets already running, never negative. Walking
the order, a candidate is held back when no slot is left, or when its touch set overlaps, or the caller's
``conflicts`` predictor (a ``git merge-tree`` dry run) predicts a conflict with, a running ticket or one
already chosen in this round. A frozen budget starts nothing and holds every ready ticket. Every ready
ticket that does not start gets exactly one reason in :attr:`Dispatch.held_back`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conveyor.domain.backlog import Backlog, estimate_weight
from conveyor.domain.budget import BudgetMode, max_workers
from conveyor.domain.ticket import Severity, Ticket

ConflictPredictor = Callable[[Ticket, Ticket], bool]

REASON_FROZEN = "budget frozen"
REASON_NO_WORKER = "no free worker"

_NO_SEVERITY = len(Severity)
_NO_PHASE = 1 << 30  # after every real phase


# -- order ------------------------------------------------------------------------------------------------


def order_ready(backlog: Backlog) -> list[Ticket]:
    """The ready set, best first: longest remaining critical path, then severity, phase, dependencies, id."""
    lengths = backlog.remaining_path_lengths(estimate_weight)
    return sorted(
        backlog.ready(estimate_weight),
        key=lambda t: (
            -lengths[t.id],
            t.severity.rank if t.severity is not None else _NO_SEVERITY,
            t.phase if t.phase is not None else _NO_PHASE,
            len(t.depends_on),
            t.id,
        ),
    )


# -- touch-set overlap ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    """One position of a glob: ``*``, or a single character drawn from (or, negated, outside) ``ranges``."""

    star: bool = False
    negated: bool = False
    ranges: tuple[tuple[int, int], ...] = ()


_STAR = _Token(star=True)
_ANY = _Token(negated=True)


def _literal(char: str) -> _Token:
    return _Token(ranges=((ord(char), ord(char)),))


def _class_ranges(body: str) -> tuple[tuple[int, int], ...]:
    ranges: list[tuple[int, int]] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            lo, hi = ord(body[k]), ord(body[k + 2])
            if lo <= hi:  # fnmatch drops reversed ranges such as [z-a]
                ranges.append((lo, hi))
            k += 3
        else:
            ranges.append((ord(body[k]), ord(body[k])))
            k += 1
    return tuple(ranges)


def _tokens(pattern: str) -> tuple[_Token, ...]:
    """Tokenise like :func:`fnmatch.translate`: an unclosed ``[`` is a literal bracket."""
    out: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if not out or out[-1] != _STAR:
                out.append(_STAR)
        elif char == "?":
            out.append(_ANY)
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":  # a leading ] belongs to the class
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(_literal("["))
                continue
            negated = pattern[i] == "!"
            out.append(_Token(negated=negated, ranges=_class_ranges(pattern[i + 1 if negated else i : j])))
            i = j + 1
        else:
            out.append(_literal(char))
    return tuple(out)


def _escapes(lo: int, hi: int, cover: tuple[tuple[int, int], ...]) -> bool:
    """Some code point in [lo, hi] lies outside every range of ``cover``."""
    current = lo
    for a, b in sorted(cover):
        if b < current:
            continue
        if a > current:
            return True
        current = b + 1
        if current > hi:
            return False
    return current <= hi


def _chars_meet(x: _Token, y: _Token) -> bool:
    """One character satisfies both single-character tokens."""
    if x.negated and y.negated:
        return True  # the alphabet is unbounded next to two finite exclusions
    if x.negated:
        x, y = y, x
    if y.negated:
        return any(_escapes(lo, hi, y.ranges) for lo, hi in x.ranges)
    return any(a <= d and c <= b for a, b in x.ranges for c, d in y.ranges)


def _globs_intersect(a: str, b: str) -> bool:
    """Some string matches both fnmatch patterns: a search over pairs of positions in the two patterns."""
    ta, tb = _tokens(a), _tokens(b)
    goal = (len(ta), len(tb))
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        state = stack.pop()
        if state == goal:
            return True
        if state in seen:
            continue
        seen.add(state)
        i, j = state
        x = ta[i] if i < len(ta) else None
        y = tb[j] if j < len(tb) else None
        if x is not None and x.star:
            stack.append((i + 1, j))  # the star matches nothing more
        if y is not None and y.star:
            stack.append((i, j + 1))
        if x is None or y is None:
            continue
        if x.star and not y.star and _chars_meet(y, _ANY):
            stack.append((i, j + 1))  # a's star swallows the character b's token produces
        elif y.star and not x.star and _chars_meet(x, _ANY):
            stack.append((i + 1, j))
        elif not x.star and not y.star and _chars_meet(x, y):
            stack.append((i + 1, j + 1))
    return False


_SLASHES = re.compile(r"/{2,}")
_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class _Entry:
    pattern: str  # normalised, without a trailing /
    directory: bool  # declared with a trailing / (or the whole repository)
    plain: bool  # no glob characters: a literal path
    literal_prefix: str  # the pattern up to its first glob character


def _entry(raw: str) -> _Entry:
    path = _SLASHES.sub("/", raw.strip())
    while path.startswith("./"):
        path = path[2:]
    if path in {"", ".", "/"}:
        return _Entry(pattern="*", directory=True, plain=False, literal_prefix="")
    directory = path.endswith("/")
    # git's **/ matches zero or more directories; fnmatch's * already crosses /, so one * covers both.
    pattern = path.rstrip("/").replace("**/", "*")
    magic = _MAGIC.search(pattern)
    prefix = pattern if magic is None else pattern[: magic.start()]
    return _Entry(pattern=pattern, directory=directory, plain=magic is None, literal_prefix=prefix)


def _under(parent: _Entry, other: _Entry) -> bool:
    """``other`` could name something below ``parent``, were ``parent`` a directory."""
    if parent.directory:
        return _globs_intersect(f"{parent.pattern}/*", other.pattern)
    return parent.plain and other.literal_prefix.startswith(f"{parent.pattern}/")


def _entries_overlap(x: _Entry, y: _Entry) -> bool:
    return _globs_intersect(x.pattern, y.pattern) or _under(x, y) or _under(y, x)


def touch_sets_overlap(a: Ticket, b: Ticket) -> bool:
    """Some path could be touched by both tickets (see the module docstring for the matching rules)."""
    entries_b = [_entry(e) for e in b.touch_set]
    return any(_entries_overlap(_entry(e), y) for e in a.touch_set for y in entries_b)


# -- dispatch ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dispatch:
    """Tickets to start now, in order, and why each other ready ticket waits (ticket id → reason)."""

    start: list[Ticket]
    held_back: dict[str, str]


def _clash(candidate: Ticket, others: Sequence[Ticket], label: str, conflicts: ConflictPredictor | None) -> str | None:
    # Touch sets first for every other ticket: they are free, the predictor runs git.
    for other in others:
        if touch_sets_overlap(candidate, other):
            return f"touch set overlaps {other.id} ({label})"
    if conflicts is not None:
        for other in others:
            if conflicts(candidate, other):
                return f"predicted merge conflict with {other.id} ({label})"
    return None


def plan_dispatch(
    backlog: Backlog,
    running: Sequence[Ticket],
    *,
    workers: int,
    mode: BudgetMode,
    conflicts: ConflictPredictor | None = None,
) -> Dispatch:
    """Choose the ready tickets to start now; ``conflicts(candidate, other)`` predicts a merge conflict."""
    running_ids = {t.id for t in running}
    candidates = [t for t in order_ready(backlog) if t.id not in running_ids]
    if mode is BudgetMode.FROZEN:
        return Dispatch(start=[], held_back=dict.fromkeys((t.id for t in candidates), REASON_FROZEN))
    slots = max(0, max_workers(mode, workers) - len(running_ids))
    no_worker = REASON_NO_WORKER
    if mode is BudgetMode.CONSERVATIVE:
        no_worker += " (conservative budget: one worker)"
    start: list[Ticket] = []
    held: dict[str, str] = {}
    for ticket in candidates:
        # Slots before clashes, so the conflict predictor only runs for tickets that could start.
        if len(start) >= slots:
            held[ticket.id] = no_worker
            continue
        reason = _clash(ticket, running, "running", conflicts) or _clash(ticket, start, "starting", conflicts)
        if reason is not None:
            held[ticket.id] = reason
        else:
            start.append(ticket)
    return Dispatch(start=start, held_back=held)
