"""The github forge's API pieces (PRs, checks, milestones, phase issues, releases, rate limits, the token) against
the fake GitHub, and the fake's own judge: GitHub's OpenAPI description and @octokit/fixtures' recorded cases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blocks.github_token import resolve_github_token
from conveyor.adapters.forges.github import GitHubForge
from conveyor.adapters.forges.github_client import GitHubRateLimitError, GitHubTokenMissingError, token_from_env
from conveyor.adapters.forges.github_pulls import ChecksState
from tests.conftest import git
from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_openapi import (
    DescriptionMissingError,
    github_description,
    load_description,
    recorded_cases,
)
from tests.support.fake_github_repo import Clock, commit_on_branch

RELEASE_NOTES = "## 0.0.1\n- the first phase\n"


@pytest.fixture
def forge(checkout: Path, fake: FakeGitHub, clock: Clock) -> Iterator[GitHubForge]:
    made = GitHubForge(
        checkout,
        owner=fake.owner,
        name=fake.name,
        token="t",
        api_url=fake.url,
        sleep=clock.sleep,
        clock=clock.monotonic,
        wall_clock=clock.time,
    )
    yield made
    made.close()


def pushed_branch(checkout: Path, branch: str) -> str:
    sha = commit_on_branch(checkout, branch, {"src/feature.py": f"NAME = {branch!r}\n"})
    git(checkout, "push", "-q", "origin", f"{branch}:{branch}")
    return sha


def calls(fake: FakeGitHub, operation_id: str) -> int:
    return sum(seen.operation_id == operation_id for seen in fake.seen)


def test_open_or_update_pr_keeps_one_pr_per_branch(forge: GitHubForge, fake: FakeGitHub, checkout: Path) -> None:
    pushed_branch(checkout, "conveyor/tk-1")

    first = forge.pulls.open_or_update_pr("conveyor/tk-1", "TK-1: first title", "body", "conveyor")
    second = forge.pulls.open_or_update_pr("conveyor/tk-1", "TK-1: better title", "new body", "conveyor")

    assert first == second
    (pull,) = fake.pulls.values()
    assert (pull.title, pull.body, pull.labels) == ("TK-1: better title", "new body", ["conveyor"])
    assert calls(fake, "pulls/create") == 1
    assert calls(fake, "pulls/update") == 1
    assert calls(fake, "issues/add-labels") == 1  # the label was already there the second time


def test_a_commit_without_any_check_passes_after_the_grace_period(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path, clock: Clock
) -> None:
    fake.ci = None
    sha = pushed_branch(checkout, "conveyor/tk-2")

    verdict = forge.pulls.wait_for_checks(sha, 600)

    assert verdict.state is ChecksState.SUCCESS
    assert verdict.detail == "no checks reported on the commit"
    assert 60 <= sum(clock.sleeps) < 600


def test_milestone_phase_issue_and_release_are_idempotent(forge: GitHubForge, fake: FakeGitHub, checkout: Path) -> None:
    fake.max_per_page = 2  # every list below spans pages: the Link headers are followed
    for title in ("0.0.0", "0.0.2", "0.0.3"):
        forge.issues.ensure_milestone(title)
    milestone = forge.issues.ensure_milestone("0.0.1", "Phase 1")
    pushed_branch(checkout, "conveyor/p1")
    forge.pulls.open_or_update_pr("conveyor/p1", "Phase 1: Foundations", "a PR with the phase's title", "conveyor")
    for title in ("Other 1", "Other 2"):
        forge.issues.open_phase_issue(title, "x", None, [])

    number, url = forge.issues.open_phase_issue("Phase 1: Foundations", "- [ ] TK-1", milestone, ["phase"])
    again, url_again = forge.issues.open_phase_issue("Phase 1: Foundations", "- [x] TK-1", milestone, ["phase"])

    assert forge.issues.ensure_milestone("0.0.3") == 3
    assert forge.issues.ensure_milestone("0.0.1") == milestone == 4
    assert len(fake.milestones) == 4
    assert (again, url_again) == (number, url)
    assert url == f"https://github.com/acme/widgets/issues/{number}"
    issue = fake.issues[number]
    assert (issue.body, issue.milestone, issue.labels) == ("- [x] TK-1", milestone, ["phase"])
    assert fake.pulls[1].title == "Phase 1: Foundations"  # the PR of the same title was not taken for the issue

    forge.issues.close_issue(number)
    forge.issues.close_milestone(milestone)
    release_url = forge.issues.create_release("v0.0.1", "0.0.1", RELEASE_NOTES)
    release_again = forge.issues.create_release("v0.0.1", "0.0.1", RELEASE_NOTES + "- fixed notes\n")

    assert (issue.state, issue.state_reason) == ("closed", "completed")
    assert fake.milestones[milestone].state == "closed"
    assert release_url == release_again == "https://github.com/acme/widgets/releases/tag/v0.0.1"
    (release,) = fake.releases.values()
    assert (release.tag, release.target, release.body) == ("v0.0.1", "main", RELEASE_NOTES + "- fixed notes\n")


def test_rate_limit_retries_are_bounded(forge: GitHubForge, fake: FakeGitHub, clock: Clock) -> None:
    limited = {"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest"}
    fake.fail_next("issues/list-milestones", 429, limited, headers={"retry-after": "5"}, times=10)

    with pytest.raises(GitHubRateLimitError, match="gave up after 3 retries"):
        forge.issues.ensure_milestone("0.0.1")

    assert clock.sleeps == [5, 5, 5]
    assert calls(fake, "issues/list-milestones") == 4


def test_a_rate_limit_longer_than_the_forge_waits_is_an_error_at_once(
    forge: GitHubForge, fake: FakeGitHub, clock: Clock
) -> None:
    limited = {"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest"}
    reset = str(int(clock.time()) + 3600)
    fake.fail_next("issues/create", 403, limited, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})

    with pytest.raises(GitHubRateLimitError, match="next wait 3601 s"):
        forge.issues.open_phase_issue("Phase 1", "body", None, [])

    assert clock.sleeps == []


def test_the_token_comes_from_the_environment_when_none_is_given(
    checkout: Path, fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "from-env")
    forge = GitHubForge(checkout, owner=fake.owner, name=fake.name, api_url=fake.url)
    try:
        forge.issues.ensure_milestone("0.0.1")
    finally:
        forge.close()
    assert {seen.authorization for seen in fake.seen} == {"Bearer from-env"}


def test_token_lookup_order_and_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert token_from_env({"GITHUB_TOKEN": "b", "CONVEYOR_GITHUB_TOKEN": "a"}) == "a"
    assert token_from_env({"GITHUB_TOKEN": " b\n"}) == "b"
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("CONVEYOR_GITHUB_TOKEN", raising=False)
    with pytest.raises(GitHubTokenMissingError) as missing:
        resolve_github_token(None)
    assert "Secret block" in str(missing.value) and "GITHUB_TOKEN" in str(missing.value)
    monkeypatch.setenv("GITHUB_TOKEN", "env-token")
    assert resolve_github_token(None) == "env-token"


# --- the judge itself ---------------------------------------------------------------------------------


RECORDED = [  # @octokit/fixtures cases of operations the forge uses: (scenario, method, part of the path)
    ("create-status", "get", "/status"),  # the combined status the forge polls
    ("add-labels-to-issue", "post", "/labels"),
    ("release-assets", "get", "/releases/tags/"),
    ("errors", "post", "/labels"),  # a 422 Validation Failed
]


def recorded(scenario: str, method: str, part: str) -> dict[str, Any]:
    return next(c for c in recorded_cases(scenario) if c["method"] == method and part in c["path"])


def judge(case: dict[str, Any], response: Any) -> list[str]:
    description = github_description()
    body = json.dumps(case["body"]).encode() if isinstance(case.get("body"), dict) else b""
    headers = {"Content-Type": "application/json"}
    problems = description.request_problems(case["method"], case["path"], {}, body)
    return problems + description.response_problems(
        case["method"], case["path"], {}, body, case["status"], headers, json.dumps(response).encode()
    )


@pytest.mark.parametrize(("scenario", "method", "part"), RECORDED)
def test_githubs_recorded_answers_pass_the_validator(scenario: str, method: str, part: str) -> None:
    case = recorded(scenario, method, part)
    assert judge(case, case["response"]) == []


def test_a_recorded_answer_missing_a_required_field_is_rejected() -> None:
    case = recorded("release-assets", "get", "/releases/tags/")
    broken = {k: v for k, v in case["response"].items() if k != "tag_name"}

    problems = judge(case, broken)

    assert len(problems) == 1 and "'tag_name' is a required property" in problems[0]


def test_the_fake_reports_traffic_the_description_rejects(fake: FakeGitHub) -> None:
    with httpx.Client(base_url=fake.url) as client:
        misspelt = client.post("/repos/acme/widgets/milestones", json={"title": "0.0.1", "due": "soon"})
        undescribed = client.get("/repos/acme/widgets/no-such-thing")

    assert misspelt.status_code == 201  # the fake still answers; the test fails on the collected problem
    assert undescribed.status_code == 404
    assert any("'due' was unexpected" in v for v in fake.violations)
    assert any("no-such-thing" in v for v in fake.violations)
    fake.violations.clear()  # seen: the fixture would otherwise fail this test


def test_a_missing_description_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(DescriptionMissingError, match="make github-api"):
        load_description(tmp_path / "absent.json")
