"""One Settings object. Resolution order: CLI > environment > Prefect block > build-spec > default.

The build-spec fields are the run configuration; ``repo``, ``anthropic_api_key`` and ``prefect_api_url``
are runtime-only. The Prefect block layer is a seam: a loader registered with
:func:`register_block_loader` (blocks/settings_layer.py installs it when ``CONVEYOR_BLOCKS`` names block
documents) returns the values stored in blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from conveyor.adapters.build_spec_file import read_build_spec_data
from conveyor.domain.build_spec import (
    AgentsSpec,
    ApprovalSpec,
    BudgetSpec,
    BuildSpec,
    EscalationPolicy,
    GateCommand,
    GitHubSpec,
    GitSpec,
    ImprovementSpec,
    MilestoneSpec,
)
from conveyor.domain.errors import InputError, Problem

BlockLoader = Callable[[], Mapping[str, Any]]
_block_loader: BlockLoader | None = None
_layers: ContextVar[dict[str, Mapping[str, Any]]] = ContextVar("conveyor_settings_layers")


def register_block_loader(loader: BlockLoader | None) -> None:
    """Install (or remove, with None) the source of values stored in Prefect blocks."""
    global _block_loader  # noqa: PLW0603 - one process-wide seam, set once by the Prefect layer
    _block_loader = loader


class _LayerSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], layer: str) -> None:
        super().__init__(settings_cls)
        self.layer = layer

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.__call__().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_layers.get({}).get(self.layer, {}))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONVEYOR_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    repo: Path = Field(Path(), description="The target repository.")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    prefect_api_url: str | None = Field(None, validation_alias="PREFECT_API_URL")

    # Run configuration: the fields of BuildSpec, so every layer can set any of them.
    project: str | None = None
    task_prefix: str = "CV"
    milestone: MilestoneSpec = Field(default_factory=MilestoneSpec)
    workers: int = 2
    max_iterations: int = 3
    on_escalation: EscalationPolicy = EscalationPolicy.PAUSE
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    quality_gates: list[GateCommand] = Field(default_factory=list)
    ops: list[GateCommand] = Field(default_factory=list)
    on_decline: str = "replan"
    git: GitSpec = Field(default_factory=GitSpec)
    forge: str = "local"
    github: GitHubSpec = Field(default_factory=GitHubSpec)
    approvals: ApprovalSpec = Field(default_factory=ApprovalSpec)
    agents: AgentsSpec = Field(default_factory=AgentsSpec)
    improvement: ImprovementSpec = Field(default_factory=ImprovementSpec)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _LayerSource(settings_cls, "block"),
            _LayerSource(settings_cls, "build_spec"),
        )

    def build_spec(self) -> BuildSpec:
        """The resolved run configuration, validated by the build-spec's own rules."""
        return BuildSpec.model_validate(self.model_dump(include=set(BuildSpec.model_fields)))

    @property
    def llm_mode(self) -> str:
        return "anthropic" if self.anthropic_api_key else "deterministic"


def load_settings(repo: Path, cli: Mapping[str, Any] | None = None) -> Settings:
    """Resolve settings for ``repo``; ``cli`` holds the options given on the command line (None = not given).

    A malformed build-spec raises InputError naming file and line.
    """
    layers: dict[str, Mapping[str, Any]] = {
        "build_spec": read_build_spec_data(repo),
        "block": dict(_block_loader()) if _block_loader is not None else {},
    }
    token = _layers.set(layers)
    try:
        given = {k: v for k, v in (cli or {}).items() if v is not None}
        try:
            settings = Settings(repo=repo, **given)
            settings.build_spec()  # the combined layers must still be a valid build-spec
        except ValidationError as exc:
            where = "settings (command line, CONVEYOR_* environment or Prefect block)"
            raise InputError(
                [Problem(where, None, f"{'.'.join(map(str, e['loc']))}: {e['msg']}") for e in exc.errors()]
            ) from None
        return settings
    finally:
        _layers.reset(token)
