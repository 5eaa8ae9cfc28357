"""Conveyor's tracking paths: the files the loop writes on main between merges (ARCHITECTURE.md §3).

A commit that touches only these paths never counts as "main moved" for the merge queue, so a checkpoint
commit never triggers a QA re-run; and a ticket's change may not touch them (the loop is their only writer).
"""

from __future__ import annotations

from collections.abc import Iterable

TRACKING_FILES = frozenset(
    {
        "docs/TASKS.md",
        "automations/run-state.json",
        "automations/run-queue.json",
        "docs/tasks/orchestrator-learnings.json",
        "docs/reports/deferred/deferred-errors.md",
    }
)
TRACKING_PREFIXES = ("automations/runs/", "automations/memory/", ".conveyor/")


def is_tracking_path(path: str) -> bool:
    return path in TRACKING_FILES or path.startswith(TRACKING_PREFIXES)


def code_paths(paths: Iterable[str]) -> list[str]:
    """The paths that are not tracking paths, in the given order."""
    return [p for p in paths if not is_tracking_path(p)]
