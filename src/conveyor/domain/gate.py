"""Gate contracts, the evidence they need, and the verdict on that evidence (seed 003).

A contract names the outputs a gate must produce and the validations they must pass. The adapters collect
:class:`Evidence` (file hashes and text, command results); :func:`verdict` is a pure function of the
contract and that evidence, so the same evidence always gives the same verdict.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.domain.errors import ConveyorError

PATH_VARIABLES = ("slug", "artifact_path", "ticket", "run_id")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_GATE_ID = r"^G[1-9][0-9]*$"


class PathVariableError(ConveyorError):
    """A path template uses a variable that is unknown or has no value in this run."""


def template_variables(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def _check_template(template: str) -> str:
    unknown = [name for name in template_variables(template) if name not in PATH_VARIABLES]
    if unknown:
        raise ValueError(
            f"unknown path variable {{{unknown[0]}}} in {template!r}; known: "
            + ", ".join(f"{{{v}}}" for v in PATH_VARIABLES)
        )
    return template


def expand(template: str, variables: dict[str, str], *, is_path: bool = True) -> str:
    """Fill ``{slug}``-style variables; a path must stay relative to the repository (no ``..``)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PATH_VARIABLES:
            known = ", ".join(f"{{{v}}}" for v in PATH_VARIABLES)
            raise PathVariableError(f"unknown path variable {{{name}}} in {template!r}; known: {known}")
        value = variables.get(name)
        if value is None:
            raise PathVariableError(f"path variable {{{name}}} in {template!r} has no value in this run")
        return value

    result = _PLACEHOLDER.sub(fill, template)
    if is_path:
        pure = PurePosixPath(result)
        if not result.strip() or pure.is_absolute() or ".." in pure.parts:
            raise PathVariableError(f"path {result!r} (from {template!r}) must be relative to the repository")
    return result


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class _Validation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _PathValidation(_Validation):
    path: str

    @field_validator("path")
    @classmethod
    def _known_variables(cls, value: str) -> str:
        return _check_template(value)


class FileExists(_PathValidation):
    type: Literal["file_exists"] = "file_exists"


class MinSources(_PathValidation):
    """At least ``min`` sources: list items (``- ``, ``* ``, ``1. ``) or lines with an http(s) URL."""

    type: Literal["min_sources"] = "min_sources"
    min: int = Field(ge=1)


class ContainsHeadings(_PathValidation):
    type: Literal["contains_headings"] = "contains_headings"
    headings: list[str] = Field(min_length=1)


class NotContains(_PathValidation):
    type: Literal["not_contains"] = "not_contains"
    pattern: str = Field(min_length=1)
    regex: bool = False
    on_match: Literal["warn", "fail"] = "warn"

    @model_validator(mode="after")
    def _compiles(self) -> NotContains:
        if self.regex:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regular expression: {exc}") from None
        return self


class CommandCheck(_Validation):
    """Run ``argv`` (never through a shell) from the repository root or ``cwd``; pass on ``expect_exit``."""

    type: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0)
    expect_exit: int = 0
    cwd: str | None = None

    @field_validator("argv")
    @classmethod
    def _known_variables(cls, value: list[str]) -> list[str]:
        for item in value:
            _check_template(item)
        return value

    @field_validator("cwd")
    @classmethod
    def _known_cwd_variables(cls, value: str | None) -> str | None:
        return None if value is None else _check_template(value)


Validation = Annotated[
    FileExists | MinSources | ContainsHeadings | NotContains | CommandCheck, Field(discriminator="type")
]


class GateContract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    gate: str = Field(pattern=_GATE_ID)
    name: str = Field(min_length=1)
    description: str = ""
    required_outputs: list[str] = Field(default_factory=list)
    validations: list[Validation] = Field(default_factory=list)

    @field_validator("required_outputs")
    @classmethod
    def _known_variables(cls, value: list[str]) -> list[str]:
        for item in value:
            _check_template(item)
        return value


# --- evidence ---------------------------------------------------------------------------------------


class CommandRequest(BaseModel):
    model_config = ConfigDict(frozen=True)
    argv: list[str]
    cwd: str | None = None
    timeout_s: float


class EvidenceRequest(BaseModel):
    """What a contract needs looked at: files (repository-relative) and commands, variables filled in."""

    model_config = ConfigDict(frozen=True)
    files: list[str]
    commands: list[CommandRequest]


class FileEvidence(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    exists: bool
    sha256: str | None = None
    size: int | None = None
    text: str | None = None  # None when missing or unreadable as UTF-8 text
    error: str | None = None


class CommandEvidence(BaseModel):
    model_config = ConfigDict(frozen=True)
    argv: list[str]
    cwd: str | None = None
    exit_code: int | None
    timed_out: bool = False
    duration_s: float = 0.0
    output_tail: str = ""
    error: str | None = None  # the command could not be started


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True)
    variables: dict[str, str]
    files: list[FileEvidence] = Field(default_factory=list)
    commands: list[CommandEvidence] = Field(default_factory=list)

    def file(self, path: str) -> FileEvidence | None:
        return next((f for f in self.files if f.path == path), None)

    def command(self, argv: list[str], cwd: str | None) -> CommandEvidence | None:
        return next((c for c in self.commands if c.argv == argv and c.cwd == cwd), None)


def _paths_of(contract: GateContract) -> list[str]:
    templates = list(contract.required_outputs)
    templates += [v.path for v in contract.validations if not isinstance(v, CommandCheck)]
    return list(dict.fromkeys(templates))


def required_evidence(contract: GateContract, variables: dict[str, str]) -> EvidenceRequest:
    """The files and commands to collect; raises PathVariableError for a variable without a value."""
    files = list(dict.fromkeys(expand(t, variables) for t in _paths_of(contract)))
    commands = [
        CommandRequest(
            argv=[expand(a, variables, is_path=False) for a in v.argv],
            cwd=expand(v.cwd, variables) if v.cwd else None,
            timeout_s=v.timeout_s,
        )
        for v in contract.validations
        if isinstance(v, CommandCheck)
    ]
    return EvidenceRequest(files=files, commands=commands)


# --- verdict ----------------------------------------------------------------------------------------


class ValidationResult(BaseModel):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True)
    type: str
    path: str | None = None
    argv: list[str] | None = None
    passed: bool = Field(validation_alias=AliasChoices("pass", "passed"), serialization_alias="pass")
    detail: str = ""
    severity: Severity = Severity.ERROR


class ArtifactRecord(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    sha256: str | None = None
    exists: bool


class GateVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)
    gate: str
    status: Literal["PASS", "FAIL"]
    required_outputs: list[str]
    artifacts: list[ArtifactRecord]
    results: list[ValidationResult]
    warnings: list[str]
    failure_reason: str | None = None


_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S")
_URL = re.compile(r"https?://\S+")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def count_sources(text: str) -> int:
    """Lines that are list items or carry an http(s) URL, each line counted once."""
    return sum(1 for line in text.splitlines() if _LIST_ITEM.match(line) or _URL.search(line))


def _normalise_heading(text: str) -> str:
    text = text.strip()
    text = re.sub(r"(?:^|[ \t])#+[ \t]*$", "", text) if text.strip("#") else ""
    return " ".join(text.split()).casefold()


def markdown_headings(text: str) -> list[str]:
    """ATX headings outside fenced code, normalised: no closing #s, case-folded, inner spaces collapsed."""
    found: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if opening:
            fence = None if fence == opening.group(1) else (fence or opening.group(1))
            continue
        if fence is None and (match := _ATX.match(line)):
            found.append(_normalise_heading(match.group(2) or ""))
    return found


def describe(validation: Validation, variables: dict[str, str]) -> str:
    """The validation in plain words, for the prompt packet."""

    def show(template: str, *, is_path: bool = True) -> str:
        try:
            return expand(template, variables, is_path=is_path)
        except PathVariableError:
            return template

    if isinstance(validation, FileExists):
        return f"{show(validation.path)} exists"
    if isinstance(validation, MinSources):
        return f"{show(validation.path)} lists at least {validation.min} sources (list items or lines with a URL)"
    if isinstance(validation, ContainsHeadings):
        return f"{show(validation.path)} has the headings: " + ", ".join(validation.headings)
    if isinstance(validation, NotContains):
        kind = "the pattern" if validation.regex else "the text"
        effect = "fails the gate" if validation.on_match == "fail" else "is a warning"
        return f"{show(validation.path)} does not contain {kind} {validation.pattern!r} (a match {effect})"
    where = f" in {show(validation.cwd)}" if validation.cwd else ""
    argv = " ".join(show(a, is_path=False) for a in validation.argv)
    return f"the command `{argv}`{where} exits with {validation.expect_exit} within {validation.timeout_s:g}s"


def _file_check(kind: str, path: str, evidence: Evidence) -> FileEvidence | ValidationResult:
    """The file's evidence, or the failed result when it is missing or has no text."""
    found = evidence.file(path)
    if found is None:
        return ValidationResult(type=kind, path=path, passed=False, detail=f"no evidence collected for {path}")
    if not found.exists:
        return ValidationResult(type=kind, path=path, passed=False, detail=f"{path} does not exist")
    if kind != "file_exists" and found.text is None:
        why = found.error or "not readable as UTF-8 text"
        return ValidationResult(type=kind, path=path, passed=False, detail=f"{path}: {why}")
    return found


def _check(validation: Validation, evidence: Evidence) -> ValidationResult:
    if isinstance(validation, CommandCheck):
        return _check_command(validation, evidence)
    try:
        path = expand(validation.path, evidence.variables)
    except PathVariableError as exc:
        return ValidationResult(type=validation.type, path=validation.path, passed=False, detail=str(exc))
    found = _file_check(validation.type, path, evidence)
    if isinstance(found, ValidationResult):
        if isinstance(validation, NotContains) and validation.on_match == "warn":
            return found.model_copy(update={"severity": Severity.WARNING})
        return found
    return _check_text(validation, path, found.text or "")


def _check_text(
    validation: FileExists | MinSources | ContainsHeadings | NotContains, path: str, text: str
) -> ValidationResult:
    if isinstance(validation, FileExists):
        return ValidationResult(type=validation.type, path=path, passed=True, detail=f"{path} exists")
    if isinstance(validation, MinSources):
        count = count_sources(text)
        ok = count >= validation.min
        detail = f"{count} sources found, at least {validation.min} required"
        return ValidationResult(type=validation.type, path=path, passed=ok, detail=detail)
    if isinstance(validation, ContainsHeadings):
        present = set(markdown_headings(text))
        missing = [h for h in validation.headings if _normalise_heading(h.lstrip("#")) not in present]
        detail = "missing headings: " + ", ".join(missing) if missing else "all required headings present"
        return ValidationResult(type=validation.type, path=path, passed=not missing, detail=detail)
    return _check_not_contains(validation, path, text)


def _check_not_contains(validation: NotContains, path: str, text: str) -> ValidationResult:
    severity = Severity.ERROR if validation.on_match == "fail" else Severity.WARNING
    needle = re.compile(validation.pattern if validation.regex else re.escape(validation.pattern))
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle.search(line)]
    if not lines:
        detail = f"{validation.pattern!r} not found"
        return ValidationResult(type=validation.type, path=path, passed=True, detail=detail, severity=severity)
    shown = ", ".join(str(n) for n in lines[:10]) + (" ..." if len(lines) > 10 else "")
    detail = f"{validation.pattern!r} found on {len(lines)} line(s): {shown}"
    return ValidationResult(type=validation.type, path=path, passed=False, detail=detail, severity=severity)


def _check_command(validation: CommandCheck, evidence: Evidence) -> ValidationResult:
    try:
        argv = [expand(a, evidence.variables, is_path=False) for a in validation.argv]
        cwd = expand(validation.cwd, evidence.variables) if validation.cwd else None
    except PathVariableError as exc:
        return ValidationResult(type="command", argv=validation.argv, passed=False, detail=str(exc))
    shown = " ".join(argv)
    ran = evidence.command(argv, cwd)
    if ran is None:
        detail = f"no evidence collected for `{shown}`"
    elif ran.error is not None:
        detail = f"`{shown}` could not run: {ran.error}"
    elif ran.timed_out:
        detail = f"`{shown}` timed out after {validation.timeout_s:g}s"
    elif ran.exit_code != validation.expect_exit:
        tail = ran.output_tail.strip().splitlines()
        last = f": {tail[-1]}" if tail else ""
        detail = f"`{shown}` exited {ran.exit_code}, expected {validation.expect_exit}{last}"
    else:
        return ValidationResult(type="command", argv=argv, passed=True, detail=f"`{shown}` exited {ran.exit_code}")
    return ValidationResult(type="command", argv=argv, passed=False, detail=detail)


def verdict(contract: GateContract, evidence: Evidence) -> GateVerdict:
    """PASS when every required output exists and no error-severity validation failed."""
    results: list[ValidationResult] = []
    explicit = {v.path for v in contract.validations if isinstance(v, FileExists)}
    for template in contract.required_outputs:
        if template not in explicit:
            results.append(_check(FileExists(path=template), evidence))
    results += [_check(v, evidence) for v in contract.validations]
    errors = [r for r in results if not r.passed and r.severity is Severity.ERROR]
    warnings = [r.detail for r in results if not r.passed and r.severity is Severity.WARNING]
    outputs: list[str] = []
    for template in contract.required_outputs:
        try:
            outputs.append(expand(template, evidence.variables))
        except PathVariableError:
            outputs.append(template)
    artifacts = [ArtifactRecord(path=f.path, sha256=f.sha256, exists=f.exists) for f in evidence.files]
    return GateVerdict(
        gate=contract.gate,
        status="FAIL" if errors else "PASS",
        required_outputs=outputs,
        artifacts=artifacts,
        results=results,
        warnings=warnings,
        failure_reason="; ".join(f"{r.type}: {r.detail}" for r in errors) or None,
    )
