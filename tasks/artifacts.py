"""The ArtifactSink port over Prefect artifacts (shown in the Prefect UI under the flow run)."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

# The artifact helpers return a coroutine when called from async code (Prefect's async_dispatch): the sinks are
# called from the async execution loop too, and always want the call done.
_SYNC: dict[str, Any] = {"_sync": True}


def artifact_key(repo_slug: str, what: str) -> str:
    """Artifact keys are global in a workspace: ``<repo-slug>-<what>``, lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{repo_slug}-{what}".lower()).strip("-")


class PrefectArtifacts:
    def table(self, key: str, rows: list[dict[str, Any]], description: str) -> None:
        create_table_artifact(key=key, table=rows, description=description, **_SYNC)

    def markdown(self, key: str, markdown: str, description: str) -> None:
        create_markdown_artifact(key=key, markdown=markdown, description=description, **_SYNC)

    def link(self, key: str, link: str, text: str, description: str) -> None:
        create_link_artifact(key=key, link=link, link_text=text, description=description, **_SYNC)


class ProgressArtifact:
    """Loop progress in the UI: one progress artifact, created once and updated as tickets finish."""

    def __init__(self, key: str, description: str) -> None:
        from prefect.artifacts import create_progress_artifact

        created: Any = create_progress_artifact(progress=0.0, key=key, description=description, **_SYNC)
        self._id: UUID | None = created if isinstance(created, UUID) else None

    def update(self, percent: float) -> None:
        from prefect.artifacts import update_progress_artifact

        if self._id is not None:
            update_progress_artifact(self._id, progress=max(0.0, min(100.0, percent)), **_SYNC)
