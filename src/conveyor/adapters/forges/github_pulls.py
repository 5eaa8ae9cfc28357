"""Pull requests, their checks and their squash merge through GitHub's REST API (the github forge's PR side).

Checks are both systems GitHub has: commit statuses (the combined status of the commit) and check runs
(GitHub Actions and apps). They are terminal when every status is out of ``pending`` and every check run is
``completed``; one failure is already final, so the wait stops at the first one. A commit nobody reports a
check on (a repository without CI) passes after ``no_checks_grace_s``: CI needs a moment to register its runs
after a push, so "no checks yet" must not pass at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conveyor.adapters.forges.github_client import GitHubApi, error_message

FAILED_CONCLUSIONS = frozenset({"failure", "cancelled", "timed_out", "action_required", "startup_failure", "stale"})
FAILED_STATES = frozenset({"failure", "error"})
REFUSED_MERGE = (405, 409, 422)  # not mergeable, head moved, validation failed: the forge decides what follows


class ChecksState(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CLOSED = "closed"  # the PR was closed (or merged) by someone else while its checks ran


@dataclass(frozen=True)
class ChecksVerdict:
    state: ChecksState
    failed: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class MergeAttempt:
    merged: bool
    sha: str | None
    status: int
    message: str


class GitHubPulls:
    def __init__(
        self,
        api: GitHubApi,
        *,
        main_branch: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_interval_s: float = 10.0,
        no_checks_grace_s: float = 60.0,
    ) -> None:
        self.api = api
        self.main_branch = main_branch
        self.sleep = sleep
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.no_checks_grace_s = no_checks_grace_s

    def find_open(self, branch: str) -> dict[str, Any] | None:
        """The open PR from ``branch`` into main, if there is one."""
        params = {"state": "open", "head": f"{self.api.owner}:{branch}", "base": self.main_branch}
        for pull in self.api.paginate("/pulls", params):
            return dict(pull)
        return None

    def get(self, number: int) -> dict[str, Any]:
        pull: dict[str, Any] = self.api.json("GET", f"/pulls/{number}")
        return pull

    def open_or_update_pr(self, branch: str, title: str, body: str, label: str) -> int:
        """The number of the open PR from ``branch`` into main, opened or updated with ``title`` and ``body``."""
        existing = self.find_open(branch)
        if existing is None:
            created = self.api.json(
                "POST", "/pulls", json={"title": title, "head": branch, "base": self.main_branch, "body": body}
            )
            number = int(created["number"])
        else:
            number = int(existing["number"])
            if existing.get("title") != title or (existing.get("body") or "") != body:
                self.api.json("PATCH", f"/pulls/{number}", json={"title": title, "body": body})
        if label and label not in {item.get("name") for item in (existing or {}).get("labels", [])}:
            # A PR is an issue to the labels API; a label the repository lacks is created by GitHub.
            self.api.json("POST", f"/issues/{number}/labels", json={"labels": [label]})
        return number

    def checks_of(self, sha: str) -> tuple[list[str], list[str], list[str]]:
        """(failed, pending, passed) check names on ``sha``, from commit statuses and check runs alike."""
        failed: list[str] = []
        pending: list[str] = []
        passed: list[str] = []
        combined = self.api.json("GET", f"/commits/{sha}/status", params={"per_page": 100})
        for status in combined.get("statuses") or []:
            name, state = str(status.get("context")), status.get("state")
            (failed if state in FAILED_STATES else pending if state == "pending" else passed).append(name)
        for run in self.api.paginate(f"/commits/{sha}/check-runs", key="check_runs"):
            name = str(run.get("name"))
            if run.get("status") != "completed":
                pending.append(name)
            else:
                (failed if run.get("conclusion") in FAILED_CONCLUSIONS else passed).append(name)
        return failed, pending, passed

    def wait_for_checks(self, sha: str, timeout_s: float, *, pull_number: int | None = None) -> ChecksVerdict:
        """Poll the checks on ``sha`` until they are terminal, ``timeout_s`` passes, or the PR gets closed."""
        start = self.clock()
        while True:
            if pull_number is not None:
                pull = self.get(pull_number)
                if pull.get("state") == "closed":
                    how = "merged" if pull.get("merged") else "closed without merging"
                    return ChecksVerdict(ChecksState.CLOSED, detail=f"PR #{pull_number} was {how} by someone else")
            failed, pending, passed = self.checks_of(sha)
            elapsed = self.clock() - start
            if failed:
                return ChecksVerdict(ChecksState.FAILURE, tuple(failed), tuple(pending), "failed: " + ", ".join(failed))
            if not pending and (passed or elapsed >= self.no_checks_grace_s):
                detail = "passed: " + ", ".join(passed) if passed else "no checks reported on the commit"
                return ChecksVerdict(ChecksState.SUCCESS, detail=detail)
            if elapsed >= timeout_s:
                waiting = ", ".join(pending) or "no check reported yet"
                return ChecksVerdict(
                    ChecksState.TIMEOUT,
                    pending=tuple(pending),
                    detail=f"not finished within {timeout_s:.0f} s: {waiting}",
                )
            self.sleep(max(0.0, min(self.poll_interval_s, timeout_s - elapsed)))

    def merge_pr(self, number: int, sha: str, title: str, message: str) -> MergeAttempt:
        """Squash-merge PR ``number`` if its head is still ``sha``; GitHub's refusal is returned, not raised."""
        response = self.api.request(
            "PUT",
            f"/pulls/{number}/merge",
            json={"commit_title": title, "commit_message": message, "sha": sha, "merge_method": "squash"},
            allow=REFUSED_MERGE,
        )
        if response.status_code in REFUSED_MERGE:
            return MergeAttempt(False, None, response.status_code, error_message(response))
        body = response.json()
        return MergeAttempt(
            bool(body.get("merged")), body.get("sha"), response.status_code, str(body.get("message", ""))
        )
