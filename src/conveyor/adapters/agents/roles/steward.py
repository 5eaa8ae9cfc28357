"""Knowledge steward: a ticket's change → the documentation updates it needs (seed 001 step 12, the docs gate
before merge, ARCHITECTURE.md §8), or a waiver saying why none is needed.

Update paths are repository-relative and may not leave the repository (validated). Default tier: normal.
Default stage: ``documenting``.
"""

from collections.abc import Sequence
from typing import Any

import dspy  # type: ignore[import-untyped]

from conveyor.adapters.agents.roles.base import RoleCall, RoleOutcome, RoleProgram, clip_head, run_role
from conveyor.domain.agent import AgentRole
from conveyor.domain.roles import DocUpdates
from conveyor.domain.ticket import ModelTier

MAX_DIFF_CHARS = 100_000
MAX_DOC_FILES = 400


class StewardSignature(dspy.Signature):  # type: ignore[misc]
    """Decide the documentation updates a change needs."""

    change_summary: str = dspy.InputField(desc="What the change does and why (ticket and implementer notes).")
    diff: str = dspy.InputField(desc="The change, as a unified diff.")
    doc_files: str = dspy.InputField(desc="The repository's documentation files, one path per line.")
    doc_updates: DocUpdates = dspy.OutputField(desc="The documentation updates, or a waiver.")


class StewardProgram(RoleProgram):
    ROLE = AgentRole.STEWARD
    VERSION = "1"
    SIGNATURE = StewardSignature
    OUTPUT_FIELD = "doc_updates"
    OUTPUT_TYPE = DocUpdates
    DEFAULT_TIER = ModelTier.NORMAL
    DEFAULT_STAGE = "documenting"


def run(
    call: RoleCall,
    *,
    change_summary: str,
    diff: str,
    doc_files: Sequence[str],
    program: StewardProgram | None = None,
) -> RoleOutcome[DocUpdates]:
    """The documentation updates for a change (``doc_files``: the repository's documentation paths)."""
    listed = list(doc_files)[:MAX_DOC_FILES]
    more = len(doc_files) - len(listed)
    files = "\n".join(listed) + (f"\n(... and {more} more)" if more > 0 else "")
    inputs: dict[str, Any] = {
        "change_summary": change_summary.strip() or "(none)",
        "diff": clip_head(diff, MAX_DIFF_CHARS) or "(empty diff)",
        "doc_files": files or "(none)",
    }
    return run_role(StewardProgram, call, inputs, DocUpdates, program=program)
