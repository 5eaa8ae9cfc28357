"""Load YAML and JSON with line numbers, and turn pydantic errors into problems naming file and line.

JSON is parsed with the json module (exact semantics), then located with PyYAML's composer, which
tracks the line of every node; YAML is a superset of JSON for the documents Conveyor writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from conveyor.domain.errors import InputError, Problem

M = TypeVar("M", bound=BaseModel)


def read_text(path: Path, display: str | None = None) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError.single(display or str(path), None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError.single(display or str(path), None, f"not UTF-8 text: {exc}") from None


def _node_line(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the node at ``loc`` (a pydantic error location), or its nearest ancestor."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            match = node.value[part]
        else:
            match = None
        if match is None:
            break
        node = match
        line = node.start_mark.line + 1
    return line


def validation_problems(exc: ValidationError, display: str, text: str) -> list[Problem]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, int | str)]
        dotted = ".".join(str(p) for p in loc) or "(document)"
        problems.append(Problem(display, _node_line(root, loc), f"{dotted}: {err['msg']}"))
    return problems


def load_yaml(text: str, display: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError.single(display, line, f"invalid YAML: {problem}") from None


def load_json(text: str, display: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.single(display, exc.lineno, f"invalid JSON: {exc.msg}") from None


def parse_model(model: type[M], data: Any, text: str, display: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_problems(exc, display, text)) from None


def load_yaml_model(model: type[M], path: Path, display: str | None = None) -> M:
    shown = display or str(path)
    text = read_text(path, shown)
    return parse_model(model, load_yaml(text, shown), text, shown)


def load_json_model(model: type[M], path: Path, display: str | None = None) -> M:
    shown = display or str(path)
    text = read_text(path, shown)
    return parse_model(model, load_json(text, shown), text, shown)
