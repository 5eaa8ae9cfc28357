"""Ports: the Protocols services depend on, implemented by adapters (and by the Prefect layer).

Only what the built services use lives here; the agent, git, forge, sandbox, human-gate, event, artifact
and limiter ports arrive with the capabilities that need them (ARCHITECTURE.md §1).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> datetime: ...


Sleep = Callable[[float], None]


def utcnow() -> datetime:
    """The real clock (timezone-aware UTC); tests pass their own."""
    return datetime.now(UTC)
