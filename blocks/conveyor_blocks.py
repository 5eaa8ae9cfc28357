"""Conveyor's Prefect block types (issue 7 §3): agent configuration, budget policy, forge credentials.

A block document holds the settings a Prefect server should give every run that names it: with
``CONVEYOR_BLOCKS=<document name>`` in the environment of a run (a work pool's job variables, a shell), the
documents of that name, of each type, become the "Prefect block" layer of the settings (command line >
``CONVEYOR_*`` environment > block > build-spec > default; blocks/settings_layer.py). Every field is optional:
an empty one leaves the build-spec's value. Secrets (the Anthropic API key, the GitHub token) are ``SecretStr``,
so the UI and the logs never show them.

``conveyor blocks register`` registers the three types with the configured Prefect API.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from conveyor.domain.build_spec import ModelOverride


class ConveyorAgents(Block):
    """Which agent backend runs, the model and prices of each tier, and the Anthropic API key."""

    _block_type_name = "Conveyor Agents"
    _block_type_slug = "conveyor-agents"
    _description = "Agent configuration of Conveyor runs: backend, model tiers and prices, the Anthropic API key."

    backend: str | None = Field(None, description="auto | anthropic | claude-code | scripted | deterministic.")
    models: dict[str, ModelOverride] = Field(
        default_factory=dict, description="Per tier (easy, normal, complex): model id and prices per million tokens."
    )
    anthropic_api_key: SecretStr | None = Field(
        None, description="The Anthropic API key (instead of ANTHROPIC_API_KEY)."
    )


class ConveyorBudget(Block):
    """Budget policy: caps in USD, the soft-cap factor, and what a blocked ticket does in scheduled runs."""

    _block_type_name = "Conveyor Budget"
    _block_type_slug = "conveyor-budget"
    _description = "Budget policy of Conveyor runs: run and ticket caps in USD, soft-cap factor, escalation policy."

    cap_usd: float | None = Field(None, gt=0, description="Run budget cap in USD.")
    ticket_cap_usd: float | None = Field(None, gt=0, description="Cap per ticket in USD.")
    soft_cap_factor: float | None = Field(None, gt=1, description="Derived soft cap = projected cost x this factor.")
    on_escalation: str | None = Field(None, description="pause | stop | skip | defer.")


class ConveyorForge(Block):
    """Where merges happen, and the GitHub repository and token of the github forge."""

    _block_type_name = "Conveyor Forge"
    _block_type_slug = "conveyor-forge"
    _description = "Forge of Conveyor runs: local or github, the GitHub repository, API root, label and token."

    forge: str | None = Field(None, description="local | github.")
    github_owner: str | None = Field(None, description="Repository owner (empty: from the remote's URL).")
    github_name: str | None = Field(None, description="Repository name (empty: from the remote's URL).")
    github_api_url: str | None = Field(None, description="REST API root (GitHub Enterprise: https://HOST/api/v3).")
    github_label: str | None = Field(None, description="Label of Conveyor's pull requests.")
    github_token: SecretStr | None = Field(None, description="A GitHub token with repo scope.")


BLOCK_TYPES: tuple[type[Block], ...] = (ConveyorAgents, ConveyorBudget, ConveyorForge)


def register_block_types() -> list[str]:
    """Register (or update) the three block types with the configured Prefect API; their slugs."""
    for block_type in BLOCK_TYPES:
        block_type.register_type_and_schema(_sync=True)  # type: ignore[call-arg]
    return [block_type.get_block_type_slug() for block_type in BLOCK_TYPES]
