"""automations/run-state.json and automations/run-queue.json on disk (ARCHITECTURE.md §2).

Reading names file and line for every problem (invalid JSON, wrong types, unknown fields, a schema_version
this Conveyor does not know). A file written by a *newer* Conveyor is refused, not loaded with fields dropped.
Writing is atomic, and refuses to replace an existing file that does not load: a file Conveyor cannot parse
is never overwritten (pass ``force=True`` only after a person decided to discard it).

The JSON Schemas published in docs/schemas/ are generated from the models by :func:`schema_documents`
(``scripts/gen_schemas.py`` writes them; a test fails when the committed files are stale).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from conveyor.adapters.atomic import write_json, write_text
from conveyor.adapters.structured_text import load_json, parse_model, read_text
from conveyor.domain.errors import InputError
from conveyor.domain.run_state import RUN_QUEUE_SCHEMA_VERSION, RUN_STATE_SCHEMA_VERSION, RunQueue, RunState

RUN_STATE_FILE: Final = Path("automations/run-state.json")
RUN_QUEUE_FILE: Final = Path("automations/run-queue.json")
SCHEMA_DIR: Final = Path("docs/schemas")
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

M = TypeVar("M", bound=BaseModel)

_SUPPORTED: dict[type[BaseModel], int] = {RunState: RUN_STATE_SCHEMA_VERSION, RunQueue: RUN_QUEUE_SCHEMA_VERSION}


def run_state_path(repo: Path) -> Path:
    return repo / RUN_STATE_FILE


def run_queue_path(repo: Path) -> Path:
    return repo / RUN_QUEUE_FILE


@cache
def _version_probe(supported: int, kind: str) -> type[BaseModel]:
    """A model that checks only ``schema_version``, so a wrong version gets one clear problem at its line."""

    class VersionProbe(BaseModel):
        model_config = ConfigDict(extra="ignore")
        schema_version: Any

        @field_validator("schema_version")
        @classmethod
        def _known(cls, value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise PydanticCustomError(
                    "schema_version",
                    "must be an integer (this Conveyor reads {kind} version {supported})",
                    {"kind": kind, "supported": supported},
                )
            if value > supported:
                raise PydanticCustomError(
                    "schema_version_newer",
                    "{kind} version {value} was written by a newer Conveyor; this one reads version {supported}. "
                    "Upgrade Conveyor: the file is left untouched so that no field is lost",
                    {"kind": kind, "value": value, "supported": supported},
                )
            if value != supported:
                raise PydanticCustomError(
                    "schema_version_unknown",
                    "unknown {kind} version {value}; this Conveyor reads version {supported}",
                    {"kind": kind, "value": value, "supported": supported},
                )
            return value

    return VersionProbe


def _parse(model: type[M], kind: str, text: str, display: str) -> M:
    data = load_json(text, display)
    if not isinstance(data, dict):
        raise InputError.single(display, 1, f"expected a JSON object (a {kind} document), got {type(data).__name__}")
    parse_model(_version_probe(_SUPPORTED[model], kind), data, text, display)
    return parse_model(model, data, text, display)


def _load(model: type[M], kind: str, path: Path, display: str | None) -> M:
    shown = display or str(path)
    return _parse(model, kind, read_text(path, shown), shown)


# What this process last wrote to each state file. A file still holding exactly that text needs no validating
# parse before it is replaced (the loop writes run-state a dozen times per ticket; the parse cost O(tickets)).
_written: dict[Path, str] = {}


def _save(model: type[M], kind: str, path: Path, document: M, *, display: str | None, force: bool) -> None:
    key = path.resolve()
    if not force and path.exists():
        current = path.read_text(encoding="utf-8")
        if _written.get(key) != current:
            _parse(model, kind, current, display or str(path))  # InputError naming file and line: never overwrite
    # pydantic's serializer gives json.dumps(indent=2, ensure_ascii=False)'s layout at a tenth of the cost.
    text = document.model_dump_json(indent=2) + "\n"
    write_text(path, text)
    _written[key] = text


# -- run-state -----------------------------------------------------------------------------------------


def load_run_state(path: Path, display: str | None = None) -> RunState:
    """Read run-state.json; InputError naming file and line when it is not a valid version-1 run state."""
    return _load(RunState, "run-state", path, display)


def load_run_state_if_exists(path: Path, display: str | None = None) -> RunState | None:
    """Seed 000: "create if absent". None when the file does not exist; errors as :func:`load_run_state`."""
    return load_run_state(path, display) if path.exists() else None


def parse_run_state(text: str, display: str) -> RunState:
    return _parse(RunState, "run-state", text, display)


def save_run_state(path: Path, state: RunState, *, display: str | None = None, force: bool = False) -> None:
    """Write atomically; refuse (InputError) to replace an existing file that does not load."""
    _save(RunState, "run-state", path, state, display=display, force=force)


# -- run-queue -----------------------------------------------------------------------------------------


def load_run_queue(path: Path, display: str | None = None) -> RunQueue:
    return _load(RunQueue, "run-queue", path, display)


def load_run_queue_if_exists(path: Path, display: str | None = None) -> RunQueue | None:
    return load_run_queue(path, display) if path.exists() else None


def parse_run_queue(text: str, display: str) -> RunQueue:
    return _parse(RunQueue, "run-queue", text, display)


def save_run_queue(path: Path, queue: RunQueue, *, display: str | None = None, force: bool = False) -> None:
    _save(RunQueue, "run-queue", path, queue, display=display, force=force)


# -- JSON Schemas ----------------------------------------------------------------------------------------


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    generated = model.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        **generated,
        "title": title,
    }


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name (under docs/schemas/) → JSON Schema generated from the models."""
    return {
        "run-state.schema.json": _schema(RunState, f"automations/run-state.json, version {RUN_STATE_SCHEMA_VERSION}"),
        "run-queue.schema.json": _schema(RunQueue, f"automations/run-queue.json, version {RUN_QUEUE_SCHEMA_VERSION}"),
    }


def render_schema(schema: dict[str, Any]) -> str:
    """The exact text of a published schema file (what write_json writes)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(root: Path) -> list[Path]:
    """Regenerate docs/schemas/*.schema.json under ``root``; returns the files written."""
    written = []
    for name, schema in schema_documents().items():
        target = root / SCHEMA_DIR / name
        write_json(target, schema)
        written.append(target)
    return written


def stale_schemas(root: Path) -> list[str]:
    """Names of published schema files under ``root`` that are missing or differ from the generated ones."""
    stale = []
    for name, schema in schema_documents().items():
        target = root / SCHEMA_DIR / name
        if not target.exists() or target.read_text(encoding="utf-8") != render_schema(schema):
            stale.append(name)
    return stale
