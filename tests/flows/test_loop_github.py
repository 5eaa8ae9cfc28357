"""The execution loop and the release with ``forge: github`` (issue 6), against the fake GitHub: real HTTP, a real
bare repository as GitHub's copy, every request and response checked against GitHub's OpenAPI description.

The textkit example is delivered through pull requests (labelled, checks waited for, squash-merged through the
API), tracking commits go to ``conveyor/state`` and never straight to main, and the release pushes the tag,
creates the GitHub release and closes the milestone.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.services.backlog_loader import load_backlog
from flows.bootstrap import bootstrap
from flows.milestone_release import milestone_release
from tests.conftest import git
from tests.flows.loop_support import EXAMPLE, TICKETS, edit_build_spec, edit_script, run_loop
from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_repo import fake_github


def _second_docs_step(script: dict[str, Any]) -> None:
    entry = next(e for e in script["entries"] if e.get("role") == "implementer" and e.get("ticket") == "TK-DOC-001")
    again = {
        "path": "docs/api.md",
        "old": "# textkit library API\n",
        "new": "# textkit library API\n\nChecked by CI.\n",
    }
    entry["steps"].append({"notes": "after the failing checks", "replace": again})


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with fake_github(tmp_path, name="textkit", seed=None) as running:  # the test pushes textkit itself
        yield running


@pytest.mark.slow
def test_tickets_merge_through_pull_requests_and_the_release_lands_on_github(
    tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_GITHUB_TOKEN", "ghp_fake_token")
    spec = {"forge": "github", "github": {"api_url": github.url, "poll_interval_s": 0.05, "checks_timeout_s": 60}}
    repo = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, repo)
    edit_build_spec(repo, agents={"sandbox": "none"}, **spec)
    git(repo, "init", "-q", "-b", "main")
    # owner/name come from the remote's URL; git itself reaches the fake's bare repository through insteadOf.
    git(repo, "remote", "add", "origin", "https://github.com/acme/textkit.git")
    git(repo, "config", f"url.{github.remote}.insteadOf", "https://github.com/acme/textkit.git")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "textkit skeleton")
    git(repo, "push", "-q", "origin", "main")
    bootstrap(repo=str(repo))
    github.failing_heads["conveyor/tk-doc-001"] = 1  # the first PR of TK-DOC-001 fails its checks
    edit_script(repo, _second_docs_step)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qam", "script: a second docs step")

    (issue,) = github.issues.values()  # a plan without phases: one issue for the milestone, in its milestone
    assert issue.title == "Milestone 0.0.1" and "TK-FEAT-001" in issue.body and "- [ ] TK-FEAT-001:" in issue.body
    links = {t.issue for t in load_backlog(repo).backlog}
    assert len(links) == 1 and str(links.pop()).endswith(f"/issues/{issue.number}")

    result = run_loop(repo)

    assert result["stopped"] == "" and sorted(result["done"]) == sorted(TICKETS)
    pulls = list(github.pulls.values())
    assert len(pulls) == len(TICKETS) and all(p.merged and "conveyor" in p.labels for p in pulls)
    merged = git(github.remote, "log", "--format=%B", "main")
    for ticket in TICKETS:
        assert merged.count(f"Conveyor-Ticket: {ticket}\n") == 1  # each merged once, by its squash commit
    subjects = git(github.remote, "log", "--format=%s", "main").splitlines()
    assert not any("checkpoint" in s for s in subjects)  # never a direct push of a tracking commit to main
    state = git(github.remote, "log", "--format=%s", "conveyor/state").splitlines()
    assert any("checkpoint" in s for s in state)  # tracking commits went to conveyor/state
    assert all(t.state.value == "done" for t in load_backlog(repo).backlog)
    feedback = next((repo / "automations/runs").glob("RUN-*/record/feedback/TK-DOC-001.md")).read_text()
    assert "CI checks failed on the pull request" in feedback  # back to the implementer, then merged
    assert "Checked by CI." in (repo / "docs/api.md").read_text()

    released = asyncio.run(milestone_release(repo=str(repo)))
    assert released["tag"] == "v0.0.1"
    assert git(github.remote, "cat-file", "-t", "v0.0.1").strip() == "tag"
    (release,) = github.releases.values()
    assert release.tag == "v0.0.1" and "textkit 0.0.1" in release.body
    assert [m.state for m in github.milestones.values()] == ["closed"]
    assert issue.state == "closed"  # the release closed the milestone's issue
