"""docs/tasks/orchestrator-learnings.json is read in both accepted shapes; a malformed one names file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.adapters.learnings_file import LEARNINGS_PATH, read_learnings
from conveyor.domain.errors import InputError
from conveyor.domain.ticket import TaskType

RECORD = {
    "task_id": "UC-CLEAN-003",
    "task_type": "BULK_CLEANUP",
    "estimate_k": 30,
    "actual_k": 112.8,
    "variance_pct": 276,
    "characteristics": {"file_count": 200, "keywords": ["object injection", "type guards"]},
    "analysis": "Multi-file type guards severely underestimated",
    "captured_at": "2026-02-05T19:45:00Z",
}


def write(repo: Path, data: object) -> None:
    path = repo / LEARNINGS_PATH
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data, indent=2))


def test_missing_file_means_no_learnings(tmp_path: Path) -> None:
    assert read_learnings(tmp_path) == []


@pytest.mark.parametrize("shape", ["list", "wrapped"])
def test_seed_records_are_read(tmp_path: Path, shape: str) -> None:
    write(tmp_path, [RECORD] if shape == "list" else {"learnings": [RECORD]})
    (record,) = read_learnings(tmp_path)
    assert record.task_type is TaskType.BULK_CLEANUP and record.actual_k == 112.8
    assert record.characteristics.file_count == 200


def test_malformed_record_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, [RECORD, {**RECORD, "estimate_k": "lots"}])
    with pytest.raises(InputError) as info:
        read_learnings(tmp_path)
    problem = info.value.problems[0]
    assert problem.path == LEARNINGS_PATH and problem.line is not None and problem.line > 12
