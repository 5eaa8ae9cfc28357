"""Gated workflows (automations/workflows/<name>.yaml) and the prompt packet of each gate (seed 003)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.domain.gate import GateContract, describe, expand

PROMPT_VARIABLES = ("slug", "artifact_path", "depth", "run_id", "prompt")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_safe_name(name: str) -> bool:
    """A workflow or contract name that names a file in its folder (no separators, no ``..``)."""
    return bool(_NAME.match(name)) and ".." not in name


class WorkflowGate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^G[1-9][0-9]*$")
    name: str = Field(min_length=1)
    contract: str = Field(min_length=1, description="file name stem under automations/gates/")
    agent: str = Field(min_length=1)
    instructions: str = ""

    @field_validator("contract")
    @classmethod
    def _safe_contract(cls, value: str) -> str:
        if not is_safe_name(value):
            raise ValueError(f"contract {value!r} must be a file name stem such as G1 (letters, digits, . _ -)")
        return value


class Workflow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    version: str = "local-dev"
    description: str = ""
    gates: list[WorkflowGate] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value  # YAML reads `version: 1.0` as a float

    @model_validator(mode="after")
    def _unique_gates(self) -> Workflow:
        seen: set[str] = set()
        for gate in self.gates:
            if gate.id in seen:
                raise ValueError(f"gate {gate.id} appears twice")
            seen.add(gate.id)
        return self

    def gate(self, gate_id: str) -> WorkflowGate | None:
        return next((g for g in self.gates if g.id == gate_id), None)


def render_instructions(template: str, variables: dict[str, str]) -> str:
    """Fill the PROMPT_VARIABLES (``{slug}``, ``{artifact_path}`` ...); other braces stay as written."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return variables.get(name, match.group(0)) if name in PROMPT_VARIABLES else match.group(0)

    return re.sub(r"\{([a-z_]+)\}", fill, template)


def prompt_packet(
    *,
    run_id: str,
    gate: WorkflowGate,
    contract: GateContract,
    variables: dict[str, str],
    prompt: str | None,
    position: tuple[int, int],
) -> str:
    """The text a person (or their agent) needs to do one gate, and how to tell the runner it is done."""
    fill = {**variables, "run_id": run_id, "prompt": prompt or ""}
    lines = [
        f"# {run_id} · gate {gate.id} ({position[0]} of {position[1]}): {gate.name}",
        "",
        f"Agent: {gate.agent}",
        f"Contract: {contract.gate} {contract.name}" + (f" - {contract.description}" if contract.description else ""),
        "",
        "## Instructions",
        "",
        render_instructions(gate.instructions, fill).strip() or "(the workflow gives no instructions for this gate)",
        "",
        "## Required outputs",
        "",
    ]
    outputs = [expand(t, variables) for t in contract.required_outputs]
    lines += [f"- {path}" for path in outputs] or ["- (none)"]
    lines += ["", "## Checks run when the gate finishes", ""]
    lines += [f"- {describe(v, variables)}" for v in contract.validations] or ["- (only the required outputs)"]
    if prompt:
        lines += ["", "## Prompt", "", prompt.strip()]
    lines += [
        "",
        "## When you are done",
        "",
        "- press Enter in the terminal running `conveyor workflow run` to finish the gate and run the checks,",
        "  or type `fail <reason>` there to fail it;",
        f"- or, from another shell: `conveyor gate finish --run {run_id} --gate {gate.id}`",
        f"  (or `conveyor gate fail --run {run_id} --gate {gate.id} --reason '...'`).",
        "",
    ]
    return "\n".join(lines)
