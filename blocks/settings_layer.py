"""The "Prefect block" layer of Conveyor's settings (conveyor.settings: command line > ``CONVEYOR_*``
environment > block > build-spec > default).

``CONVEYOR_BLOCKS=<document name>`` names the block documents of a run; without it no block is read (no API
call). Each of the three types (blocks/conveyor_blocks.py) is loaded by that name when a document exists;
only the fields a document sets enter the layer, nested under the build-spec's own keys, so the rest of the
build-spec still applies. :func:`use_blocks` installs the loader; the flows call it before they read settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from prefect.blocks.core import Block

from blocks.conveyor_blocks import ConveyorAgents, ConveyorBudget, ConveyorForge
from conveyor.domain.errors import ConveyorError
from conveyor.settings import register_block_loader

BLOCKS_VARIABLE = "CONVEYOR_BLOCKS"
BlockT = TypeVar("BlockT", bound=Block)


def _load(block_type: type[BlockT], name: str) -> BlockT | None:
    try:
        loaded = block_type.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError:  # no document of this type by that name: the layer has nothing of it
        return None
    return cast(BlockT, loaded)


def _set(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != {}}


def block_layer(name: str) -> dict[str, Any]:
    """The settings the block documents called ``name`` hold (module docstring)."""
    layer: dict[str, Any] = {}
    agents = _load(ConveyorAgents, name)
    if agents is not None:
        models = {tier: spec.model_dump(exclude_none=True) for tier, spec in agents.models.items()}
        if spec := _set({"backend": agents.backend, "models": models}):
            layer["agents"] = spec
        if agents.anthropic_api_key is not None:
            layer["ANTHROPIC_API_KEY"] = agents.anthropic_api_key.get_secret_value()
    budget = _load(ConveyorBudget, name)
    if budget is not None:
        caps = {"cap_usd": budget.cap_usd, "ticket_cap_usd": budget.ticket_cap_usd}
        if spec := _set({**caps, "soft_cap_factor": budget.soft_cap_factor}):
            layer["budget"] = spec
        if budget.on_escalation:
            layer["on_escalation"] = budget.on_escalation
    forge = _load(ConveyorForge, name)
    if forge is not None:
        if forge.forge:
            layer["forge"] = forge.forge
        github = {
            "owner": forge.github_owner,
            "name": forge.github_name,
            "api_url": forge.github_api_url,
            "label": forge.github_label,
        }
        if spec := _set(github):
            layer["github"] = spec
    return layer


def github_token_from_blocks() -> str | None:
    """The GitHub token of the ConveyorForge document named by ``CONVEYOR_BLOCKS``, if it holds one."""
    name = os.environ.get(BLOCKS_VARIABLE)
    forge = _load(ConveyorForge, name) if name else None
    return forge.github_token.get_secret_value() if forge and forge.github_token else None


def use_blocks() -> None:
    """Install the block layer when ``CONVEYOR_BLOCKS`` names documents; remove it otherwise."""
    name = os.environ.get(BLOCKS_VARIABLE, "").strip()
    if not name:
        register_block_loader(None)
        return

    def loader() -> Mapping[str, Any]:
        try:
            return block_layer(name)
        except Exception as exc:  # an unreachable API or a malformed document: say so, do not run on half
            raise ConveyorError(f"cannot read the Prefect blocks named {name!r} ({BLOCKS_VARIABLE}): {exc}") from exc

    register_block_loader(loader)
