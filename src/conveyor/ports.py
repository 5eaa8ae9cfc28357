"""Ports: the Protocols services depend on, implemented by adapters (and by the Prefect layer).

Only what built code uses lives here (ARCHITECTURE.md §1); the limiter port arrives with the capability that
needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from conveyor.domain.agent import AgentRequest, AgentResult
from conveyor.domain.command import CommandResult
from conveyor.domain.merge import MergeOutcome, MergeRequest


class Clock(Protocol):
    def __call__(self) -> datetime: ...


Sleep = Callable[[float], None]


def utcnow() -> datetime:
    """The real clock (timezone-aware UTC); tests pass their own."""
    return datetime.now(UTC)


class AgentBackend(Protocol):
    """Every LLM call in Conveyor goes through one of these (ARCHITECTURE.md §5)."""

    @property
    def name(self) -> str: ...

    def run(self, request: AgentRequest) -> AgentResult: ...


class Sandbox(Protocol):
    """Runs an argv list (never through a shell) confined as the implementation says."""

    @property
    def name(self) -> str: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        output_cap: int = 16_000,
    ) -> CommandResult: ...


class ArtifactSink(Protocol):
    """Where a flow publishes what a person reads: Prefect artifacts in the UI, or nowhere outside Prefect."""

    def table(self, key: str, rows: list[dict[str, Any]], description: str) -> None: ...

    def markdown(self, key: str, markdown: str, description: str) -> None: ...


class NoArtifacts:
    """An ArtifactSink that keeps what it was given (outside Prefect, and in tests)."""

    def __init__(self) -> None:
        self.published: dict[str, Any] = {}

    def table(self, key: str, rows: list[dict[str, Any]], description: str) -> None:
        self.published[key] = rows

    def markdown(self, key: str, markdown: str, description: str) -> None:
        self.published[key] = markdown


class EventSink(Protocol):
    """Where transitions are announced for automations to react to (Prefect events; nowhere outside Prefect)."""

    def emit(self, event: str, *, resource: dict[str, str], payload: dict[str, Any]) -> None: ...


class NoEvents:
    """An EventSink that keeps what it was given (outside Prefect, and in tests)."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    def emit(self, event: str, *, resource: dict[str, str], payload: dict[str, Any]) -> None:
        self.emitted.append((event, resource, payload))


class Forge(Protocol):
    """Where a ready ticket branch is integrated into main (ARCHITECTURE.md §4): local, later github."""

    @property
    def name(self) -> str: ...

    def integrate(self, request: MergeRequest) -> MergeOutcome: ...

    def revert(self, commit: str, message: str) -> str: ...

    def merged_commit(self, ticket_id: str) -> str | None: ...

    def push_main(self) -> bool: ...


class Limiter(Protocol):
    """Caps concurrent LLM calls across runs (ARCHITECTURE.md §6): a slot is held for the length of one call.

    Slots are leased: a process killed while holding one does not keep it (the lease expires).
    """

    def slot(self) -> AbstractContextManager[None]: ...


class NoLimiter:
    """No cap (outside Prefect, and in tests of the services)."""

    def slot(self) -> AbstractContextManager[None]:
        return nullcontext()
