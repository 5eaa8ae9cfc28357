"""Read automations/build-spec.yaml with line-numbered errors, and write its documented scaffold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from conveyor.adapters.structured_text import load_yaml, parse_model, read_text
from conveyor.domain.build_spec import BuildSpec, GateCommand
from conveyor.domain.errors import InputError

BUILD_SPEC_PATH = "automations/build-spec.yaml"


def read_build_spec_data(repo: Path) -> dict[str, Any]:
    """The build-spec as validated plain data (only the keys the file sets), or {} when there is none."""
    path = repo / BUILD_SPEC_PATH
    if not path.exists():
        return {}
    text = read_text(path, BUILD_SPEC_PATH)
    data = load_yaml(text, BUILD_SPEC_PATH)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError.single(BUILD_SPEC_PATH, 1, "the build-spec must be a mapping of options")
    parse_model(BuildSpec, data, text, BUILD_SPEC_PATH)
    return data


def read_build_spec(repo: Path) -> BuildSpec:
    return BuildSpec.model_validate(read_build_spec_data(repo))


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "value"):  # enums
        value = value.value
    dumped: str = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return dumped.removesuffix("\n...\n").strip()


def _render(model: type[BaseModel], instance: BaseModel, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        shown = _scalar(value) if not isinstance(value, BaseModel) else ""
        if isinstance(value, BaseModel):
            lines.append(f"{pad}# {field.description}")
        else:
            lines.append(f"{pad}# {field.description} (default: {'none' if value is None else shown})")
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{name}:")
            lines += _render(type(value), value, indent + 1)
        elif name == "quality_gates":
            lines.append(f"{pad}{name}: []")
            example = GateCommand(name="tests", argv=["python", "-m", "pytest", "-q"], timeout_s=900)
            lines.append(f"{pad}# for example:")
            lines.append(f"{pad}# {name}:")
            lines.append(f"{pad}#   - name: {example.name}")
            lines.append(f"{pad}#     argv: {json.dumps(example.argv)}")
            lines.append(f"{pad}#     timeout_s: {example.timeout_s:g}")
        else:
            lines.append(f"{pad}{name}: {shown}".rstrip())
    return lines


def scaffold_build_spec(project: str | None = None) -> str:
    """The build-spec ``conveyor init`` writes: every option, its description and its default."""
    spec = BuildSpec(project=project)
    header = [
        "# Conveyor build-spec: run configuration for this repository.",
        "# Precedence: command-line options > CONVEYOR_* environment > Prefect blocks > this file > defaults.",
        "# Environment overrides use CONVEYOR_ and __ for nesting, e.g. CONVEYOR_BUDGET__CAP_USD=25.",
        "",
    ]
    return "\n".join(header + _render(BuildSpec, spec, 0)) + "\n"
