"""Loading gate contracts and workflows, with errors that name file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conveyor.adapters.gate_contracts import list_contracts, list_workflows, load_contract, load_workflow
from conveyor.domain.errors import InputError, NotFoundError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-repo" / "automations"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE / "workflows", tmp_path / "automations/workflows")
    shutil.copytree(EXAMPLE / "gates", tmp_path / "automations/gates")
    return tmp_path


def test_example_workflow_loads_with_its_contracts(repo: Path) -> None:
    workflow, contracts = load_workflow(repo, "design-doc")
    assert [g.id for g in workflow.gates] == ["G1", "G2", "G3"]
    assert workflow.version == "1.0"
    assert set(contracts) == {"G1", "G2", "G3"}
    assert list_contracts(repo) == ["G1", "G2", "G3"]
    assert list_workflows(repo) == ["design-doc"]
    assert contracts["G2"].validations[0].type == "min_sources"


def test_malformed_contract_json_names_file_and_line(repo: Path) -> None:
    path = repo / "automations/gates/G2.contract.json"
    lines = path.read_text().splitlines()
    assert lines[3].startswith('  "description"')
    lines[3] = '  "description": unquoted text,'
    path.write_text("\n".join(lines))
    with pytest.raises(InputError) as caught:
        load_contract(repo, "G2")
    problem = caught.value.problems[0]
    assert problem.path == "automations/gates/G2.contract.json"
    assert problem.line == 4
    assert "invalid JSON" in problem.message


def test_invalid_validation_names_its_line(repo: Path) -> None:
    path = repo / "automations/gates/G2.contract.json"
    text = path.read_text().replace('"min": 3', '"min": 0')
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_workflow(repo, "design-doc")
    problem = caught.value.problems[0]
    assert problem.path == "automations/gates/G2.contract.json"
    assert problem.line == next(n for n, row in enumerate(text.splitlines(), 1) if '"min": 0' in row)


def test_missing_contract_names_the_workflow_gate_line(repo: Path) -> None:
    (repo / "automations/gates/G3.contract.json").unlink()
    with pytest.raises(InputError) as caught:
        load_workflow(repo, "design-doc")
    problem = caught.value.problems[0]
    text = (repo / "automations/workflows/design-doc.yaml").read_text()
    assert problem.path == "automations/workflows/design-doc.yaml"
    assert problem.line == next(n for n, row in enumerate(text.splitlines(), 1) if "- id: G3" in row)
    assert "automations/gates/G3.contract.json is missing" in problem.message


def test_bad_workflow_yaml_field_names_line(repo: Path) -> None:
    path = repo / "automations/workflows/design-doc.yaml"
    text = path.read_text().replace("id: G2", "id: gate-two")
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_workflow(repo, "design-doc")
    assert caught.value.problems[0].line == next(n for n, row in enumerate(text.splitlines(), 1) if "gate-two" in row)


def test_unknown_names_are_not_found(repo: Path) -> None:
    with pytest.raises(NotFoundError, match="workflows: design-doc"):
        load_workflow(repo, "nope")
    with pytest.raises(NotFoundError, match="no gate contract"):
        load_contract(repo, "../G1")


def test_workflow_name_must_match_its_file_and_contracts_their_gate(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "examples" / "sample-repo" / "automations"
    shutil.copytree(sample, tmp_path / "automations")
    workflow = tmp_path / "automations/workflows/design-doc.yaml"
    workflow.write_text(workflow.read_text().replace("name: design-doc", "name: design"))
    g2 = tmp_path / "automations/gates/G2.contract.json"
    g2.write_text(g2.read_text().replace('"gate": "G2"', '"gate": "G9"'))
    with pytest.raises(InputError) as info:
        load_workflow(tmp_path, "design-doc")
    messages = [(p.line, p.message) for p in info.value.problems]
    assert any("must match the file name 'design-doc'" in m and line is not None for line, m in messages)
    assert any("gate G2 uses contract G2, which is for gate G9" in m for _, m in messages)
