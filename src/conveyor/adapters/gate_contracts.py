"""Gate contracts (automations/gates/<name>.contract.json) and workflows (automations/workflows/<name>.yaml).

Errors name the file and line: a malformed contract through the JSON loader, a workflow gate whose contract
file is missing by the line of that gate's entry in the workflow.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from conveyor.adapters.structured_text import load_json_model, load_yaml_model, read_text
from conveyor.domain.errors import InputError, NotFoundError, Problem
from conveyor.domain.gate import GateContract
from conveyor.domain.workflow import Workflow, is_safe_name

GATES_DIR = Path("automations") / "gates"
WORKFLOWS_DIR = Path("automations") / "workflows"
CONTRACT_SUFFIX = ".contract.json"
WORKFLOW_SUFFIXES = (".yaml", ".yml")


def contract_path(repo: Path, name: str) -> Path:
    return repo / GATES_DIR / f"{name}{CONTRACT_SUFFIX}"


def list_contracts(repo: Path) -> list[str]:
    folder = repo / GATES_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(CONTRACT_SUFFIX) for p in folder.glob(f"*{CONTRACT_SUFFIX}") if p.is_file())


def load_contract(repo: Path, name: str) -> GateContract:
    """The contract ``name`` (file stem); NotFoundError when there is no such file."""
    path = contract_path(repo, name)
    if not is_safe_name(name) or not path.is_file():
        known = ", ".join(list_contracts(repo)) or "none"
        raise NotFoundError(f"no gate contract {name!r} in {GATES_DIR.as_posix()} (contracts: {known})")
    return load_json_model(GateContract, path, path.relative_to(repo).as_posix())


def workflow_path(repo: Path, name: str) -> Path | None:
    if not is_safe_name(name):
        return None
    for suffix in WORKFLOW_SUFFIXES:
        path = repo / WORKFLOWS_DIR / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def list_workflows(repo: Path) -> list[str]:
    folder = repo / WORKFLOWS_DIR
    if not folder.is_dir():
        return []
    return sorted({p.stem for p in folder.iterdir() if p.is_file() and p.suffix in WORKFLOW_SUFFIXES})


def _gate_lines(text: str) -> list[int | None]:
    """The 1-based line of each entry of the top-level ``gates`` list."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "gates" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def load_workflow(repo: Path, name: str) -> tuple[Workflow, dict[str, GateContract]]:
    """The workflow and each gate's contract (by gate id); every referenced contract must exist and parse."""
    path = workflow_path(repo, name)
    if path is None:
        known = ", ".join(list_workflows(repo)) or "none"
        raise NotFoundError(f"no workflow {name!r} in {WORKFLOWS_DIR.as_posix()} (workflows: {known})")
    shown = path.relative_to(repo).as_posix()
    workflow = load_yaml_model(Workflow, path, shown)
    text = read_text(path, shown)
    lines = _gate_lines(text)
    missing: list[Problem] = []
    if workflow.name != path.stem:
        # Runs find their workflow again by name: a name that is not the file's would orphan every run of it.
        name_line = next((i for i, row in enumerate(text.splitlines(), 1) if row.startswith("name:")), None)
        missing.append(Problem(shown, name_line, f"name {workflow.name!r} must match the file name {path.stem!r}"))
    contracts: dict[str, GateContract] = {}
    for index, gate in enumerate(workflow.gates):
        if not contract_path(repo, gate.contract).is_file():
            line = lines[index] if index < len(lines) else None
            expected = contract_path(repo, gate.contract).relative_to(repo).as_posix()
            missing.append(
                Problem(shown, line, f"gate {gate.id} refers to contract {gate.contract}: {expected} is missing")
            )
            continue
        contract = load_contract(repo, gate.contract)
        if contract.gate != gate.id:
            line = lines[index] if index < len(lines) else None
            missing.append(
                Problem(shown, line, f"gate {gate.id} uses contract {gate.contract}, which is for gate {contract.gate}")
            )
        contracts[gate.id] = contract
    if missing:
        raise InputError(missing)
    return workflow, contracts
