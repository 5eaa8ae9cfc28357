"""Finding a ticket's squash commit on a branch by its trailer (both forges: how a resumed run, or a second
integration attempt, learns that a ticket is already merged)."""

from __future__ import annotations

import re

from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.merge import revert_pattern, trailer_pattern


def _has_line(message: str, pattern: str) -> bool:
    """Whether a line of ``message`` matches ``pattern`` as git's ``--grep`` did (anchored trailer patterns)."""
    return any(re.search(pattern, line) for line in message.splitlines())


def merged_commit_on(git: GitRepo, ref: str, ticket_id: str) -> str | None:
    """The ticket's newest squash commit reachable from ``ref``, unless as many later commits reverted it (then it
    may merge again). One git process for both trailers."""
    trailer, revert = trailer_pattern(ticket_id), revert_pattern(ticket_id)
    messages = git.messages_matching(ref, trailer, revert)
    found = [sha for sha, message in messages if _has_line(message, trailer)]
    reverts = [sha for sha, message in messages if _has_line(message, revert)]
    return found[0] if len(found) > len(reverts) else None
