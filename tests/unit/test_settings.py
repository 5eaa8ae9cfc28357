"""Settings resolution: CLI > environment > Prefect block > build-spec > default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from conveyor.adapters.build_spec_file import scaffold_build_spec
from conveyor.domain.build_spec import BuildSpec
from conveyor.domain.errors import InputError
from conveyor.settings import Settings, load_settings, register_block_loader


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations/build-spec.yaml").write_text(
        "workers: 3\nmax_iterations: 4\nbudget:\n  cap_usd: 10\n  soft_cap_factor: 2\n"
    )
    return tmp_path


@pytest.fixture(autouse=True)
def no_block_loader() -> Iterator[None]:
    yield
    register_block_loader(None)


def test_defaults_without_build_spec(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.workers == 2 and settings.budget.cap_usd is None and settings.task_prefix == "CV"
    assert settings.llm_mode == "deterministic"


def test_each_layer_overrides_the_one_below(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(repo).workers == 3  # build-spec over default
    register_block_loader(lambda: {"workers": 4, "max_iterations": 5, "budget": {"soft_cap_factor": 3}})
    settings = load_settings(repo)
    assert (settings.workers, settings.max_iterations) == (4, 5)  # block over build-spec
    assert settings.budget.cap_usd == 10 and settings.budget.soft_cap_factor == 3  # nested values merge
    monkeypatch.setenv("CONVEYOR_WORKERS", "6")
    monkeypatch.setenv("CONVEYOR_BUDGET__CAP_USD", "20")
    settings = load_settings(repo)
    assert settings.workers == 6 and settings.budget.cap_usd == 20 and settings.max_iterations == 5  # env over block
    settings = load_settings(repo, {"workers": 8, "max_iterations": None})
    assert settings.workers == 8 and settings.max_iterations == 5  # CLI over env; None means not given


def test_api_key_switches_llm_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    settings = load_settings(tmp_path)
    assert settings.llm_mode == "anthropic"
    assert "sk-test" not in repr(settings)  # a secret never prints


def test_bad_build_spec_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations/build-spec.yaml").write_text("task_prefix: MS\nworkers: many\nbudget:\n  cap_usd: -1\n")
    with pytest.raises(InputError) as info:
        load_settings(tmp_path)
    found = {(p.path, p.line) for p in info.value.problems}
    assert found == {("automations/build-spec.yaml", 2), ("automations/build-spec.yaml", 4)}
    assert "workers" in str(info.value) and "budget.cap_usd" in str(info.value)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations/build-spec.yaml").write_text("workers: 2\nbudget: [unclosed\n")
    with pytest.raises(InputError) as info:
        load_settings(tmp_path)
    assert info.value.problems[0].line is not None and info.value.problems[0].line >= 2


def test_unknown_option_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations/build-spec.yaml").write_text("wrokers: 2\n")
    with pytest.raises(InputError, match="wrokers"):
        load_settings(tmp_path)


def test_env_value_that_breaks_the_spec_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_TASK_PREFIX", "lower")
    with pytest.raises(InputError, match="task_prefix"):
        load_settings(tmp_path)


def test_scaffold_documents_every_option_with_its_default() -> None:
    text = scaffold_build_spec("demo")
    parsed = BuildSpec.model_validate(yaml.safe_load(text))
    assert parsed == BuildSpec(project="demo")

    def names(model: type[BaseModel]) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            out.append(name)
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                out += names(annotation)
        return out

    for name in names(BuildSpec):
        assert f"{name}:" in text, name
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key = line.strip().split(":")[0]
        if line.strip() and not line.strip().startswith("#") and key in names(BuildSpec):
            assert lines[index - 1].strip().startswith("# "), f"{key} has no description comment"


def test_settings_carry_every_build_spec_field() -> None:
    assert set(BuildSpec.model_fields) <= set(Settings.model_fields)
    assert Settings(repo=Path()).build_spec() == BuildSpec()
