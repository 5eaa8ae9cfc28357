"""The replay cache of agent calls: .conveyor/replay/<replay_key>.json (ARCHITECTURE.md §5).

A call is stored under its :meth:`AgentRequest.replay_key` (run, ticket, stage, attempt, prompt/program
version, base commit, input hash), so a re-run of the same request returns the stored result instead of a new
call, and any changed input makes a new call. For the implementer the entry also carries the commit its
work ended at and the branch it was on, so the worktree can be restored, not just the answer; an entry whose
commit no longer exists in the repository is a miss (the call must run again).

What is stored is redacted like the logs (the stored result is what a replay returns; ``known_secrets``
defaults to the values of secret-named environment variables). Entries are written atomically; an entry
Conveyor cannot parse raises InputError naming the file (delete it to re-run the call).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from conveyor.adapters.agents.call_log import call_identity
from conveyor.adapters.agents.redaction import Redactor, secrets_from_environment
from conveyor.adapters.atomic import write_json
from conveyor.adapters.git_repo import GitRepo, GitRepoError
from conveyor.adapters.structured_text import load_json_model
from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole
from conveyor.ports import Clock, utcnow

REPLAY_DIR = Path(".conveyor") / "replay"
ENTRY_FORMAT = "conveyor.replay/1"


class ReplayEntry(BaseModel):
    """One stored call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = ENTRY_FORMAT
    replay_key: str
    call: dict[str, object] = Field(description="run, ticket, role, stage, attempt, versions of the stored request")
    stored_at: datetime
    result: AgentResult
    commit_sha: str | None = Field(None, description="implementer: the commit the worktree is restored to")
    branch: str | None = Field(None, description="implementer: the branch that commit was made on")
    transcript: str | None = Field(None, description="the call's log (relative to the repository root)")


class ReplayStore:
    """Stores and looks up calls by replay key under ``<repo_root>/.conveyor/replay``."""

    def __init__(self, repo_root: Path, *, clock: Clock = utcnow, known_secrets: Iterable[str] | None = None) -> None:
        self.repo_root = Path(repo_root)
        self.directory = self.repo_root / REPLAY_DIR
        self.clock = clock
        self.redactor = Redactor(secrets_from_environment(os.environ) if known_secrets is None else known_secrets)

    def path_for(self, request: AgentRequest) -> Path:
        return self.directory / f"{request.replay_key()}.json"

    def _git(self, request: AgentRequest) -> GitRepo:
        return GitRepo(request.workdir or self.repo_root)

    def store(
        self,
        request: AgentRequest,
        result: AgentResult,
        transcript_path: str | None,
        *,
        commit_sha: str | None = None,
        branch: str | None = None,
    ) -> ReplayEntry:
        """Store ``result`` for ``request``. For the implementer, ``commit_sha`` defaults to the result's commit or
        the worktree's HEAD, and ``branch`` to the worktree's current branch."""
        if request.role is AgentRole.IMPLEMENTER and (commit_sha is None or branch is None):
            repo = self._git(request)
            commit_sha = commit_sha or result.commit_sha or repo.head_sha()
            branch = branch or repo.branch_of()
        stored = AgentResult.model_validate(
            self.redactor(result.model_copy(update={"transcript": transcript_path}).model_dump(mode="json"))
        )
        entry = ReplayEntry(
            replay_key=request.replay_key(),
            call=call_identity(request),
            stored_at=self.clock(),
            result=stored,
            commit_sha=commit_sha,
            branch=branch,
            transcript=transcript_path,
        )
        write_json(self.path_for(request), entry.model_dump(mode="json"))
        return entry

    def lookup(self, request: AgentRequest) -> ReplayEntry | None:
        """The stored entry for ``request``, or None (never stored, or an implementer commit that is gone)."""
        path = self.path_for(request)
        if not path.is_file():
            return None
        entry = load_json_model(ReplayEntry, path, self.display(path))
        if entry.replay_key != request.replay_key():
            return None
        if request.role is AgentRole.IMPLEMENTER:
            if entry.commit_sha is None:
                return None
            try:
                if not self._git(request).commit_exists(entry.commit_sha):
                    return None
            except GitRepoError:
                return None
        return entry

    def forget(self, request: AgentRequest) -> bool:
        """Drop the stored entry for ``request``; True when there was one."""
        path = self.path_for(request)
        existed = path.is_file()
        path.unlink(missing_ok=True)
        return existed

    def display(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_root).as_posix()
        except ValueError:
            return str(path)
