"""docs/tasks/orchestrator-learnings.json: seed 001's variance learnings, read for estimate corrections.

Accepted shapes: a JSON list of records, or an object with a ``learnings`` list (what a template may wrap them
in). A malformed file is an InputError naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, RootModel

from conveyor.adapters.structured_text import load_json, parse_model, read_text
from conveyor.domain.learning import LearningRecord

LEARNINGS_PATH = "docs/tasks/orchestrator-learnings.json"


class _Wrapped(BaseModel):
    learnings: list[LearningRecord] = []


class _Bare(RootModel[list[LearningRecord]]):
    pass


def read_learnings(repo: Path) -> list[LearningRecord]:
    path = repo / LEARNINGS_PATH
    if not path.exists():
        return []
    text = read_text(path, LEARNINGS_PATH)
    data = load_json(text, LEARNINGS_PATH)
    if isinstance(data, list):
        return list(parse_model(_Bare, data, text, LEARNINGS_PATH).root)
    return list(parse_model(_Wrapped, data, text, LEARNINGS_PATH).learnings)
