"""Ports: the Protocols services depend on, implemented by adapters (and by the Prefect layer).

Only what built code uses lives here; the git, forge, human-gate, event, artifact and limiter ports arrive
with the capabilities that need them (ARCHITECTURE.md §1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

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
