"""Ports: the Protocols services depend on, implemented by adapters (and by the Prefect layer).

Only what built code uses lives here; the git, forge, human-gate, event, artifact and limiter ports arrive
with the capabilities that need them (ARCHITECTURE.md §1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from conveyor.domain.agent import AgentRequest, AgentResult
from conveyor.domain.command import CommandResult


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
