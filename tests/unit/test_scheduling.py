"""Scheduling: ready-set order, touch-set overlap, worker slots, budget modes and the conflict predictor."""

from __future__ import annotations

import itertools
from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.backlog import Backlog
from conveyor.domain.budget import BudgetMode
from conveyor.domain.scheduling import (
    REASON_FROZEN,
    REASON_NO_WORKER,
    Dispatch,
    _globs_intersect,
    order_ready,
    plan_dispatch,
    touch_sets_overlap,
)
from conveyor.domain.ticket import Severity, State, Ticket


def tid(n: int) -> str:
    return f"CV-FEAT-{n:03d}"


def make(n: int, deps: tuple[int, ...] = (), touch: tuple[str, ...] = (), **kw: object) -> Ticket:
    return Ticket.model_validate(
        {"id": tid(n), "title": f"t{n}", "depends_on": tuple(tid(d) for d in deps), "touch_set": touch, **kw}
    )


def touching(*entries: str) -> Ticket:
    return make(1, touch=entries)


def ids(tickets: list[Ticket]) -> list[str]:
    return [t.id for t in tickets]


# -- order ------------------------------------------------------------------------------------------------


def test_longer_critical_path_beats_severity() -> None:
    backlog = Backlog(
        [
            make(1, severity=Severity.CRITICAL, estimate_tokens=5000),
            make(2, severity=Severity.LOW, estimate_tokens=5000),
            make(3, (2,), estimate_tokens=5000),  # hangs on 2: its chain is twice as heavy
        ]
    )
    assert ids(order_ready(backlog)) == [tid(2), tid(1)]


def test_heavier_chain_goes_first_by_estimate_not_by_count() -> None:
    backlog = Backlog(
        [
            make(1, estimate_tokens=1000),
            make(2, (1,), estimate_tokens=1000),
            make(3, (2,), estimate_tokens=1000),  # chain of three, 3k
            make(4, estimate_tokens=20_000),  # single ticket, 20k
        ]
    )
    assert ids(order_ready(backlog)) == [tid(4), tid(1)]


def test_ties_fall_back_to_severity_then_phase_then_dependencies_then_id() -> None:
    backlog = Backlog(
        [
            make(9),
            make(1, severity=Severity.LOW, phase=1),
            make(2, severity=Severity.HIGH, phase=3),
            make(3, severity=Severity.HIGH, phase=2),
            make(4),  # no severity, no phase: last
            make(5, severity=Severity.HIGH),  # high, no phase: after the high ones with a phase
            make(6, severity=Severity.CRITICAL, phase=4),
            make(7, severity=Severity.HIGH, phase=2),
            make(8, (10,), severity=Severity.HIGH, phase=2),  # one (done) dependency: after 3 and 7
            make(10, state=State.DONE),
        ]
    )
    order = ids(order_ready(backlog))
    # Nothing unfinished hangs on a ready ticket, so every chain weighs the same 1000 tokens.
    assert order == [tid(6), tid(3), tid(7), tid(8), tid(2), tid(5), tid(1), tid(4), tid(9)]


def test_order_ready_only_holds_ready_tickets() -> None:
    backlog = Backlog([make(1, state=State.IMPLEMENTING), make(2, (1,)), make(3, state=State.DONE), make(4)])
    assert ids(order_ready(backlog)) == [tid(4)]


# -- overlap ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("src/app/models.py",), ("src/app/models.py",)),
        (("src/app/",), ("src/app/models.py",)),
        (("src/app",), ("src/app/deep/er/x.py",)),  # a path with children is a directory
        (("src/app/",), ("src/app",)),
        (("src/app",), ("src/app/*.py",)),  # the glob names something below the plain path
        (("src/app/",), ("src/a*/x.py",)),
        (("./src/app/",), ("src//app/x.py",)),
        (("src/*.py",), ("src/app/models.py",)),  # fnmatch's * crosses /
        (("src/app/*.py",), ("src/app/models.py",)),
        (("src/**/*.py",), ("src/models.py",)),  # **/ matches zero directories, as in git
        (("src/*.py",), ("src/a*",)),  # two globs with a common match: src/a.py
        (("src/app/",), ("src/*/views.py",)),
        (("docs/*.md", "src/x.py"), ("tests/y.py", "src/x.py")),
        (("src/mod[0-9].py",), ("src/mod7.py",)),
        (("src/mod[!0-9].py",), ("src/modx.py",)),
        (("src/mod?.py",), ("src/mod[ab].py",)),
        (("src/[ab]*.py",), ("src/[bc]*.py",)),
        ((".",), ("anything/at/all.txt",)),
        (("src/[unclosed",), ("src/[unclosed",)),
    ],
)
def test_overlapping_touch_sets(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert touch_sets_overlap(touching(*a), touching(*b))
    assert touch_sets_overlap(touching(*b), touching(*a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((), ()),
        ((), ("src/app/",)),
        (("src/app/",), ()),
        (("src/app/models.py",), ("src/app/views.py",)),
        (("src/app/",), ("src/application.py",)),  # a prefix of the name is not a parent directory
        (("src/app/",), ("src/ap",)),
        (("src/*.py",), ("src/*.md",)),
        (("src/README.md",), ("src/*.py",)),  # a plain path is a file unless named as a parent
        (("src/app",), ("src/a*/x.py",)),
        (("docs/*",), ("src/*",)),
        (("src/mod[0-9].py",), ("src/modx.py",)),
        (("src/mod[!0-9].py",), ("src/mod7.py",)),
        (("src/[ab]*.py",), ("src/[cd]*.py",)),
        (("src/mod[z-a].py",), ("src/mod?.py",)),  # a reversed range matches nothing
        (("src/Models.py",), ("src/models.py",)),  # case-sensitive
    ],
)
def test_disjoint_touch_sets(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert not touch_sets_overlap(touching(*a), touching(*b))
    assert not touch_sets_overlap(touching(*b), touching(*a))


# Characters that tell every token of the generated globs apart: each literal, one more letter inside
# [a-x] and one outside it, so a shortest common match, if any, is spelt from these.
_ALPHABET = "abx/.c[z"
_GLOB_PARTS = st.sampled_from([*"ab/.x", "[", "*", "?", "[ab]", "[!a]", "[a-x]", "[z-a]"])


def _brute_force_intersect(a: str, b: str, max_len: int) -> bool:
    return any(
        fnmatchcase(word, a) and fnmatchcase(word, b)
        for n in range(max_len + 1)
        for word in map("".join, itertools.product(_ALPHABET, repeat=n))
    )


@given(
    a=st.lists(_GLOB_PARTS, min_size=1, max_size=4).map("".join),
    b=st.lists(_GLOB_PARTS, min_size=1, max_size=4).map("".join),
)
def test_glob_intersection_agrees_with_brute_force_fnmatch(a: str, b: str) -> None:
    # A common match needs at most one character per non-star token of each pattern.
    bound = sum(1 for c in a + b if c != "*")
    if bound > 5:
        return
    assert _globs_intersect(a, b) == _brute_force_intersect(a, b, bound)


@given(path=st.text(alphabet="ab/.x", min_size=1, max_size=6), glob=st.lists(_GLOB_PARTS, max_size=5).map("".join))
def test_path_against_glob_agrees_with_fnmatch(path: str, glob: str) -> None:
    assert _globs_intersect(path, glob) == fnmatchcase(path, glob)


# -- dispatch ---------------------------------------------------------------------------------------------


def test_slots_are_workers_minus_running() -> None:
    backlog = Backlog([make(1, state=State.IMPLEMENTING, touch=("a",)), make(2), make(3), make(4)])
    running = backlog.running()
    plan = plan_dispatch(backlog, running, workers=3, mode=BudgetMode.NORMAL)
    assert ids(plan.start) == [tid(2), tid(3)]
    assert plan.held_back == {tid(4): REASON_NO_WORKER}


def test_more_running_than_workers_never_goes_negative() -> None:
    backlog = Backlog([make(1, state=State.IMPLEMENTING), make(2, state=State.QA), make(3)])
    plan = plan_dispatch(backlog, backlog.running(), workers=1, mode=BudgetMode.NORMAL)
    assert plan == Dispatch(start=[], held_back={tid(3): REASON_NO_WORKER})


def test_tickets_already_running_are_skipped() -> None:
    # The caller may pass a ticket it just dispatched while the backlog snapshot still says queued.
    backlog = Backlog([make(1), make(2)])
    plan = plan_dispatch(backlog, [backlog[tid(1)]], workers=2, mode=BudgetMode.NORMAL)
    assert ids(plan.start) == [tid(2)]
    assert tid(1) not in plan.held_back


def test_overlap_with_running_holds_back() -> None:
    backlog = Backlog([make(2, state=State.REVIEWING, touch=("src/app/",)), make(3, touch=("src/app/x.py",)), make(4)])
    plan = plan_dispatch(backlog, backlog.running(), workers=3, mode=BudgetMode.NORMAL)
    assert ids(plan.start) == [tid(4)]
    assert plan.held_back == {tid(3): f"touch set overlaps {tid(2)} (running)"}


def test_overlap_with_chosen_holds_back_the_later_one() -> None:
    backlog = Backlog(
        [
            make(1, touch=("src/*.py",), estimate_tokens=9000),
            make(2, touch=("src/a.py",)),
            make(3, touch=("docs/",)),
            make(4),  # no touch set: overlaps nothing
        ]
    )
    plan = plan_dispatch(backlog, [], workers=4, mode=BudgetMode.NORMAL)
    assert ids(plan.start) == [tid(1), tid(3), tid(4)]
    assert plan.held_back == {tid(2): f"touch set overlaps {tid(1)} (starting)"}


def test_held_ticket_does_not_use_a_slot() -> None:
    backlog = Backlog([make(1, touch=("a",), estimate_tokens=9000), make(2, touch=("a",)), make(3, touch=("b",))])
    plan = plan_dispatch(backlog, [], workers=2, mode=BudgetMode.NORMAL)
    assert ids(plan.start) == [tid(1), tid(3)]


def test_conservative_mode_starts_one() -> None:
    backlog = Backlog([make(1), make(2), make(3)])
    plan = plan_dispatch(backlog, [], workers=4, mode=BudgetMode.CONSERVATIVE)
    assert ids(plan.start) == [tid(1)]
    assert set(plan.held_back) == {tid(2), tid(3)}
    assert all(reason.startswith(REASON_NO_WORKER) for reason in plan.held_back.values())
    assert "conservative" in plan.held_back[tid(2)]


def test_conservative_mode_with_one_running_starts_none() -> None:
    backlog = Backlog([make(1, state=State.IMPLEMENTING), make(2)])
    plan = plan_dispatch(backlog, backlog.running(), workers=4, mode=BudgetMode.CONSERVATIVE)
    assert plan.start == []
    assert tid(2) in plan.held_back


def test_frozen_starts_nothing_and_holds_every_ready_ticket() -> None:
    backlog = Backlog([make(1), make(2, touch=("a",)), make(3, (1,))])
    calls: list[tuple[str, str]] = []

    def predictor(a: Ticket, b: Ticket) -> bool:
        calls.append((a.id, b.id))
        return False

    plan = plan_dispatch(backlog, [], workers=2, mode=BudgetMode.FROZEN, conflicts=predictor)
    assert plan == Dispatch(start=[], held_back={tid(1): REASON_FROZEN, tid(2): REASON_FROZEN})
    assert calls == []


def test_zero_workers_starts_nothing() -> None:
    backlog = Backlog([make(1)])
    assert plan_dispatch(backlog, [], workers=0, mode=BudgetMode.NORMAL).held_back == {tid(1): REASON_NO_WORKER}


def test_conflict_callback_holds_back() -> None:
    backlog = Backlog(
        [
            make(1, state=State.IMPLEMENTING, touch=("a",)),
            make(2, touch=("b",), estimate_tokens=9000),
            make(3, touch=("c",), estimate_tokens=5000),
            make(4, touch=("d",)),
        ]
    )
    clashing = {frozenset({tid(1), tid(3)}), frozenset({tid(2), tid(4)})}
    calls: list[tuple[str, str]] = []

    def predictor(a: Ticket, b: Ticket) -> bool:
        calls.append((a.id, b.id))
        return frozenset({a.id, b.id}) in clashing

    plan = plan_dispatch(backlog, backlog.running(), workers=4, mode=BudgetMode.NORMAL, conflicts=predictor)
    assert ids(plan.start) == [tid(2)]
    assert plan.held_back == {
        tid(3): f"predicted merge conflict with {tid(1)} (running)",
        tid(4): f"predicted merge conflict with {tid(2)} (starting)",
    }
    assert all(a != b for a, b in calls)  # a candidate is never checked against itself


def test_touch_sets_are_checked_before_the_predictor() -> None:
    backlog = Backlog([make(1, state=State.IMPLEMENTING, touch=("a",)), make(2, touch=("a",))])

    def predictor(a: Ticket, b: Ticket) -> bool:
        raise AssertionError("the touch sets already decide")

    plan = plan_dispatch(backlog, backlog.running(), workers=2, mode=BudgetMode.NORMAL, conflicts=predictor)
    assert plan.held_back == {tid(2): f"touch set overlaps {tid(1)} (running)"}


def test_predictor_is_not_called_without_a_free_slot() -> None:
    backlog = Backlog([make(1), make(2)])

    def predictor(a: Ticket, b: Ticket) -> bool:
        raise AssertionError("no slot, no git call")

    plan = plan_dispatch(backlog, [], workers=1, mode=BudgetMode.NORMAL, conflicts=predictor)
    assert ids(plan.start) == [tid(1)]


_TOUCH_ENTRIES = st.sampled_from(["src/", "src/a.py", "src/b.py", "src/*.md", "docs/", "docs/x.md", "tests/*", "b*"])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Backlog, list[Ticket], int, BudgetMode]:
    size = draw(st.integers(1, 12))
    tickets = []
    for n in range(size):
        deps = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 2))) if n else []
        state = draw(st.sampled_from([State.QUEUED, State.QUEUED, State.QUEUED, State.DONE, State.IMPLEMENTING]))
        touch = tuple(draw(st.lists(_TOUCH_ENTRIES, unique=True, max_size=3)))
        severity = draw(st.none() | st.sampled_from(list(Severity)))
        tickets.append(make(n, tuple(deps), touch, state=state, severity=severity))
    backlog = Backlog(tickets)
    workers = draw(st.integers(0, 5))
    mode = draw(st.sampled_from(list(BudgetMode)))
    return backlog, backlog.running(), workers, mode


@given(scenario=scenarios(), seed=st.integers(0, 2**16))
def test_chosen_set_fits_slots_and_never_overlaps(
    scenario: tuple[Backlog, list[Ticket], int, BudgetMode], seed: int
) -> None:
    backlog, running, workers, mode = scenario
    # A deterministic pseudo-random clash relation, so hypothesis can replay a failure.
    pairs = itertools.combinations(sorted(t.id for t in backlog), 2)
    clashing = {frozenset({a, b}) for a, b in pairs if (31 * int(a[-3:]) + 17 * int(b[-3:]) + seed) % 5 == 0}

    def predictor(a: Ticket, b: Ticket) -> bool:
        return frozenset({a.id, b.id}) in clashing

    plan = plan_dispatch(backlog, running, workers=workers, mode=mode, conflicts=predictor)
    limit = {BudgetMode.NORMAL: workers, BudgetMode.CONSERVATIVE: min(1, workers), BudgetMode.FROZEN: 0}[mode]
    assert len(plan.start) <= max(0, limit - len(running))
    for a, b in itertools.combinations([*plan.start, *running], 2):
        if a in plan.start or b in plan.start:
            assert not touch_sets_overlap(a, b)
            assert frozenset({a.id, b.id}) not in clashing
    # Every ready ticket is accounted for exactly once.
    ready = {t.id for t in order_ready(backlog)}
    assert {t.id for t in plan.start} | set(plan.held_back) == ready
    assert not {t.id for t in plan.start} & set(plan.held_back)
