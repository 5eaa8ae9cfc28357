"""The github forge's token (docs/forges-github.md), first found of: the ``github_token`` of the Conveyor Forge
block named by ``CONVEYOR_BLOCKS``, the Secret block named by build-spec ``github.token_block``, the environment.

This lives in the Prefect layer because adapters never import Prefect; the forge itself only takes a string.
"""

from __future__ import annotations

from blocks.settings_layer import github_token_from_blocks
from conveyor.adapters.forges.github_client import TOKEN_VARIABLES, GitHubTokenMissingError, token_from_env


def resolve_github_token(block_name: str | None) -> str:
    """The token: the Conveyor Forge block's, the Secret block ``block_name``'s, or the environment's."""
    from_blocks = github_token_from_blocks()
    if from_blocks:
        return from_blocks
    why = "no Secret block was named;"
    if block_name:
        from prefect.blocks.system import Secret

        try:
            loaded = Secret.load(block_name)  # synchronous here: no event loop runs in this thread
            value = loaded.get() if isinstance(loaded, Secret) else None
        except Exception as exc:  # an unknown block, no reachable Prefect API ...: the environment may still have one
            why = f"the Secret block {block_name!r} could not be loaded ({type(exc).__name__}: {exc});"
        else:
            if isinstance(value, str) and value.strip():
                return value.strip()
            why = f"the Secret block {block_name!r} holds no string token;"
    try:
        return token_from_env()
    except GitHubTokenMissingError:
        raise GitHubTokenMissingError(
            f"no GitHub token: {why} and neither {' nor '.join(TOKEN_VARIABLES)} is set in the environment. "
            "Save one with `prefect block create secret` (or Secret(value=...).save(NAME)) or export GITHUB_TOKEN."
        ) from None
