"""Choose and assemble the agent backend a repository's settings ask for.

Every backend is wrapped in :class:`RecordingBackend`, so logs, traces, redaction, replay and the
empty-diff rule apply whichever one runs. ``None`` means deterministic mode: no model is called.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.adapters.agents.recording import RecordingBackend
from conveyor.adapters.agents.replay import ReplayStore
from conveyor.domain.build_spec import AgentsSpec
from conveyor.domain.errors import ConveyorError
from conveyor.domain.models import DEFAULT_MODELS, ModelSpec, ModelTable
from conveyor.domain.ticket import ModelTier
from conveyor.ports import AgentBackend
from conveyor.settings import Settings


def model_table(spec: AgentsSpec) -> ModelTable:
    """The default tier table with the build-spec's overrides applied."""
    tiers: dict[ModelTier, ModelSpec] = dict(DEFAULT_MODELS)
    for name, override in spec.models.items():
        tier = ModelTier(name)
        base = tiers[tier]
        price = base.price.model_copy(
            update={
                k: v
                for k, v in {
                    "input_usd_per_mtok": override.input_usd_per_mtok,
                    "output_usd_per_mtok": override.output_usd_per_mtok,
                }.items()
                if v is not None
            }
        )
        tiers[tier] = base.model_copy(update={"model": override.model or base.model, "price": price})
    return ModelTable(tiers=tiers)


def backend_name(settings: Settings) -> str:
    """The backend in force: ``auto`` is anthropic with an API key, deterministic without."""
    chosen = settings.agents.backend
    if chosen == "auto":
        return "anthropic" if settings.anthropic_api_key else "deterministic"
    return chosen


def agent_backend(repo: Path, settings: Settings, *, base_url: str | None = None) -> AgentBackend | None:
    name = backend_name(settings)
    spec = settings.agents
    models = model_table(spec)
    inner: AgentBackend
    if name == "deterministic":
        return None
    if name == "scripted":
        if not spec.script:
            raise ConveyorError("agents.backend is scripted but agents.script names no script file")
        from conveyor.adapters.agents.scripted import ScriptedBackend

        script = Path(spec.script) if Path(spec.script).is_absolute() else repo / spec.script
        inner = ScriptedBackend(
            script,
            repo_root=repo,
            models=models,
            state_path=repo / ".conveyor/scripted-state.json",
            author_name=settings.git.bot_name,
            author_email=settings.git.bot_email,
        )
    elif name == "anthropic":
        if settings.anthropic_api_key is None:
            raise ConveyorError("agents.backend is anthropic but ANTHROPIC_API_KEY is not set")
        from conveyor.adapters.agents.anthropic_backend import AnthropicBackend
        from conveyor.adapters.sandbox.select import select_sandbox

        inner = AnthropicBackend(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=base_url,
            models=models,
            sandbox=select_sandbox(spec.sandbox),
            allowed_commands=spec.allowed_commands,
            command_timeout_s=spec.command_timeout_s,
            author_name=settings.git.bot_name,
            author_email=settings.git.bot_email,
        )
    elif name == "claude-code":
        if settings.anthropic_api_key is None:
            raise ConveyorError("agents.backend is claude-code but ANTHROPIC_API_KEY is not set")
        from conveyor.adapters.agents.claude_code import ClaudeCodeBackend

        inner = ClaudeCodeBackend(
            api_key=settings.anthropic_api_key.get_secret_value(),
            # The CLI runs with a scrubbed environment: hand it the endpoint the SDK would have read.
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL"),
            models=models,
            allowed_commands=spec.allowed_commands,
            command_timeout_s=spec.command_timeout_s,
            author_name=settings.git.bot_name,
            author_email=settings.git.bot_email,
        )
    else:
        raise ConveyorError(f"agent backend {name!r} is not available in this build")
    return RecordingBackend(
        inner,
        repo_root=repo,
        replay=ReplayStore(repo),
        keep_traces=spec.keep_replay_traces,
        author_name=settings.git.bot_name,
        author_email=settings.git.bot_email,
    )


def role_tier(settings: Settings, role: str) -> ModelTier | None:
    """The tier build-spec ``agents.role_tiers`` gives a judgment role, or None for the role's own default."""
    tier = settings.agents.role_tiers.get(role)
    return ModelTier(tier) if tier is not None else None
