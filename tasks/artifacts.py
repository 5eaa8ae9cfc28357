"""The ArtifactSink port over Prefect artifacts (shown in the Prefect UI under the flow run)."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def artifact_key(repo_slug: str, what: str) -> str:
    """Artifact keys are global in a workspace: ``<repo-slug>-<what>``, lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{repo_slug}-{what}".lower()).strip("-")


class PrefectArtifacts:
    def table(self, key: str, rows: list[dict[str, Any]], description: str) -> None:
        create_table_artifact(key=key, table=rows, description=description)

    def markdown(self, key: str, markdown: str, description: str) -> None:
        create_markdown_artifact(key=key, markdown=markdown, description=description)
