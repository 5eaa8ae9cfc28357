"""The wrapper around every agent backend: replay, the empty-diff rule, logs and traces (ARCHITECTURE.md §5).

``RecordingBackend(inner, ...)`` is itself an AgentBackend (same ``name`` as ``inner``). For each request:

1. **Replay.** When the replay store holds the request's replay key, the stored result comes back with
   ``replayed=True`` and the inner backend is not called. For the implementer the worktree
   (``request.workdir``) is restored to the recorded commit with ``GitRepo.reset_hard``; uncommitted work
   found there is first committed to a rescue branch ``conveyor/rescue/<branch>-<UTC stamp>`` (parent: the
   worktree's HEAD; the branch being restored is not touched by the rescue), so nothing is lost. The
   replayed call is logged too (``result.replayed: true`` in the log and the trace line), and its
   ``transcript`` points at the log of the original call. Usage and cost are the original call's: callers
   that keep a budget ledger decide with ``replayed`` whether to count them again.
2. **Call.** Otherwise ``inner.run`` is timed; an exception from it is logged and re-raised.
3. **Empty diff.** An implementer result with status success but no change between ``request.base_commit``
   and the worktree (committed, staged, unstaged or untracked) becomes status failed, error kind
   ``empty_diff`` (seed 004's placeholder lesson). Without a base commit: no commit and a clean worktree.
4. **Used.** Seed 001's ``used`` (e.g. ``5.2K``) is filled in from the usage when the backend left it empty.
5. **Log** (:mod:`conveyor.adapters.agents.call_log`), redacted; ``result.transcript`` becomes the log's path.
6. **Store** the result for replay, only when it has no ``error_kind`` (a transient failure is retried next
   time). An implementer result is stored with the worktree's HEAD and branch, and only when the worktree is
   clean (work that is not in a commit cannot be restored).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC
from pathlib import Path
from typing import Any

from conveyor.adapters.agents.call_log import CallLog, Message, TranscriptSource, load_transcript_file, safe_name
from conveyor.adapters.agents.redaction import secrets_from_environment
from conveyor.adapters.agents.replay import ReplayEntry, ReplayStore
from conveyor.adapters.git_repo import DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME, GitRepo, GitRepoError
from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole, ErrorKind, WorkerStatus, used_tokens_text
from conveyor.ports import AgentBackend, Clock, utcnow

RESCUE_PREFIX = "conveyor/rescue/"


class RecordingBackend:
    """Wraps any AgentBackend with replay, the empty-diff rule, logs and traces."""

    def __init__(
        self,
        inner: AgentBackend,
        *,
        repo_root: Path,
        clock: Clock = utcnow,
        replay: ReplayStore | None = None,
        keep_traces: bool = True,
        known_secrets: Iterable[str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
    ) -> None:
        """``keep_traces``: append trace lines to automations/memory/replay/ (logs are always written).
        ``known_secrets``: literal values to redact; None means the secret-named environment variables."""
        self.inner = inner
        self.repo_root = Path(repo_root)
        self.clock = clock
        self.replay = replay
        self.monotonic = monotonic
        self.author_name, self.author_email = author_name, author_email
        secrets = secrets_from_environment(os.environ) if known_secrets is None else list(known_secrets)
        self.log = CallLog(self.repo_root, clock=clock, known_secrets=secrets, keep_traces=keep_traces)

    @property
    def name(self) -> str:
        return self.inner.name

    def run(self, request: AgentRequest) -> AgentResult:
        if self.replay is not None:
            entry = self.replay.lookup(request)
            if entry is not None:
                return self._replay(request, entry)
        return self._call(request)

    # -- replay -----------------------------------------------------------------------------------------
    def _replay(self, request: AgentRequest, entry: ReplayEntry) -> AgentResult:
        started = self.clock()
        extra: dict[str, Any] = {"replay": {"stored_at": entry.stored_at.isoformat(), "original_log": entry.transcript}}
        if request.role is AgentRole.IMPLEMENTER and entry.commit_sha is not None:
            extra["replay"]["restored"] = self._restore(request, entry.commit_sha, entry.branch, extra)
        result = entry.result.model_copy(update={"replayed": True, "transcript": entry.transcript})
        log_path = self.log.write(request, result, started_at=started, extra=extra)
        if result.transcript is None:
            result = result.model_copy(update={"transcript": self.log.display(log_path)})
        return result

    def _restore(self, request: AgentRequest, sha: str, branch: str | None, extra: dict[str, Any]) -> str:
        repo = GitRepo(request.workdir or self.repo_root)
        current = repo.branch_of()
        stamp = self.clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        rescue = f"{RESCUE_PREFIX}{safe_name(current or branch or 'detached')}-{stamp}"
        message = (
            f"conveyor: rescue uncommitted work in {request.workdir or '.'} before replaying "
            f"{request.ticket_id or request.role.value} (attempt {request.attempt})"
        )
        rescued = repo.rescue_uncommitted(rescue, message, self.author_name, self.author_email)
        if rescued is not None:
            extra["rescued"] = {"commit": rescued, "branch_prefix": rescue}
        if rescued is not None or repo.head_sha() != sha:
            repo.reset_hard(sha)
        if branch and current != branch:
            extra["branch_mismatch"] = {"recorded": branch, "checked_out": current}
        return sha

    # -- a real call --------------------------------------------------------------------------------------
    def _call(self, request: AgentRequest) -> AgentResult:
        started = self.clock()
        t0 = self.monotonic()
        try:
            result = self.inner.run(request)
        except Exception as exc:
            self.log.write(
                request, None, started_at=started, extra={"exception": f"{type(exc).__name__}: {exc}"[:4000]}
            )
            raise
        duration = max(0.0, self.monotonic() - t0)
        updates: dict[str, Any] = {}
        if not result.duration_s:
            updates["duration_s"] = duration
        if not result.used:
            updates["used"] = used_tokens_text(result.usage)
        if updates:
            result = result.model_copy(update=updates)
        extra: dict[str, Any] = {}
        result = self._empty_diff_rule(request, result, extra)

        messages, source = self._transcript(request, result)
        store_commit, store_branch = None, None
        storable = self.replay is not None and result.error_kind is None
        if storable and request.role is AgentRole.IMPLEMENTER:
            storable, store_commit, store_branch = self._implementer_snapshot(request, extra)
        log_path = self.log.write(
            request,
            result,
            started_at=started,
            transcript_messages=messages,
            transcript_source=source,
            extra=extra,
        )
        result = result.model_copy(update={"transcript": self.log.display(log_path)})
        if storable and self.replay is not None:
            self.replay.store(request, result, result.transcript, commit_sha=store_commit, branch=store_branch)
        return result

    def _empty_diff_rule(self, request: AgentRequest, result: AgentResult, extra: dict[str, Any]) -> AgentResult:
        if (
            request.role is not AgentRole.IMPLEMENTER
            or result.status is not WorkerStatus.SUCCESS
            or result.error_kind is not None
            or request.workdir is None
        ):
            return result
        try:
            repo = GitRepo(request.workdir)
            if request.base_commit:
                changed = repo.has_changes_since(request.base_commit)
                against = f"base commit {request.base_commit[:12]}"
            else:
                changed = result.commit_sha is not None or not repo.is_clean()
                against = "the start of the call (no base commit given)"
        except GitRepoError as exc:
            extra["empty_diff_check"] = f"skipped: {exc}"
            return result
        if changed:
            return result
        note = f"empty diff: the implementer reported success but nothing changed since {against}"
        return result.model_copy(
            update={
                "status": WorkerStatus.FAILED,
                "error_kind": ErrorKind.EMPTY_DIFF,
                "error_detail": note,
                "notes": f"{result.notes}\n{note}" if result.notes else note,
            }
        )

    def _implementer_snapshot(
        self, request: AgentRequest, extra: dict[str, Any]
    ) -> tuple[bool, str | None, str | None]:
        """(storable, commit, branch) of the implementer's worktree after the call."""
        try:
            repo = GitRepo(request.workdir or self.repo_root)
            if not repo.is_clean():
                extra["replay_not_stored"] = "the worktree has uncommitted changes, which replay could not restore"
                return False, None, None
            return True, repo.head_sha(), repo.branch_of()
        except GitRepoError as exc:
            extra["replay_not_stored"] = str(exc)
            return False, None, None

    def _transcript(self, request: AgentRequest, result: AgentResult) -> tuple[list[Message] | None, str | None]:
        if isinstance(self.inner, TranscriptSource):
            messages = self.inner.pop_transcript(request)
            if messages is not None:
                return messages, None
        if result.transcript:
            path = Path(result.transcript)
            path = path if path.is_absolute() else self.repo_root / path
            return load_transcript_file(path), result.transcript
        return None, None
