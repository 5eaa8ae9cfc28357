"""Milestones, phase issues and releases on GitHub (bootstrap and release; seed 001 Step 5).

Every call is idempotent, because bootstrap and release may run again after a crash: a milestone is found by
title, a phase issue by title (and updated), a release by tag (and updated).
"""

from __future__ import annotations

from typing import Any

from conveyor.adapters.forges.github_client import GitHubApi


class GitHubIssues:
    def __init__(self, api: GitHubApi, *, main_branch: str = "main") -> None:
        self.api = api
        self.main_branch = main_branch

    def ensure_milestone(self, title: str, description: str = "") -> int:
        """The number of the milestone called ``title`` (open or closed), created when there is none."""
        for milestone in self.api.paginate("/milestones", {"state": "all"}):
            if milestone.get("title") == title:
                return int(milestone["number"])
        created = self.api.json("POST", "/milestones", json={"title": title, "description": description})
        return int(created["number"])

    def find_issue(self, title: str) -> dict[str, Any] | None:
        """The issue called ``title`` (open or closed; pull requests, which this list also returns, skipped)."""
        for issue in self.api.paginate("/issues", {"state": "all"}):
            if issue.get("title") == title and "pull_request" not in issue:
                return dict(issue)
        return None

    def open_phase_issue(self, title: str, body: str, milestone: int | None, labels: list[str]) -> tuple[int, str]:
        """(number, html_url) of the phase issue called ``title``: created, or updated when it exists."""
        fields: dict[str, Any] = {"title": title, "body": body, "labels": labels, "milestone": milestone}
        existing = self.find_issue(title)
        if existing is None:
            issue = self.api.json("POST", "/issues", json={k: v for k, v in fields.items() if v is not None})
        else:
            issue = self.api.json("PATCH", f"/issues/{existing['number']}", json=fields)
        return int(issue["number"]), str(issue["html_url"])

    def close_issue(self, number: int) -> None:
        self.api.json("PATCH", f"/issues/{number}", json={"state": "closed", "state_reason": "completed"})

    def close_milestone(self, number: int) -> None:
        self.api.json("PATCH", f"/milestones/{number}", json={"state": "closed"})

    def create_release(self, tag: str, name: str, body: str, *, target: str | None = None) -> str:
        """The html_url of the release for ``tag``: created (the tag made on ``target``, default main) or updated."""
        found = self.api.request("GET", f"/releases/tags/{tag}", allow=(404,))
        if found.status_code == 404:
            fields = {"tag_name": tag, "target_commitish": target or self.main_branch, "name": name, "body": body}
            release = self.api.json("POST", "/releases", json=fields)
        else:
            release = self.api.json("PATCH", f"/releases/{found.json()['id']}", json={"name": name, "body": body})
        return str(release["html_url"])
