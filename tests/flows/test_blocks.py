"""Conveyor's block types on a real Prefect API (the session's test server): registration, and the block layer
of the settings (command line > CONVEYOR_* environment > block > build-spec > default)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from pydantic import SecretStr

from blocks.conveyor_blocks import ConveyorAgents, ConveyorBudget, ConveyorForge
from blocks.github_token import resolve_github_token
from blocks.settings_layer import BLOCKS_VARIABLE, use_blocks
from conveyor.domain.build_spec import ModelOverride
from conveyor.domain.errors import ConveyorError
from conveyor.settings import load_settings, register_block_loader


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    spec = {
        "project": "blocky",
        "budget": {"cap_usd": 5.0, "soft_cap_factor": 2.0},
        "agents": {"backend": "deterministic", "sandbox": "none"},
        "github": {"label": "from-build-spec"},
    }
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations/build-spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


@pytest.fixture
def documents(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = "team-defaults"
    models = {"normal": ModelOverride(model="claude-test-normal", input_usd_per_mtok=1.0)}
    ConveyorAgents(backend="scripted", models=models, anthropic_api_key=SecretStr("sk-from-block")).save(
        name, overwrite=True
    )
    ConveyorBudget(cap_usd=42.0, on_escalation="defer").save(name, overwrite=True)
    ConveyorForge(forge="github", github_owner="acme", github_token=SecretStr("ghp_from_block")).save(
        name, overwrite=True
    )
    monkeypatch.setenv(BLOCKS_VARIABLE, name)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    use_blocks()
    yield name
    register_block_loader(None)


def test_conveyor_blocks_register_puts_the_three_types_on_the_server() -> None:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    argv = [sys.executable, "-m", "conveyor", "blocks", "register"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "conveyor-agents, conveyor-budget, conveyor-forge" in done.stdout

    async def slugs() -> list[str]:
        async with get_client() as client:
            return [(await client.read_block_type_by_slug(s)).slug for s in ("conveyor-agents", "conveyor-forge")]

    assert asyncio.run(slugs()) == ["conveyor-agents", "conveyor-forge"]


def test_block_values_override_the_build_spec_and_keep_the_rest(repo: Path, documents: str) -> None:
    settings = load_settings(repo)
    assert settings.agents.backend == "scripted"  # block over build-spec
    assert settings.agents.sandbox == "none"  # the build-spec's, untouched by the block
    assert settings.agents.models["normal"].model == "claude-test-normal"
    assert settings.budget.cap_usd == 42.0 and settings.budget.soft_cap_factor == 2.0
    assert settings.on_escalation.value == "defer"
    assert settings.forge == "github" and settings.github.owner == "acme"
    assert settings.github.label == "from-build-spec"
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-from-block"


def test_environment_and_command_line_override_the_blocks(
    repo: Path, documents: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_BUDGET__CAP_USD", "7")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    settings = load_settings(repo, {"workers": 3})
    assert settings.budget.cap_usd == 7.0 and settings.workers == 3
    assert settings.anthropic_api_key is not None and settings.anthropic_api_key.get_secret_value() == "sk-from-env"


def test_the_github_token_comes_from_the_forge_block_first(documents: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_env")
    assert resolve_github_token(None) == "ghp_from_block"


def test_without_conveyor_blocks_no_block_is_read(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLOCKS_VARIABLE, raising=False)
    use_blocks()
    assert load_settings(repo).budget.cap_usd == 5.0


def test_documents_that_do_not_exist_leave_the_build_spec(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCKS_VARIABLE, "nobody-saved-these")
    use_blocks()
    try:
        assert load_settings(repo).budget.cap_usd == 5.0
    finally:
        register_block_loader(None)


def test_an_unreachable_api_is_an_error_not_a_silent_default(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCKS_VARIABLE, "team-defaults")
    use_blocks()
    nothing_listens = {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    try:
        with (
            temporary_settings(updates=nothing_listens),
            pytest.raises(ConveyorError, match="cannot read the Prefect blocks named 'team-defaults'"),
        ):
            load_settings(repo)
    finally:
        register_block_loader(None)
