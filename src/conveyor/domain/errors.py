"""One error tree for Conveyor.

Every error a user can cause carries enough to act on: the file and line for bad input, both states for
an illegal transition, the cycle path for a dependency cycle. The CLI maps ``InputError`` to exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConveyorError(Exception):
    """Base of every error Conveyor raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file; ``line`` is 1-based, or None when the file as a whole is wrong."""

    path: str
    line: int | None
    message: str
    severity: str = "error"  # "error" stops the command; "warning" is reported and the command goes on

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class InputError(ConveyorError):
    """Bad input: one or more problems, each naming file and line. The file is never overwritten."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)

    @classmethod
    def single(cls, path: str, line: int | None, message: str) -> InputError:
        return cls([Problem(path, line, message)])


class IllegalTransitionError(ConveyorError):
    """A ticket was asked to move between two states the state machine does not connect."""

    def __init__(self, ticket_id: str, source: str, target: str, reason: str = "") -> None:
        self.ticket_id, self.source, self.target = ticket_id, source, target
        detail = f": {reason}" if reason else ""
        super().__init__(f"{ticket_id}: illegal transition {source} -> {target}{detail}")


class DependencyCycleError(ConveyorError):
    """The backlog's dependencies form a cycle; ``cycle`` lists it with the first id repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(cycle))


class UnknownDependencyError(ConveyorError):
    def __init__(self, ticket_id: str, missing: list[str]) -> None:
        self.ticket_id, self.missing = ticket_id, missing
        super().__init__(f"{ticket_id} depends on unknown ticket(s): {', '.join(missing)}")


class LeaseHeldError(ConveyorError):
    """Another live writer holds the repository lease."""


class NotFoundError(ConveyorError):
    """A named run, gate, workflow or ticket does not exist."""
