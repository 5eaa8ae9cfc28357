"""Choosing and assembling the agent backend from a repository's settings (conveyor.services.agents)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from conveyor.adapters.agents.anthropic_backend import AnthropicBackend
from conveyor.adapters.agents.recording import RecordingBackend
from conveyor.adapters.agents.scripted import ScriptedBackend
from conveyor.adapters.sandbox.local import LocalSandbox
from conveyor.domain.agent import AgentRequest, AgentRole
from conveyor.domain.build_spec import AgentsSpec
from conveyor.domain.errors import ConveyorError, InputError
from conveyor.domain.models import DEFAULT_MODELS, ModelTable
from conveyor.domain.ticket import ModelTier
from conveyor.services.agents import agent_backend, backend_name, model_table
from conveyor.settings import load_settings

BUILD_SPEC = "automations/build-spec.yaml"
KEY = "sk-ant-assembly-0123456789abcdef"


def write_spec(repo: Path, text: str) -> Path:
    path = repo / BUILD_SPEC
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return repo


def with_agents(repo: Path, **agents: object) -> Path:
    return write_spec(repo, yaml.safe_dump({"agents": agents}))


# -- backend_name ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "key", "expected"),
    [
        ("auto", KEY, "anthropic"),
        ("auto", None, "deterministic"),
        ("anthropic", None, "anthropic"),
        ("scripted", KEY, "scripted"),
        ("deterministic", KEY, "deterministic"),
        ("claude-code", KEY, "claude-code"),
    ],
)
def test_backend_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: str, key: str | None, expected: str
) -> None:
    if key is not None:
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    assert backend_name(load_settings(with_agents(tmp_path, backend=chosen))) == expected


def test_auto_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend_name(load_settings(tmp_path)) == "deterministic"  # no build-spec, no key
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert backend_name(load_settings(tmp_path)) == "anthropic"


# -- agent_backend ------------------------------------------------------------------------------------------------


def test_deterministic_mode_has_no_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert agent_backend(tmp_path, load_settings(tmp_path)) is None  # auto without a key
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    repo = with_agents(tmp_path, backend="deterministic")
    assert agent_backend(repo, load_settings(repo)) is None  # chosen, even with a key


def test_scripted_without_a_script_is_a_clear_error(tmp_path: Path) -> None:
    repo = with_agents(tmp_path, backend="scripted")
    with pytest.raises(ConveyorError, match=r"scripted.*agents\.script"):
        agent_backend(repo, load_settings(repo))


def test_scripted_with_a_missing_script_names_the_file(tmp_path: Path) -> None:
    repo = with_agents(tmp_path, backend="scripted", script="automations/nope.yaml")
    with pytest.raises(InputError, match=r"automations/nope\.yaml"):
        agent_backend(repo, load_settings(repo))


@pytest.mark.parametrize("chosen", ["anthropic", "claude-code"])
def test_a_model_backend_without_a_key_is_a_clear_error(tmp_path: Path, chosen: str) -> None:
    repo = with_agents(tmp_path, backend=chosen)
    with pytest.raises(ConveyorError, match=rf"{chosen}.*ANTHROPIC_API_KEY"):
        agent_backend(repo, load_settings(repo))


def test_claude_code_gets_the_endpoint_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI runs with a scrubbed environment: the endpoint must be handed to it, or it would reach the real API."""
    from conveyor.adapters.agents.claude_code import ClaudeCodeBackend

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    repo = with_agents(tmp_path, backend="claude-code")
    settings = load_settings(repo)
    backend = agent_backend(repo, settings)
    assert isinstance(backend, RecordingBackend) and backend.name == "claude-code"
    assert isinstance(backend.inner, ClaudeCodeBackend)
    assert backend.inner.base_url == "http://127.0.0.1:9" and backend.inner.models == model_table(settings.agents)
    explicit = agent_backend(repo, settings, base_url="http://127.0.0.1:8")
    assert isinstance(explicit, RecordingBackend) and isinstance(explicit.inner, ClaudeCodeBackend)
    assert explicit.inner.base_url == "http://127.0.0.1:8"


def test_anthropic_is_assembled_inside_the_recording_wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    repo = with_agents(tmp_path, sandbox="none", models={"normal": {"model": "claude-assembly"}})
    settings = load_settings(repo)
    backend = agent_backend(repo, settings, base_url="http://127.0.0.1:9")
    assert isinstance(backend, RecordingBackend) and backend.name == "anthropic"
    inner = backend.inner
    assert isinstance(inner, AnthropicBackend)
    assert (
        inner.models == model_table(settings.agents) and inner.models.spec(ModelTier.NORMAL).model == "claude-assembly"
    )
    assert isinstance(inner.sandbox, LocalSandbox)
    assert str(inner.client.base_url).startswith("http://127.0.0.1:9")


def test_scripted_is_assembled_inside_the_recording_wrapper(tmp_path: Path) -> None:
    repo = with_agents(tmp_path, backend="scripted", script="automations/script.yaml")
    (repo / "automations" / "script.yaml").write_text("entries: []\n")
    backend = agent_backend(repo, load_settings(repo))
    assert isinstance(backend, RecordingBackend) and backend.name == "scripted"
    assert isinstance(backend.inner, ScriptedBackend)
    assert backend.inner.script_display == "automations/script.yaml"


# -- model_table ------------------------------------------------------------------------------------------------


def test_model_table_applies_overrides_per_tier() -> None:
    spec = AgentsSpec.model_validate(
        {
            "models": {
                "normal": {"model": "claude-x", "input_usd_per_mtok": 1.5, "output_usd_per_mtok": 7.5},
                "easy": {"model": "claude-cheap"},
                "complex": {"output_usd_per_mtok": 30},
            }
        }
    )
    table = model_table(spec)
    normal, easy, complex_ = (table.spec(t) for t in (ModelTier.NORMAL, ModelTier.EASY, ModelTier.COMPLEX))
    assert (normal.model, normal.price.input, normal.price.output) == ("claude-x", 1.5, 7.5)
    assert normal.price.cache_write == pytest.approx(1.875) and normal.price.cache_read == pytest.approx(0.15)
    assert easy.model == "claude-cheap" and easy.price == DEFAULT_MODELS[ModelTier.EASY].price  # model only
    assert complex_.model == DEFAULT_MODELS[ModelTier.COMPLEX].model  # price only
    assert (complex_.price.input, complex_.price.output) == (DEFAULT_MODELS[ModelTier.COMPLEX].price.input, 30)
    for tier in ModelTier:  # what an override does not name is kept
        default = DEFAULT_MODELS[tier]
        assert table.spec(tier).context_tokens == default.context_tokens
        assert table.spec(tier).min_cacheable_tokens == default.min_cacheable_tokens
    assert model_table(AgentsSpec()) == ModelTable()


def test_overridden_prices_change_the_cost_of_a_call(tmp_path: Path) -> None:
    script = {
        "entries": [
            {
                "role": "reviewer",
                "repeat_last": True,
                "steps": [{"text": "ok", "usage": {"input_tokens": 1_000_000, "output_tokens": 100_000}}],
            }
        ]
    }
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "script.yaml").write_text(yaml.safe_dump(script))
    request = AgentRequest(role=AgentRole.REVIEWER, run_id="RUN-20260301-1100", stage="reviewing", prompt_version="1")

    attempts = itertools.count(1)

    def cost(**agents: object) -> float:
        repo = with_agents(tmp_path, backend="scripted", script="automations/script.yaml", **agents)
        backend = agent_backend(repo, load_settings(repo))
        assert backend is not None
        result = backend.run(request.model_copy(update={"attempt": next(attempts)}))  # a new key: no replay
        assert result.ok and not result.replayed
        return result.cost_usd

    assert cost() == pytest.approx(3.0 + 1.5)  # default normal tier: $3 in, $15 out per million
    assert cost(models={"normal": {"input_usd_per_mtok": 1.5, "output_usd_per_mtok": 7.5}}) == pytest.approx(0.75 + 1.5)
    assert cost(models={"easy": {"input_usd_per_mtok": 0.1}}) == pytest.approx(4.5)  # another tier: no change


# -- the agents section's validation errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("agents:\n  backend: wizard\n", 2, "agents.backend"),
        ("project: demo\nagents:\n  sandbox: docker\n", 3, "agents.sandbox"),
        ("agents:\n  backend: scripted\n  scirpt: demo.yaml\n", 3, "agents.scirpt"),
        ("agents:\n  command_timeout_s: 0\n", 2, "agents.command_timeout_s"),
        ("agents:\n  role_tiers:\n    reviewer: huge\n", 3, "agents.role_tiers"),
        ("agents:\n  models:\n    normal:\n      input_usd_per_mtok: -1\n", 4, "input_usd_per_mtok"),
        ("agents:\n  models:\n    normal:\n      modle: claude-x\n", 4, "agents.models.normal.modle"),
        ("agents:\n  allowed_commands: [pytest]\n", 2, "agents.allowed_commands"),
    ],
)
def test_agents_errors_name_the_build_spec_and_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    write_spec(tmp_path, text)
    with pytest.raises(InputError) as raised:
        load_settings(tmp_path)
    problem = raised.value.problems[0]
    assert problem.path == BUILD_SPEC
    assert problem.line == line, str(raised.value)
    assert fragment in problem.message
    assert f"{BUILD_SPEC}:{line}" in str(raised.value)


def test_an_unknown_tier_in_models_names_the_build_spec(tmp_path: Path) -> None:
    write_spec(tmp_path, "agents:\n  models:\n    huge:\n      model: claude-x\n")
    with pytest.raises(InputError) as raised:
        load_settings(tmp_path)
    problem = raised.value.problems[0]
    assert problem.path == BUILD_SPEC and problem.line == 3 and "huge" in problem.message
