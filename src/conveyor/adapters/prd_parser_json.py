"""docs/PRD.json → requirements: the documented shape, validated with errors naming file and line."""

from __future__ import annotations

from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from conveyor.adapters import prd_parser_text as txt
from conveyor.adapters.prd_parser_model import Assumption, IgnoreReason, ItemKind, Marker, Priority, Requirement
from conveyor.adapters.structured_text import load_json, validation_problems
from conveyor.domain.errors import InputError, Problem

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class JsonRequirement(BaseModel):
    """One entry of ``requirements``. Unknown keys are refused, so that a misspelt key is reported."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: NonEmpty
    title: NonEmpty
    description: str = ""
    priority: Priority = Priority.MUST
    acceptance_criteria: list[NonEmpty] = Field(default_factory=list)
    depends_on: list[NonEmpty] = Field(default_factory=list)
    touch_set: list[NonEmpty] | None = None
    complexity: int | None = Field(None, ge=1, le=10)
    done: bool = False
    notes: str = ""

    @field_validator("priority", mode="before")
    @classmethod
    def _moscow(cls, value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().casefold().replace("’", "'").replace("-", " ")  # noqa: RUF001
            word = word.removesuffix(" have").replace("'", "").replace("will not", "wont")
            return word
        return value

    @model_validator(mode="after")
    def _criteria_when_ticketed(self) -> Self:
        if self.priority.ticketed and not self.done and not self.acceptance_criteria:
            raise ValueError(f"{self.id}: a {self.priority.value} requirement needs at least one acceptance criterion")
        return self


class JsonPrd(BaseModel):
    """The document: ``title``, optional ``assumptions``, and ``requirements``; other top-level keys (overview,
    goals, ...) are prose for people and are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    title: str = ""
    assumptions: list[str] = Field(default_factory=list)
    requirements: list[JsonRequirement] = Field(min_length=1)


def _child(node: yaml.Node | None, name: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == name), None)
    return None


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _line(node: yaml.Node | None, default: int = 1) -> int:
    return node.start_mark.line + 1 if node is not None else default


def read_json(text: str, path: str) -> tuple[str, list[Requirement], list[Assumption]]:
    """(title, requirements, assumptions) of a PRD.json; raises InputError naming file and line."""
    located = text.replace("\t", " ")  # tabs may only be whitespace in JSON; YAML's composer refuses them
    data = load_json(text, path)
    if not isinstance(data, dict):
        raise InputError.single(path, 1, "PRD.json must be an object with a 'requirements' list")
    try:
        prd = JsonPrd.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_problems(exc, path, located)) from None
    try:
        root: yaml.Node | None = yaml.compose(located, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # pragma: no cover - valid JSON composes
        root = None
    nodes = _items(_child(root, "requirements"))
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    requirements: list[Requirement] = []
    assumption_nodes = _items(_child(root, "assumptions"))
    assumptions = [
        Assumption(
            txt.assumption_text(a) or a.strip(), path, _line(assumption_nodes[i] if i < len(assumption_nodes) else None)
        )
        for i, a in enumerate(prd.assumptions)
        if a.strip()
    ]
    for position, entry in enumerate(prd.requirements):
        node = nodes[position] if position < len(nodes) else None
        line = _line(node)
        if entry.id.casefold() in seen:
            problems.append(
                Problem(
                    path, line, f"requirement id {entry.id!r} is used twice (first at line {seen[entry.id.casefold()]})"
                )
            )
        seen.setdefault(entry.id.casefold(), line)
        dep_nodes = _items(_child(node, "depends_on"))
        markers = [
            Marker(dep, _line(dep_nodes[i] if i < len(dep_nodes) else None, line))
            for i, dep in enumerate(entry.depends_on)
        ]
        req = Requirement(
            ItemKind.JSON,
            line,
            entry.title,
            list(entry.acceptance_criteria),
            entry.priority,
            id_hint=entry.id,
            title=entry.title,
            details=[d for d in (entry.description.strip(), entry.notes.strip()) if d],
            markers=markers,
            touch_set=list(entry.touch_set) if entry.touch_set is not None else None,
            complexity=entry.complexity,
        )
        if entry.done:
            req.ignored, req.ignored_detail = IgnoreReason.DELIVERED, 'already delivered ("done": true)'
        elif not entry.priority.ticketed:
            reason = IgnoreReason.COULD_HAVE if entry.priority is Priority.COULD else IgnoreReason.WONT_HAVE
            req.ignored, req.ignored_detail = reason, f"{entry.priority.label}: not ticketed"
        requirements.append(req)
        for field_text in (entry.title, entry.description, entry.notes, *entry.acceptance_criteria):
            if (found := txt.assumption_text(field_text)) is not None:
                assumptions.append(Assumption(found, path, line))
    if problems:
        raise InputError(problems)
    return prd.title.strip(), requirements, assumptions
