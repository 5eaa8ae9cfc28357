"""Documented, lossy projections of a ticket's state (ARCHITECTURE.md §3 and §8). Pure functions, no I/O.

The ticket state machine (stages, terminal states, flags) is the truth; docs/TASKS.md and the seed-000
run-state speak smaller vocabularies. The stage record in run-state.json keeps the exact state.

(a) TASKS.md ``status`` column: seed 001's vocabulary plus ``deferred``, ``skipped`` and ``obsolete``.

    =========================================  ============  ======================================
    ticket (state, flags)                      status        read back as (state, flags)
    =========================================  ============  ======================================
    queued                                     not-started   queued
    implementing, reviewing, qa, documenting,  in-progress   implementing
    integrating, ops
    any non-terminal state + flag ``blocked``  blocked       queued + blocked
    done / failed / deferred / skipped /       same name     same state
    obsolete
    (never written by Conveyor)                 needs-qa      qa (in progress, waiting for QA)
    =========================================  ============  ======================================

    The flags ``escalated`` and ``awaiting-approval`` do not show in TASKS.md. Reading is case-insensitive
    and ignores surrounding whitespace; a value outside the vocabulary reads as ``None`` (the caller keeps
    the text and reports it).

(b) run-state ``status`` (seed 000): ``pending|in_progress|qa|deploy|done|blocked`` plus ``failed`` and
    ``deferred``.

    =========================================  ============
    ticket (state, flags)                      status
    =========================================  ============
    queued                                     pending
    implementing, reviewing                    in_progress
    qa, documenting                            qa
    integrating, ops                           deploy
    any non-terminal state + flag ``blocked``  blocked
    done                                       done
    failed                                     failed
    deferred, skipped, obsolete                deferred
    =========================================  ============

    Skipped and obsolete become ``deferred`` because the seed vocabulary lacks them; the stage record keeps
    the exact state. Reading a run-state status back gives the first stage it stands for.

(c) Token counts (seed 001's ``estimate`` and ``used`` columns): ``800`` is 800 tokens, ``8K`` 8,000,
    ``4.2K`` 4,200, ``1.5M`` 1,500,000 (``k``/``m`` in either case; ``,`` or ``_`` may group thousands,
    ``4,2K`` is refused rather than guessed). Rendering follows the seed (``8K``, ``4.2K``) and is exact:
    below 1,000 the plain number, below a million ``K`` with as many decimals as needed (``4.25K``), above
    it ``M`` likewise, so that reading a rendered count always gives the same number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from conveyor.domain.ticket import Flag, State

# -- (a) TASKS.md status ---------------------------------------------------------------------------------

NOT_STARTED = "not-started"
IN_PROGRESS = "in-progress"
BLOCKED = "blocked"
NEEDS_QA = "needs-qa"

TASKS_STATUSES: tuple[str, ...] = (
    NOT_STARTED,
    IN_PROGRESS,
    "done",
    "failed",
    BLOCKED,
    NEEDS_QA,
    "deferred",
    "skipped",
    "obsolete",
)

_TERMINAL_BY_NAME = {s.value: s for s in (State.DONE, State.FAILED, State.DEFERRED, State.SKIPPED, State.OBSOLETE)}


def tasks_status(state: State, flags: Iterable[Flag] = ()) -> str:
    """The TASKS.md status for a ticket's state and flags."""
    if state.is_terminal:
        return state.value
    if Flag.BLOCKED in frozenset(flags):
        return BLOCKED
    if state is State.QUEUED:
        return NOT_STARTED
    return IN_PROGRESS


def from_tasks_status(value: str) -> tuple[State, frozenset[Flag]] | None:
    """The (state, flags) a TASKS.md status stands for, or None for a value outside the vocabulary."""
    word = value.strip().lower()
    if word == NOT_STARTED:
        return State.QUEUED, frozenset()
    if word == IN_PROGRESS:
        return State.IMPLEMENTING, frozenset()
    if word == NEEDS_QA:
        return State.QA, frozenset()
    if word == BLOCKED:
        return State.QUEUED, frozenset({Flag.BLOCKED})
    if word in _TERMINAL_BY_NAME:
        return _TERMINAL_BY_NAME[word], frozenset()
    return None


def is_tasks_status(value: str) -> bool:
    return from_tasks_status(value) is not None


# -- (b) run-state status (seed 000) ---------------------------------------------------------------------

RUN_STATE_STATUSES: tuple[str, ...] = (
    "pending",
    "in_progress",
    "qa",
    "deploy",
    "done",
    "blocked",
    "failed",
    "deferred",
)

_RUN_STATE_BY_STATE: dict[State, str] = {
    State.QUEUED: "pending",
    State.IMPLEMENTING: "in_progress",
    State.REVIEWING: "in_progress",
    State.QA: "qa",
    State.DOCUMENTING: "qa",
    State.INTEGRATING: "deploy",
    State.OPS: "deploy",
    State.DONE: "done",
    State.FAILED: "failed",
    State.DEFERRED: "deferred",
    State.SKIPPED: "deferred",
    State.OBSOLETE: "deferred",
}

_STATE_BY_RUN_STATE: dict[str, tuple[State, frozenset[Flag]]] = {
    "pending": (State.QUEUED, frozenset()),
    "in_progress": (State.IMPLEMENTING, frozenset()),
    "qa": (State.QA, frozenset()),
    "deploy": (State.INTEGRATING, frozenset()),
    "done": (State.DONE, frozenset()),
    "blocked": (State.QUEUED, frozenset({Flag.BLOCKED})),
    "failed": (State.FAILED, frozenset()),
    "deferred": (State.DEFERRED, frozenset()),
}


def run_state_status(state: State, flags: Iterable[Flag] = ()) -> str:
    """The seed-000 run-state status for a ticket's state and flags."""
    if not state.is_terminal and Flag.BLOCKED in frozenset(flags):
        return "blocked"
    return _RUN_STATE_BY_STATE[state]


def from_run_state_status(value: str) -> tuple[State, frozenset[Flag]] | None:
    """The first (state, flags) a run-state status stands for, or None for a value outside the vocabulary."""
    return _STATE_BY_RUN_STATE.get(value.strip().lower())


# -- (c) token counts ------------------------------------------------------------------------------------

_TOKENS = re.compile(r"^(?P<number>\d+(?:[,_]\d{3})*(?:\.\d+)?|\.\d+)\s*(?P<unit>[kKmM]?)$")
_UNITS = {"": Decimal(1), "k": Decimal(1000), "m": Decimal(1_000_000)}


def parse_tokens(text: str) -> int:
    """``8K`` → 8000, ``4.2k`` → 4200, ``1.5M`` → 1500000, ``800`` → 800; ValueError otherwise.

    A fraction of a token (``1.2345K``) rounds half up to a whole token.
    """
    match = _TOKENS.match(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a token count (for example 800, 8K, 4.2K or 1.5M)")
    try:
        number = Decimal(match["number"].replace(",", "").replace("_", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise ValueError(f"{text.strip()!r} is not a token count") from None
    scaled = number * _UNITS[match["unit"].lower()]
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_tokens(tokens: int) -> str:
    """Seed 001's style, exactly: 800 → ``800``, 8000 → ``8K``, 4200 → ``4.2K``, 1500000 → ``1.5M``."""
    if tokens < 0:
        raise ValueError(f"token count must not be negative, got {tokens}")
    if tokens < 1000:
        return str(tokens)
    if tokens < 1_000_000:
        unit, scale = "K", Decimal(1000)
    else:
        unit, scale = "M", Decimal(1_000_000)
    text = format(Decimal(tokens) / scale, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + unit
