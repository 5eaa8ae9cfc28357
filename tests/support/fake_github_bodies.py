"""Response bodies of the fake GitHub: the description's own examples with the fake's state written over them.

Starting from GitHub's examples keeps every field a real response has (and the validator checks the result).
The error bodies follow GitHub's recorded answers (@octokit/fixtures, scenario ``errors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_github_openapi import GitHubDescription

WEB = "https://github.com"
API = "https://api.github.com"
DOCS = "https://docs.github.com/rest"
AT = "2025-01-01T00:00:00Z"


@dataclass
class Pull:
    number: int
    branch: str
    title: str
    body: str
    head_sha: str
    state: str = "open"
    merged: bool = False
    merge_commit_sha: str | None = None
    labels: list[str] = field(default_factory=list)


@dataclass
class Issue:
    number: int
    title: str
    body: str
    labels: list[str]
    milestone: int | None
    state: str = "open"
    state_reason: str | None = None


@dataclass
class Milestone:
    number: int
    title: str
    description: str
    state: str = "open"


@dataclass
class Release:
    id: int
    tag: str
    name: str
    body: str
    target: str


def error(message: str) -> dict[str, Any]:
    return {"message": message, "documentation_url": DOCS}


def validation_failed(resource: str, message: str) -> dict[str, Any]:
    return {
        "message": "Validation Failed",
        "errors": [{"resource": resource, "code": "custom", "message": message}],
        "documentation_url": DOCS,
    }


class Bodies:
    def __init__(self, description: GitHubDescription, owner: str, name: str) -> None:
        self.d = description
        self.owner = owner
        self.name = name
        self.api = f"{API}/repos/{owner}/{name}"
        self.web = f"{WEB}/{owner}/{name}"

    def label(self, name: str, index: int = 0) -> dict[str, Any]:
        body = self.d.example("label-items")[0]
        body.update(id=1000 + index, name=name, url=f"{self.api}/labels/{name}", default=False)
        return dict(body)

    def pull(self, pull: Pull, main_sha: str, *, simple: bool = False) -> dict[str, Any]:
        body = self.d.example("pull-request-simple-items")[0] if simple else self.d.example("pull-request")
        closed = pull.state == "closed"
        body.update(
            id=pull.number,
            number=pull.number,
            url=f"{self.api}/pulls/{pull.number}",
            html_url=f"{self.web}/pull/{pull.number}",
            state=pull.state,
            title=pull.title,
            body=pull.body,
            labels=[self.label(name, i) for i, name in enumerate(pull.labels)],
            requested_teams=[],  # the example's team lacks the ``type`` its schema requires
            draft=False,
            closed_at=AT if closed else None,
            merged_at=AT if pull.merged else None,
            merge_commit_sha=pull.merge_commit_sha,
        )
        body["head"].update(ref=pull.branch, sha=pull.head_sha, label=f"{self.owner}:{pull.branch}")
        body["base"].update(ref="main", sha=main_sha, label=f"{self.owner}:main")
        if not simple:
            body.update(merged=pull.merged, mergeable=None if closed else True, mergeable_state="clean")
        return dict(body)

    def pull_as_issue(self, pull: Pull) -> dict[str, Any]:
        body = self.issue(Issue(pull.number, pull.title, pull.body, pull.labels, None, pull.state))
        body["pull_request"] = {
            "url": f"{self.api}/pulls/{pull.number}",
            "html_url": f"{self.web}/pull/{pull.number}",
            "diff_url": f"{self.web}/pull/{pull.number}.diff",
            "patch_url": f"{self.web}/pull/{pull.number}.patch",
            "merged_at": AT if pull.merged else None,
        }
        return body

    def issue(self, issue: Issue, milestone: Milestone | None = None) -> dict[str, Any]:
        body = self.d.example("issue")
        body.pop("pull_request", None)
        body.update(
            id=issue.number,
            number=issue.number,
            url=f"{self.api}/issues/{issue.number}",
            html_url=f"{self.web}/issues/{issue.number}",
            title=issue.title,
            body=issue.body,
            state=issue.state,
            state_reason=issue.state_reason,
            closed_at=AT if issue.state == "closed" else None,
            labels=[self.label(name, i) for i, name in enumerate(issue.labels)],
            milestone=self.milestone(milestone) if milestone is not None else None,
        )
        return dict(body)

    def milestone(self, milestone: Milestone) -> dict[str, Any]:
        body = self.d.example("milestone")
        body.update(
            id=milestone.number,
            number=milestone.number,
            url=f"{self.api}/milestones/{milestone.number}",
            html_url=f"{self.web}/milestone/{milestone.number}",
            title=milestone.title,
            description=milestone.description,
            state=milestone.state,
            closed_at=AT if milestone.state == "closed" else None,
        )
        return dict(body)

    def release(self, release: Release) -> dict[str, Any]:
        body = self.d.example("release")
        body.update(
            id=release.id,
            url=f"{self.api}/releases/{release.id}",
            html_url=f"{self.web}/releases/tag/{release.tag}",
            tag_name=release.tag,
            name=release.name,
            body=release.body,
            target_commitish=release.target,
            assets=[],
        )
        return dict(body)

    def combined_status(self, sha: str, statuses: dict[str, str]) -> dict[str, Any]:
        body = self.d.example("combined-commit-status")
        template = body["statuses"][0]
        items = [
            {**template, "id": i + 1, "context": name, "state": state}
            for i, (name, state) in enumerate(statuses.items())
        ]
        states = set(statuses.values())
        overall = (
            "failure"
            if states & {"failure", "error"}
            else "pending"
            if not states or "pending" in states
            else "success"
        )
        body.update(
            sha=sha, state=overall, statuses=items, total_count=len(items), url=f"{self.api}/commits/{sha}/status"
        )
        return dict(body)

    def check_run(self, sha: str, index: int, name: str, conclusion: str | None) -> dict[str, Any]:
        body = self.d.example("check-run-paginated")["check_runs"][0]
        body.update(
            id=index + 1,
            name=name,
            head_sha=sha,
            status="completed" if conclusion else "in_progress",
            conclusion=conclusion,
            completed_at=AT if conclusion else None,
        )
        return dict(body)
