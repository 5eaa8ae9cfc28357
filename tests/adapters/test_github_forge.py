"""The github forge against a fake GitHub: real HTTP on 127.0.0.1, a real bare repository as the remote, and
every request and response checked against GitHub's OpenAPI description (tests/support/fake_github*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.adapters.forges.github import GitHubForge
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.merge import MergeRequest, MergeStatus, ticket_of
from conveyor.domain.tracking import code_paths
from tests.conftest import git
from tests.support.fake_github import Ci, FakeGitHub
from tests.support.fake_github_bodies import validation_failed
from tests.support.fake_github_repo import Clock, commit_on_branch, rebase_branch, show, write

TICKET = "TK-FEAT-001"
BRANCH = "conveyor/tk-feat-001"
RUN = "RUN-20250101-1200"
TOKEN = "ghp_test_token"


@pytest.fixture
def forge(checkout: Path, fake: FakeGitHub, clock: Clock) -> Iterator[GitHubForge]:
    made = GitHubForge(
        checkout,
        owner=fake.owner,
        name=fake.name,
        token=TOKEN,
        api_url=fake.url,
        author_name="Conveyor Bot",
        author_email="bot@conveyor.test",
        checks_timeout_s=120,
        poll_interval_s=10,
        sleep=clock.sleep,
        clock=clock.monotonic,
        wall_clock=clock.time,
    )
    yield made
    made.close()


def deliver(checkout: Path, files: dict[str, str] | None = None, branch: str = BRANCH) -> MergeRequest:
    head = commit_on_branch(
        checkout, branch, files or {"src/widgets.py": "def widget() -> str:\n    return 'better'\n"}
    )
    return MergeRequest(
        ticket_id=TICKET, title="Better widgets", branch=branch, qa_tree=tree(checkout, head), run_id=RUN
    )


def tree(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", f"{ref}^{{tree}}").strip()


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def operations(fake: FakeGitHub) -> list[str]:
    return [seen.operation_id or "?" for seen in fake.seen]


def test_a_ticket_lands_on_main_through_a_labelled_pr_with_green_checks(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path, clock: Clock
) -> None:
    before = tip(fake.remote)
    request = deliver(checkout)
    write(checkout, {"docs/TASKS.md": "# Tasks\n| TK-FEAT-001 | done |\n"})  # what the tracker writes first

    outcome = forge.integrate(request)

    assert outcome.status is MergeStatus.MERGED, outcome.detail
    merged = tip(fake.remote)
    assert outcome.commit == merged
    assert git(fake.remote, "rev-parse", f"{merged}^").strip() == before  # one squash commit on main
    assert ticket_of(git(fake.remote, "log", "-1", "--format=%B", merged)) == TICKET
    assert git(fake.remote, "log", "-1", "--format=%s", merged).strip() == "TK-FEAT-001: Better widgets"
    assert not code_paths(GitRepo(checkout).diff_names(request.qa_tree, merged))  # the code that passed QA
    assert show(fake.remote, merged, "docs/TASKS.md") == "# Tasks\n"  # tracking files never reach main by a PR
    (pull,) = fake.pulls.values()
    assert (pull.state, pull.merged, pull.labels, pull.branch) == ("closed", True, ["conveyor"], BRANCH)
    merge_call = next(s for s in fake.seen if s.operation_id == "pulls/merge")
    assert merge_call.body["merge_method"] == "squash"
    assert {s.authorization for s in fake.seen} == {f"Bearer {TOKEN}"}
    assert clock.sleeps == [10]  # one poll saw the checks running, the next saw them pass
    # Local main now holds GitHub's main and records the ticket in the same sync.
    assert GitRepo(checkout).is_ancestor(merged, "main")
    assert show(checkout, "main", "docs/TASKS.md") == "# Tasks\n| TK-FEAT-001 | done |\n"
    assert git(checkout, "status", "--porcelain").strip() == ""
    assert forge.merged_commit(TICKET) == merged


def test_push_main_sends_tracking_commits_to_the_state_branch_never_to_main(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path
) -> None:
    assert forge.integrate(deliver(checkout)).status is MergeStatus.MERGED
    main_on_github = tip(fake.remote)
    write(checkout, {"docs/TASKS.md": "# Tasks\ncheckpoint\n"})
    git(checkout, "commit", "-q", "-am", "checkpoint")

    assert forge.push_main() is True
    assert tip(fake.remote) == main_on_github
    assert tip(fake.remote, "conveyor/state") == tip(checkout)

    write(checkout, {"src/widgets.py": "# a code change outside any PR\n"})
    git(checkout, "commit", "-q", "-am", "code on local main")
    assert forge.push_main() is False  # the state branch carries records only
    assert tip(fake.remote, "conveyor/state") != tip(checkout)


def test_a_ticket_already_on_main_is_not_merged_again(forge: GitHubForge, fake: FakeGitHub, checkout: Path) -> None:
    request = deliver(checkout)
    first = forge.integrate(request)
    calls = len(fake.seen)

    again = forge.integrate(request)

    assert (again.status, again.commit) == (MergeStatus.ALREADY_MERGED, first.commit)
    assert len(fake.seen) == calls
    assert len(fake.pulls) == 1


def test_failing_checks_send_the_ticket_back_and_leave_main_alone(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path
) -> None:
    fake.ci = Ci(runs={"tests": "failure", "build": "success"})
    before = tip(fake.remote)

    outcome = forge.integrate(deliver(checkout))

    assert outcome.status is MergeStatus.CHECKS_FAILED
    assert "tests" in outcome.detail and "build" not in outcome.detail
    assert tip(fake.remote) == before
    assert [p.state for p in fake.pulls.values()] == ["open"]
    assert "pulls/merge" not in operations(fake)


def test_checks_that_never_finish_time_out_without_sleeping_for_real(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path, clock: Clock
) -> None:
    fake.ci = Ci(pending_polls=10**6)
    start = clock.now

    outcome = forge.integrate(deliver(checkout))

    assert outcome.status is MergeStatus.REFUSED
    assert "not finished within 120 s" in outcome.detail and "tests" in outcome.detail
    assert clock.now - start == 120
    assert "pulls/merge" not in operations(fake)


def test_a_pr_closed_by_a_person_is_refused(forge: GitHubForge, fake: FakeGitHub, checkout: Path, clock: Clock) -> None:
    fake.ci = Ci(pending_polls=3)
    clock.then(lambda: fake.close_pull(1))  # while Conveyor waits for the checks
    before = tip(fake.remote)

    outcome = forge.integrate(deliver(checkout))

    assert outcome.status is MergeStatus.REFUSED
    assert "closed without merging" in outcome.detail
    assert tip(fake.remote) == before
    assert "pulls/merge" not in operations(fake)


def test_a_pr_merged_by_a_person_counts_once_its_code_is_checked(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path, clock: Clock
) -> None:
    fake.ci = Ci(pending_polls=3)
    clock.then(lambda: fake.squash(fake.pulls[1], "Merged by hand", ""))
    request = deliver(checkout)

    outcome = forge.integrate(request)

    assert outcome.status is MergeStatus.MERGED
    assert outcome.commit == tip(fake.remote)
    assert not code_paths(GitRepo(checkout).diff_names(request.qa_tree, tip(fake.remote)))


def test_a_422_on_merge_while_main_moved_asks_for_a_rebase_then_merges(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path
) -> None:
    fake.fail_next(
        "pulls/merge",
        422,
        validation_failed("PullRequest", "Base branch was modified. Review and try the merge again."),
        before=lambda: fake.push_to_main({"src/other.py": "OTHER = 1\n"}),
    )
    request = deliver(checkout)

    outcome = forge.integrate(request)

    assert outcome.status is MergeStatus.NEEDS_REBASE
    assert outcome.moved_paths == ("src/other.py",)
    assert "422" in outcome.detail and "Base branch was modified" in outcome.detail
    assert show(checkout, "main", "src/other.py") == "OTHER = 1\n"  # local main synced: the rebase picks it up

    rebased = rebase_branch(checkout, BRANCH)
    retried = forge.integrate(request.model_copy(update={"qa_tree": tree(checkout, rebased)}))

    assert retried.status is MergeStatus.MERGED, retried.detail
    assert show(fake.remote, "main", "src/other.py") == "OTHER = 1\n"
    assert "better" in show(fake.remote, "main", "src/widgets.py")


def test_a_422_on_merge_for_no_reason_git_can_see_is_refused_with_githubs_message(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path
) -> None:
    fake.fail_next("pulls/merge", 422, validation_failed("PullRequest", "Required review is missing"))

    outcome = forge.integrate(deliver(checkout))

    assert outcome.status is MergeStatus.REFUSED
    assert "422" in outcome.detail and "Required review is missing" in outcome.detail


def test_a_pr_github_finds_unmergeable_after_main_moved_asks_for_a_rebase(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path
) -> None:
    fake.fail_next(
        "pulls/merge",
        405,
        {"message": "Pull Request is not mergeable"},
        before=lambda: fake.push_to_main({"src/widgets.py": "def widget() -> str:\n    return 'theirs'\n"}),
    )

    outcome = forge.integrate(deliver(checkout))

    assert outcome.status is MergeStatus.NEEDS_REBASE  # the queue's rebase then meets the conflict itself
    assert outcome.moved_paths == ("src/widgets.py",)


def test_main_moved_in_code_before_the_pr_asks_for_a_rebase_without_opening_one(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path
) -> None:
    request = deliver(checkout)
    fake.push_to_main({"src/other.py": "OTHER = 2\n"})

    outcome = forge.integrate(request)

    assert (outcome.status, outcome.moved_paths) == (MergeStatus.NEEDS_REBASE, ("src/other.py",))
    assert fake.pulls == {}


def test_rate_limits_are_waited_out_with_the_injected_sleep(
    forge: GitHubForge, fake: FakeGitHub, checkout: Path, clock: Clock
) -> None:
    secondary = {
        "message": "You have exceeded a secondary rate limit.",
        "documentation_url": "https://docs.github.com/rest",
    }
    fake.fail_next("pulls/create", 403, secondary, headers={"retry-after": "7"})
    reset = str(int(clock.time()) + 30)
    primary = {"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest"}
    limit_headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    fake.fail_next("repos/get-combined-status-for-ref", 429, primary, headers=limit_headers)

    outcome = forge.integrate(deliver(checkout))

    assert outcome.status is MergeStatus.MERGED, outcome.detail
    assert clock.sleeps[:2] == [7, 24]  # then until the reset: 30 s from the start, 7 already waited, plus 1
    assert len(fake.pulls) == 1


def test_a_change_to_tracking_files_is_refused(forge: GitHubForge, fake: FakeGitHub, checkout: Path) -> None:
    outcome = forge.integrate(deliver(checkout, {"docs/TASKS.md": "# mine\n"}))

    assert outcome.status is MergeStatus.REFUSED
    assert "docs/TASKS.md" in outcome.detail
    assert fake.seen == []


def test_revert_lands_through_a_pr_and_frees_the_ticket(forge: GitHubForge, fake: FakeGitHub, checkout: Path) -> None:
    before = tip(fake.remote)
    merged = forge.integrate(deliver(checkout)).commit
    assert merged is not None

    reverted = forge.revert(merged, f"Revert {TICKET}: ops step failed")

    assert reverted == tip(fake.remote)
    assert tree(fake.remote, reverted) == tree(fake.remote, before)
    assert "Conveyor-Reverts: TK-FEAT-001" in git(fake.remote, "log", "-1", "--format=%B", reverted)
    assert forge.merged_commit(TICKET) is None
    assert [p.branch for p in fake.pulls.values()] == [BRANCH, "conveyor/revert-tk-feat-001"]
