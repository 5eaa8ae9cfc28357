"""The backlog DAG, checked against networkx as an independent oracle."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.backlog import Backlog, estimate_weight, unit_weight
from conveyor.domain.errors import DependencyCycleError, UnknownDependencyError
from conveyor.domain.ticket import Flag, Severity, State, Ticket


def tid(n: int) -> str:
    return f"MS-CQ-{n:03d}"


def make(n: int, deps: tuple[int, ...] = (), **kw: object) -> Ticket:
    return Ticket.model_validate({"id": tid(n), "title": f"t{n}", "depends_on": tuple(tid(d) for d in deps), **kw})


def graph(backlog: Backlog) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(t.id for t in backlog)
    g.add_edges_from((dep, t.id) for t in backlog for dep in t.depends_on if dep in backlog)
    return g


@st.composite
def dags(draw: st.DrawFn) -> Backlog:
    size = draw(st.integers(1, 25))
    tickets = []
    for n in range(size):
        deps = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(n, 4))) if n else []
        state = draw(st.sampled_from([State.QUEUED, State.QUEUED, State.DONE, State.IMPLEMENTING, State.SKIPPED]))
        estimate = draw(st.integers(1, 40)) * 1000
        tickets.append(make(n, tuple(deps), state=state, estimate_tokens=estimate))
    order = draw(st.permutations(tickets))
    return Backlog(order)


@st.composite
def graphs_with_cycles(draw: st.DrawFn) -> Backlog:
    size = draw(st.integers(2, 12))
    edges = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)), min_size=1, max_size=30))
    deps: dict[int, set[int]] = {n: set() for n in range(size)}
    for a, b in edges:
        if a != b:
            deps[a].add(b)
    return Backlog(make(n, tuple(sorted(d))) for n, d in deps.items())


@given(graphs_with_cycles())
def test_cycle_detection_matches_networkx(backlog: Backlog) -> None:
    g = graph(backlog)
    cycle = backlog.find_cycle()
    assert (cycle is None) == nx.is_directed_acyclic_graph(g)
    if cycle is not None:
        assert cycle[0] == cycle[-1] and len(cycle) >= 3
        for a, b in itertools.pairwise(cycle):
            assert g.has_edge(a, b), f"{a} -> {b} is not an edge"  # b depends on a
        with pytest.raises(DependencyCycleError) as info:
            backlog.validate()
        assert " -> ".join(info.value.cycle) in str(info.value)


@given(dags())
def test_topological_order_is_valid(backlog: Backlog) -> None:
    order = backlog.topological_order()
    assert sorted(order) == sorted(t.id for t in backlog)
    position = {t: i for i, t in enumerate(order)}
    for a, b in graph(backlog).edges:
        assert position[a] < position[b]


@given(dags())
def test_critical_path_matches_networkx(backlog: Backlog) -> None:
    g = graph(backlog)
    for node in g.nodes:
        g.nodes[node]["w"] = 0.0 if backlog[node].state.is_terminal else estimate_weight(backlog[node])
    # networkx weighs edges: put each node's weight on its incoming edges from a virtual source.
    h = nx.DiGraph()
    for a, b in g.edges:
        h.add_edge(a, b, weight=g.nodes[b]["w"])
    for node in g.nodes:
        h.add_edge("SOURCE", node, weight=g.nodes[node]["w"])
    expected = nx.dag_longest_path_length(h, weight="weight")
    path, total = backlog.critical_path(estimate_weight)
    assert total == pytest.approx(expected)
    assert sum(0.0 if backlog[t].state.is_terminal else estimate_weight(backlog[t]) for t in path) == pytest.approx(
        total
    )
    for a, b in itertools.pairwise(path):
        assert g.has_edge(a, b)
    lengths = backlog.remaining_path_lengths(unit_weight)
    for node in g.nodes:
        descendants = nx.descendants(g, node) | {node}
        sub = g.subgraph(descendants)
        unfinished = [n for n in nx.topological_sort(sub) if not backlog[n].state.is_terminal]
        assert lengths[node] <= len(unfinished)


@given(dags())
def test_ready_set_properties(backlog: Backlog) -> None:
    ready = backlog.ready()
    for t in ready:
        assert t.state is State.QUEUED
        assert all(backlog[d].state in {State.DONE, State.SKIPPED, State.OBSOLETE} for d in t.depends_on)
    not_ready = [t for t in backlog if t.state is State.QUEUED and t not in ready]
    for t in not_ready:
        assert any(not backlog[d].state.satisfies_dependents for d in t.depends_on)


def test_unknown_dependency() -> None:
    backlog = Backlog([make(1, (2,)), make(3)])
    assert backlog.unknown_dependencies() == {tid(1): [tid(2)]}
    with pytest.raises(UnknownDependencyError, match="MS-CQ-001 depends on unknown ticket"):
        backlog.validate()


def test_cycle_path_is_reported() -> None:
    backlog = Backlog([make(1, (3,)), make(2, (1,)), make(3, (2,)), make(4)])
    with pytest.raises(DependencyCycleError) as info:
        backlog.validate()
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {tid(1), tid(2), tid(3)}


def test_blocks_is_derived() -> None:
    backlog = Backlog([make(1), make(2, (1,)), make(3, (1, 2))])
    assert backlog.blocks == {tid(1): [tid(2), tid(3)], tid(2): [tid(3)], tid(3): []}


def test_ready_order_severity_then_critical_path_then_fewest_deps_then_id() -> None:
    backlog = Backlog(
        [
            make(1, severity=Severity.LOW),
            make(2, severity=Severity.CRITICAL),
            make(3),  # no severity: after every severity
            make(4, severity=Severity.LOW),  # two tickets hang on it: longer remaining path than 1
            make(5, (4,)),
            make(6, (5,)),
            make(7, severity=Severity.LOW, state=State.DONE),
            make(8, (7,), severity=Severity.LOW),  # same path as 1, one more dependency
            make(9, severity=Severity.LOW),
        ]
    )
    assert [t.id for t in backlog.ready()] == [tid(2), tid(4), tid(1), tid(9), tid(8), tid(3)]


def test_held_tickets_are_not_ready_and_deadlock_is_reported() -> None:
    backlog = Backlog(
        [
            make(1, state=State.QA, flags=frozenset({Flag.BLOCKED, Flag.ESCALATED})),
            make(2, (1,)),
            make(3, state=State.DONE),
        ]
    )
    assert backlog.ready() == [] and backlog.running() == []
    deadlock = backlog.deadlock()
    assert deadlock is not None
    assert deadlock.holds == {tid(1): "blocked, escalated", tid(2): f"waits on {tid(1)} (qa)"}
    assert "deadlock: 2 ticket(s) left" in deadlock.describe()


def test_no_deadlock_while_work_runs_or_when_all_done() -> None:
    assert Backlog([make(1, state=State.IMPLEMENTING), make(2, (1,))]).deadlock() is None
    assert Backlog([make(1, state=State.DONE), make(2, state=State.OBSOLETE)]).deadlock() is None
    failed_dep = Backlog([make(1, state=State.FAILED), make(2, (1,))])
    deadlock = failed_dep.deadlock()
    assert deadlock is not None and deadlock.holds == {tid(2): f"waits on {tid(1)} (failed)"}


def test_long_chain_needs_no_recursion() -> None:
    chain = Backlog([make(0)] + [make(n, (n - 1,)) for n in range(1, 5000)])
    path, total = chain.critical_path()
    assert len(path) == 5000 and total == 5000
    assert [t.id for t in chain.ready()] == [tid(0)]


def test_critical_path_starts_and_ends_on_unfinished_work() -> None:
    backlog = Backlog([make(1, state=State.DONE), make(2, (1,)), make(3, (2,)), make(4, (3,), state=State.OBSOLETE)])
    assert backlog.critical_path() == ([tid(2), tid(3)], 2.0)
    assert Backlog([make(1, state=State.DONE)]).critical_path() == ([], 0.0)
