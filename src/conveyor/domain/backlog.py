"""The backlog as a DAG: validation, derived ``blocks``, critical paths, the ready set and deadlock.

Edges run from a dependency to its dependent. Functions are pure and iterative (no recursion limit on a
10,000-ticket chain).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from conveyor.domain.errors import DependencyCycleError, UnknownDependencyError
from conveyor.domain.ticket import Severity, State, Ticket

Weight = Callable[[Ticket], float]


def unit_weight(_: Ticket) -> float:
    return 1.0


def estimate_weight(ticket: Ticket) -> float:
    """Remaining work by estimate; tickets without an estimate count as one thousand tokens."""
    return float(ticket.estimate_tokens or 1000)


@dataclass(frozen=True)
class Deadlock:
    """Work is left, nothing is ready and nothing is running. ``holds`` maps each stuck ticket to why."""

    holds: Mapping[str, str]

    def describe(self) -> str:
        lines = [f"deadlock: {len(self.holds)} ticket(s) left, none ready, none running"]
        lines += [f"  {tid}: {why}" for tid, why in sorted(self.holds.items())]
        return "\n".join(lines)


class Backlog:
    """An ordered collection of tickets with unique ids."""

    def __init__(self, tickets: Iterable[Ticket]) -> None:
        self._tickets: dict[str, Ticket] = {}
        for ticket in tickets:
            if ticket.id in self._tickets:
                raise ValueError(f"duplicate ticket id {ticket.id}")
            self._tickets[ticket.id] = ticket

    # -- access -----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Ticket]:
        return iter(self._tickets.values())

    def __len__(self) -> int:
        return len(self._tickets)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._tickets

    def __getitem__(self, ticket_id: str) -> Ticket:
        return self._tickets[ticket_id]

    @property
    def tickets(self) -> list[Ticket]:
        return list(self._tickets.values())

    def replace(self, ticket: Ticket) -> Backlog:
        """A new backlog with ``ticket`` replacing the one of the same id (or appended)."""
        merged = dict(self._tickets)
        merged[ticket.id] = ticket
        return Backlog(merged.values())

    @cached_property
    def blocks(self) -> dict[str, list[str]]:
        """For each ticket, the tickets that depend on it (seed 001's derived ``blocks`` column)."""
        out: dict[str, list[str]] = {tid: [] for tid in self._tickets}
        for ticket in self._tickets.values():
            for dep in ticket.depends_on:
                if dep in out:
                    out[dep].append(ticket.id)
        return out

    # -- validation -------------------------------------------------------------------------------
    def unknown_dependencies(self) -> dict[str, list[str]]:
        return {
            t.id: missing
            for t in self._tickets.values()
            if (missing := [d for d in t.depends_on if d not in self._tickets])
        }

    def find_cycle(self) -> list[str] | None:
        """One dependency cycle as a path that starts and ends on the same id, or None."""
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self._tickets, white)
        for root in self._tickets:
            if colour[root] != white:
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            path: list[str] = [root]
            colour[root] = grey
            while stack:
                node, index = stack[-1]
                deps = [d for d in self._tickets[node].depends_on if d in self._tickets]
                if index < len(deps):
                    stack[-1] = (node, index + 1)
                    nxt = deps[index]
                    if colour[nxt] == grey:
                        start = path.index(nxt)
                        # Report in dependency-to-dependent direction: a -> b means b depends on a.
                        return list(reversed([*path[start:], nxt]))
                    if colour[nxt] == white:
                        colour[nxt] = grey
                        stack.append((nxt, 0))
                        path.append(nxt)
                else:
                    colour[node] = black
                    stack.pop()
                    path.pop()
        return None

    def validate(self) -> None:
        """Raise on the first unknown dependency, then on a cycle."""
        for tid, missing in self.unknown_dependencies().items():
            raise UnknownDependencyError(tid, missing)
        cycle = self.find_cycle()
        if cycle is not None:
            raise DependencyCycleError(cycle)

    def topological_order(self) -> list[str]:
        """Dependencies before dependents; ties keep backlog order (Kahn's algorithm)."""
        self.validate()
        indegree = {tid: len(t.depends_on) for tid, t in self._tickets.items()}
        position = {tid: i for i, tid in enumerate(self._tickets)}
        heap = [(position[tid], tid) for tid, d in indegree.items() if d == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            _, tid = heapq.heappop(heap)
            order.append(tid)
            for child in self.blocks[tid]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(heap, (position[child], child))
        return order

    # -- critical path ----------------------------------------------------------------------------
    def remaining_path_lengths(self, weight: Weight = unit_weight) -> dict[str, float]:
        """For each ticket, the heaviest chain of unfinished work from it through its dependents.

        Terminal tickets weigh nothing, so the figure is the work that still hangs on the ticket.
        """
        order = self.topological_order()
        length: dict[str, float] = {}
        for tid in reversed(order):
            ticket = self._tickets[tid]
            own = 0.0 if ticket.state.is_terminal else weight(ticket)
            length[tid] = own + max((length[c] for c in self.blocks[tid]), default=0.0)
        return length

    def critical_path(self, weight: Weight = unit_weight) -> tuple[list[str], float]:
        """The heaviest dependency chain of unfinished work, and its weight."""
        lengths = self.remaining_path_lengths(weight)
        unfinished = [tid for tid, t in self._tickets.items() if not t.state.is_terminal]
        if not unfinished:
            return [], 0.0
        position = {tid: i for i, tid in enumerate(self._tickets)}

        def heaviest(ids: Iterable[str]) -> str:
            return max(ids, key=lambda t: (lengths[t], -position[t]))

        # Finished tickets weigh nothing, so the heaviest chain can always start and end on unfinished work.
        current = heaviest(unfinished)
        total = lengths[current]
        path = [current]
        while self.blocks[current]:
            current = heaviest(self.blocks[current])
            path.append(current)
        while path and self._tickets[path[-1]].state.is_terminal:
            path.pop()
        return path, total

    # -- scheduling -------------------------------------------------------------------------------
    def dependencies_satisfied(self, ticket: Ticket) -> bool:
        return all(self._tickets[d].state.satisfies_dependents for d in ticket.depends_on)

    def ready(self, weight: Weight = unit_weight) -> list[Ticket]:
        """Tickets that may start now, best first.

        Queued, not blocked or awaiting approval, every dependency done (or skipped / obsolete); ordered by
        severity, then the longest remaining critical path, then the fewest dependencies, then id.
        """
        lengths = self.remaining_path_lengths(weight)
        candidates = [
            t
            for t in self._tickets.values()
            if t.state is State.QUEUED and not t.is_held and self.dependencies_satisfied(t)
        ]
        no_severity = len(Severity)
        return sorted(
            candidates,
            key=lambda t: (
                t.severity.rank if t.severity else no_severity,
                -lengths[t.id],
                len(t.depends_on),
                t.id,
            ),
        )

    def running(self) -> list[Ticket]:
        return [t for t in self._tickets.values() if t.state.is_active and not t.is_held]

    def remaining(self) -> list[Ticket]:
        return [t for t in self._tickets.values() if not t.state.is_terminal]

    def deadlock(self) -> Deadlock | None:
        """Work left, nothing ready, nothing running: say why each remaining ticket is stuck."""
        remaining = self.remaining()
        if not remaining or self.ready() or self.running():
            return None
        holds: dict[str, str] = {}
        for ticket in remaining:
            if ticket.is_held:
                holds[ticket.id] = ", ".join(sorted(f.value for f in ticket.flags))
                continue
            waiting = [
                f"{d} ({self._tickets[d].state.value})"
                for d in ticket.depends_on
                if not self._tickets[d].state.satisfies_dependents
            ]
            holds[ticket.id] = "waits on " + ", ".join(waiting) if waiting else ticket.state.value
        return Deadlock(holds)
