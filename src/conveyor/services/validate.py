"""``conveyor validate``: every Conveyor file of a repository, all problems at once, each with file and line."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from conveyor.adapters.build_spec_file import read_build_spec
from conveyor.adapters.gate_contracts import list_contracts, list_workflows, load_contract, load_workflow
from conveyor.adapters.state_files import (
    load_run_queue_if_exists,
    load_run_state_if_exists,
    run_queue_path,
    run_state_path,
)
from conveyor.adapters.tasks_md import read_tasks_file
from conveyor.domain.errors import InputError, Problem
from conveyor.services.backlog_loader import RUN_QUEUE_PATH, RUN_STATE_PATH, TASKS_PATH

T = TypeVar("T")


def _collect(problems: list[Problem], check: Callable[[], T]) -> T | None:
    try:
        return check()
    except InputError as exc:
        problems.extend(exc.problems)
        return None


def validate_repository(repo: Path) -> list[Problem]:
    """Errors and warnings of every file; an absent optional file is not a problem."""
    problems: list[Problem] = []
    _collect(problems, lambda: read_build_spec(repo))
    tasks = repo / TASKS_PATH
    document = None
    if tasks.exists():
        document = _collect(problems, lambda: read_tasks_file(tasks, TASKS_PATH))
        if document is not None:
            problems.extend(document.problems)
    else:
        problems.append(Problem(TASKS_PATH, None, "no backlog yet (conveyor init creates an empty one)", "warning"))
    queue = _collect(problems, lambda: load_run_queue_if_exists(run_queue_path(repo), RUN_QUEUE_PATH))
    _collect(problems, lambda: load_run_state_if_exists(run_state_path(repo), RUN_STATE_PATH))
    if document is not None and queue is not None:
        rows = {t.id for t in document.tickets()}
        problems.extend(
            Problem(RUN_QUEUE_PATH, None, f"{t.id} has no row in {TASKS_PATH}", "warning")
            for t in queue.tickets
            if t.id not in rows
        )
    for contract in list_contracts(repo):
        _collect(problems, partial(load_contract, repo, contract))
    for workflow in list_workflows(repo):
        _collect(problems, partial(load_workflow, repo, workflow))
    return problems
