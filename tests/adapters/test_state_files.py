"""run-state.json / run-queue.json on disk: round trips, line-numbered errors, versions, schema files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from conveyor.adapters.state_files import (
    load_run_queue,
    load_run_queue_if_exists,
    load_run_state,
    load_run_state_if_exists,
    parse_run_state,
    render_schema,
    run_queue_path,
    run_state_path,
    save_run_queue,
    save_run_state,
    schema_documents,
    stale_schemas,
    write_schemas,
)
from conveyor.domain.budget import BudgetLedger
from conveyor.domain.errors import InputError
from conveyor.domain.run_state import (
    Blocker,
    Checkpoint,
    Escalation,
    Lesson,
    Reward,
    RunQueue,
    RunState,
    RunStateStatus,
    StageRecord,
)
from conveyor.domain.ticket import Flag, Severity, SourceRef, State, Ticket

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def sample_state() -> RunState:
    state = RunState.start("RUN-20260301-0930", "acme/portal", T0, milestone="0.0.1", ticket_ids=["MMP-SEC-001"])
    stage = StageRecord(
        stage=State.REVIEWING,
        flags=(Flag.ESCALATED,),
        attempt=1,
        iterations=1,
        base_commit="a" * 40,
        branch_head="b" * 40,
        last_checkpoint=Checkpoint(name="implemented", at=T0),
    )
    state = state.with_status("MMP-SEC-001", RunStateStatus.IN_PROGRESS, stage, T0)
    state = state.add_ticket_blocker("MMP-SEC-001", Blocker(at=T0, reason="x", command="make test"))
    state = state.add_escalation("MMP-SEC-001", Escalation(at=T0, reason="why?"))
    state = state.add_lesson("MMP-SEC-001", Lesson(text="pin the clock", at=T0))
    state = state.update_ticket("MMP-SEC-001", T0, reward=Reward.of({"qa": 1.0}))
    return state.with_budget(BudgetLedger().position({"MMP-SEC-001": 0.5}), T0)


def sample_queue() -> RunQueue:
    tickets = [
        Ticket(id="MMP-SEC-001", title="one", severity=Severity.HIGH, source=SourceRef(file="a.py", lines="3")),
        Ticket(
            id="MMP-SEC-002",
            title="two",
            depends_on=("MMP-SEC-001",),
            flags=frozenset({Flag.BLOCKED, Flag.ESCALATED}),
            started_at=T0,
        ),
    ]
    return RunQueue.of(tickets, "MMP", milestone="0.0.1")


# -- round trips -----------------------------------------------------------------------------------------


def test_run_state_round_trip(tmp_path: Path) -> None:
    path = run_state_path(tmp_path)
    assert path == tmp_path / "automations" / "run-state.json"
    assert load_run_state_if_exists(path) is None
    state = sample_state()
    save_run_state(path, state)
    assert load_run_state(path) == state
    assert load_run_state_if_exists(path) == state
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.startswith('{\n  "schema_version": 1,\n  "run_id": "RUN-20260301-0930",')
    # Saving the loaded value again changes nothing: stable, diff-friendly output.
    save_run_state(path, load_run_state(path))
    assert path.read_text(encoding="utf-8") == text


def test_run_queue_round_trip(tmp_path: Path) -> None:
    path = run_queue_path(tmp_path)
    assert load_run_queue_if_exists(path) is None
    queue = sample_queue()
    save_run_queue(path, queue)
    assert load_run_queue(path) == queue
    assert json.loads(path.read_text())["tickets"][1]["flags"] == ["blocked", "escalated"]


def test_seed_000_minimal_ticket_entries_load() -> None:
    text = json.dumps(
        {
            "schema_version": 1,
            "run_id": "RUN-20260301-0930",
            "repo": "r",
            "started_at": "2026-03-01T09:30:00Z",
            "updated_at": "2026-03-01T09:30:00+01:00",
            "tickets": {"MMP-SEC-001": {"status": "qa", "artefacts": {"branch": "b", "pr": "", "logs": ["l"]}}},
        }
    )
    state = parse_run_state(text, "run-state.json")
    assert state.tickets["MMP-SEC-001"].status is RunStateStatus.QA


# -- errors with file and line -------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def dumped_lines(tmp_path: Path) -> tuple[Path, list[str]]:
    path = run_state_path(tmp_path)
    save_run_state(path, sample_state())
    return path, path.read_text(encoding="utf-8").splitlines()


def line_of(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "run-state.json", '{\n  "schema_version": 1,\n  "run_id": "RUN-20260301-0930"\n  "x": 1\n}\n'
    )
    with pytest.raises(InputError) as err:
        load_run_state(path, display="automations/run-state.json")
    problem = err.value.problems[0]
    assert (problem.path, problem.line) == ("automations/run-state.json", 4)
    assert "invalid JSON" in problem.message


def test_wrong_type_names_the_line(tmp_path: Path) -> None:
    path, lines = dumped_lines(tmp_path)
    target = line_of(lines, '"iterations": 1')
    lines[target - 1] = lines[target - 1].replace('"iterations": 1', '"iterations": "many"')
    write(path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_run_state(path)
    [problem] = err.value.problems
    assert problem.line == target
    assert "tickets.MMP-SEC-001.stage.iterations" in problem.message
    assert str(path) in str(err.value)


def test_bad_status_and_unknown_field_name_their_lines(tmp_path: Path) -> None:
    path, lines = dumped_lines(tmp_path)
    status = line_of(lines, '"status": "in_progress"')
    lines[status - 1] = lines[status - 1].replace("in_progress", "sleeping")
    run_id = line_of(lines, '"run_id"')
    lines.insert(run_id, '  "colour": "red",')
    write(path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_run_state(path)
    found = {p.line for p in err.value.problems}
    assert found == {run_id + 1, status + 1}


def test_newer_schema_version_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    data = sample_state().model_dump(mode="json")
    data["schema_version"] = 2
    data["new_field_of_v2"] = {"kept": True}
    path = write(tmp_path / "run-state.json", json.dumps(data, indent=2) + "\n")
    with pytest.raises(InputError) as err:
        load_run_state(path)
    [problem] = err.value.problems
    assert problem.line == 2
    assert "newer Conveyor" in problem.message
    assert "version 2" in problem.message


@pytest.mark.parametrize(("version", "words"), [("0", "unknown run-state version 0"), ('"1"', "must be an integer")])
def test_unknown_schema_version(tmp_path: Path, version: str, words: str) -> None:
    path = write(tmp_path / "run-state.json", f'{{\n  "run_id": "x",\n  "schema_version": {version}\n}}\n')
    with pytest.raises(InputError) as err:
        load_run_state(path)
    [problem] = err.value.problems
    assert problem.line == 3
    assert words in problem.message


def test_missing_schema_version_and_non_object(tmp_path: Path) -> None:
    path = write(tmp_path / "run-queue.json", '{\n  "task_prefix": "MMP"\n}\n')
    with pytest.raises(InputError, match="schema_version"):
        load_run_queue(path)
    write(path, "[1, 2]\n")
    with pytest.raises(InputError, match="expected a JSON object") as err:
        load_run_queue(path)
    assert err.value.problems[0].line == 1


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_run_state(tmp_path / "nope.json")


def test_bad_ticket_in_run_queue_names_its_line(tmp_path: Path) -> None:
    path = run_queue_path(tmp_path)
    save_run_queue(path, sample_queue())
    lines = path.read_text().splitlines()
    target = line_of(lines, '"complexity": null')
    lines[target - 1] = lines[target - 1].replace("null", "11")
    write(path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_run_queue(path)
    [problem] = err.value.problems
    assert problem.line == target
    assert "tickets.0.complexity" in problem.message


# -- never overwrite what does not load ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        '{"schema_version": 1, "run_id": ',
        '{"schema_version": 2, "run_id": "RUN-20260301-0930", "future": 1}\n',
        '{"schema_version": 1, "run_id": "nope"}\n',
    ],
)
def test_file_untouched_after_failed_load_and_save(tmp_path: Path, broken: str) -> None:
    path = write(run_state_path(tmp_path), broken)
    with pytest.raises(InputError):
        load_run_state(path)
    with pytest.raises(InputError):
        save_run_state(path, sample_state())
    assert path.read_text(encoding="utf-8") == broken
    assert [p.name for p in path.parent.iterdir()] == ["run-state.json"]  # no stray temp file
    save_run_state(path, sample_state(), force=True)  # a person decided to discard it
    assert load_run_state(path) == sample_state()


def test_run_queue_save_refuses_to_overwrite_broken_file(tmp_path: Path) -> None:
    path = write(run_queue_path(tmp_path), "not json\n")
    with pytest.raises(InputError):
        save_run_queue(path, sample_queue())
    assert path.read_text() == "not json\n"


# -- JSON Schemas ----------------------------------------------------------------------------------------------


def test_published_schemas_are_current() -> None:
    stale = stale_schemas(ROOT)
    assert stale == [], f"stale docs/schemas/{stale}: run `uv run --no-sync python scripts/gen_schemas.py`"


def test_schemas_are_valid_and_accept_written_files(tmp_path: Path) -> None:
    documents = schema_documents()
    assert set(documents) == {"run-state.schema.json", "run-queue.schema.json"}
    for schema in documents.values():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["required"][0] == "schema_version"
        assert schema["properties"]["schema_version"]["const"] == 1
    jsonschema.validate(sample_state().model_dump(mode="json"), documents["run-state.schema.json"])
    jsonschema.validate(sample_queue().model_dump(mode="json"), documents["run-queue.schema.json"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**sample_state().model_dump(mode="json"), "x": 1}, documents["run-state.schema.json"])


def test_write_schemas_then_current(tmp_path: Path) -> None:
    assert sorted(stale_schemas(tmp_path)) == ["run-queue.schema.json", "run-state.schema.json"]
    written = write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    for path in written:
        assert path.read_text(encoding="utf-8") == render_schema(json.loads(path.read_text(encoding="utf-8")))


def test_bad_ticket_id_key_names_its_line(tmp_path: Path) -> None:
    path, lines = dumped_lines(tmp_path)
    target = line_of(lines, '"MMP-SEC-001": {')
    lines[target - 1] = lines[target - 1].replace("MMP-SEC-001", "mmp-1")
    write(path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_run_state(path)
    [problem] = err.value.problems
    assert problem.line == target
    assert "PREFIX-CAT-NNN" in problem.message
