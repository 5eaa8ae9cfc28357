"""The ``github`` forge: a ticket reaches main only through a pull request squash-merged by GitHub's API.

Trunk rules (ARCHITECTURE.md §4): ticket branches come from main, PRs go to main, merges are squash only, and
Conveyor never pushes main. Its tracking commits (TASKS.md, run-state ...) go to the branch ``conveyor/state``,
which the release PR merges. How a ticket is integrated:

1. fetch; if the ticket's ``Conveyor-Ticket`` trailer is on GitHub's main, it is ALREADY_MERGED;
2. the same refusals as the local forge: a change touching tracking files, or code that is not the tree that
   passed QA, is REFUSED; if GitHub's main moved in code since the branch last saw it, NEEDS_REBASE (local
   main is merged with GitHub's main first, so the queue's rebase onto local main picks the new code up);
3. the ticket branch is pushed as one commit on GitHub's main: the QA'd code over main's tracking files, so the
   PR never carries tracking files and its squash has exactly the QA'd code; the PR is opened (or updated)
   with the label;
4. the checks are awaited (failure: CHECKS_FAILED; timeout, or the PR closed by a person: REFUSED);
5. the squash merge goes through the API with the squash message (trailers included) as the commit's title and
   message and the pushed sha (GitHub refuses if the head moved). A refusal (405 not mergeable, 409 head
   moved, 422 validation failed) is looked into after a fetch: main moved in code → NEEDS_REBASE (a real
   conflict then shows in the queue's rebase, which sends the ticket back), otherwise REFUSED with GitHub's
   message (a rule of the repository, such as a required review: a person's call);
6. after the merge: fetch and check that the merge commit's code is the QA tree (REFUSED with the commit
   otherwise: it is on main, a person must look), then merge GitHub's main into local main, keeping the
   tracking files the tracker wrote, so the commit that syncs main also records the ticket.

The race left: GitHub's main moving between the last fetch and the merge call. The squash is then a real
three-way merge and step 6 reports it when the code differs. Git pushes and fetches use the remote's own
credentials (ssh key or credential helper); the token is for the REST API only.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from conveyor.adapters.forges.github_client import API_URL, GitHubApi, GitHubError, token_from_env
from conveyor.adapters.forges.github_issues import GitHubIssues
from conveyor.adapters.forges.github_pulls import ChecksState, GitHubPulls, MergeAttempt
from conveyor.adapters.forges.github_trees import (
    compose_tree,
    merge_keeping_tracking,
    with_working_tracking,
    working_tracking_specs,
)
from conveyor.adapters.forges.trailers import merged_commit_on
from conveyor.adapters.git_repo import DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME, GitRepo, GitRepoError
from conveyor.domain.merge import (
    REVERT_TRAILER,
    MergeOutcome,
    MergeRequest,
    MergeStatus,
    squash_message,
    ticket_of,
)
from conveyor.domain.tracking import code_paths, is_tracking_path

STATE_BRANCH = "conveyor/state"


class GitHubForgeError(GitHubError):
    """The forge cannot do what it was asked (a revert that did not land, a local main that cannot sync)."""


class GitHubForge:
    name = "github"

    def __init__(
        self,
        repo: Path,
        *,
        owner: str,
        name: str,
        token: str | None = None,
        api_url: str = API_URL,
        main_branch: str = "main",
        remote: str = "origin",
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
        label: str = "conveyor",
        state_branch: str = STATE_BRANCH,
        checks_timeout_s: float = 3600.0,
        poll_interval_s: float = 15.0,
        no_checks_grace_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.repo = repo
        self.owner = owner
        self.repo_name = name
        self.main_branch = main_branch
        self.remote = remote
        self.author_name = author_name
        self.author_email = author_email
        self.label = label
        self.state_branch = state_branch
        self.checks_timeout_s = checks_timeout_s
        self.api = GitHubApi(
            owner=owner,
            name=name,
            token=token if token is not None else token_from_env(),
            api_url=api_url,
            sleep=sleep,
            wall_clock=wall_clock,
            transport=transport,
        )
        self.pulls = GitHubPulls(
            self.api,
            main_branch=main_branch,
            sleep=sleep,
            clock=clock,
            poll_interval_s=poll_interval_s,
            no_checks_grace_s=no_checks_grace_s,
        )
        self.issues = GitHubIssues(self.api, main_branch=main_branch)

    @property
    def upstream(self) -> str:
        """GitHub's main as last fetched."""
        return f"refs/remotes/{self.remote}/{self.main_branch}"

    def close(self) -> None:
        self.api.close()

    # --- the Forge port ---------------------------------------------------------------------------

    def merged_commit(self, ticket_id: str) -> str | None:
        """The ticket's squash commit on GitHub's main (fetched), unless a later commit reverted it."""
        git = GitRepo(self.repo)
        with contextlib.suppress(GitRepoError):  # offline: what was fetched last answers; integrate fetches for real
            git.fetch(self.remote)
        return self._merged_on_github(git, ticket_id)

    def integrate(self, request: MergeRequest) -> MergeOutcome:
        git = GitRepo(self.repo)
        git.fetch(self.remote)
        upstream = git.rev_parse(self.upstream)
        already = self._merged_on_github(git, request.ticket_id)
        if already is not None:
            self._sync_main(git, upstream)
            return MergeOutcome(
                status=MergeStatus.ALREADY_MERGED, commit=already, detail="found on GitHub's main by trailer"
            )
        head = git.rev_parse(request.branch)
        main = git.rev_parse(self.main_branch)
        touched = [p for p in git.diff_names(git.merge_base(main, head) or main, head) if is_tracking_path(p)]
        if touched:
            return MergeOutcome(
                status=MergeStatus.REFUSED,
                detail="the change touches Conveyor's tracking files, which only the loop writes: "
                + ", ".join(touched),
            )
        drift = code_paths(git.diff_names(request.qa_tree, head))
        if drift:
            return MergeOutcome(
                status=MergeStatus.REFUSED,
                detail=f"the branch's code differs from the tree that passed QA in {', '.join(drift)}",
            )
        seen = git.merge_base(upstream, head)
        if seen is None:
            return MergeOutcome(
                status=MergeStatus.REFUSED, detail=f"{request.branch} shares no history with GitHub's main"
            )
        moved = code_paths(git.diff_names(seen, upstream))
        if moved:
            self._sync_main(git, upstream)
            return MergeOutcome(status=MergeStatus.NEEDS_REBASE, moved_paths=tuple(moved))
        message = squash_message(request.ticket_id, request.title, request.run_id)
        proposal = git.commit_tree(
            compose_tree(self.repo, head, upstream), [upstream], message, self.author_name, self.author_email
        )
        git.push(self.remote, f"+{proposal}:refs/heads/{request.branch}")  # forced: a rebase rewrites the branch
        body = (
            f"Ticket {request.ticket_id} (run {request.run_id}), delivered by Conveyor.\n\n"
            "Squash-merged by Conveyor once its checks pass; its code is the tree that passed QA "
            f"({request.qa_tree[:12]})."
        )
        number = self.pulls.open_or_update_pr(request.branch, message.split("\n", 1)[0], body, self.label)
        return self._land(git, number, proposal, request.qa_tree, message)

    def revert(self, commit: str, message: str) -> str:
        """Undo ``commit`` (GitHub main's last code change) through a revert PR; the merge commit's sha.

        Raises GitHubForgeError when the revert cannot land (main moved in code since, failing checks ...).
        """
        git = GitRepo(self.repo)
        git.fetch(self.remote)
        upstream = git.rev_parse(self.upstream)
        moved = code_paths(git.diff_names(commit, upstream))
        if moved:
            raise GitHubForgeError(f"cannot revert {commit[:10]}: GitHub's main changed since in {', '.join(moved)}")
        ticket = ticket_of(git.commit_info(commit)[2])
        if ticket is not None:
            message = f"{message.rstrip()}\n\n{REVERT_TRAILER}: {ticket}\n"
        restored = git.tree_of(f"{commit}^")
        proposal = git.commit_tree(
            compose_tree(self.repo, restored, upstream), [upstream], message, self.author_name, self.author_email
        )
        branch = f"conveyor/revert-{(ticket or commit[:10]).lower()}"
        git.push(self.remote, f"+{proposal}:refs/heads/{branch}")
        title = message.split("\n", 1)[0]
        number = self.pulls.open_or_update_pr(branch, title, f"Reverts {commit}.", self.label)
        outcome = self._land(git, number, proposal, restored, message)
        if outcome.status is not MergeStatus.MERGED or outcome.commit is None:
            raise GitHubForgeError(
                f"the revert of {commit[:10]} (PR #{number}) did not land: {outcome.status}: {outcome.detail}"
            )
        return outcome.commit

    def push_main(self) -> bool:
        """Push local main's tip to ``conveyor/state`` (never to main): the tracking commits, for the release PR.

        Only when local main contains GitHub's main and differs from it in tracking paths alone, so the release
        PR carries records and nothing else; the push is a plain fast-forward (never forced). False when there
        is no remote, local main is behind GitHub's main (the next merge syncs it), or git fails.
        """
        git = GitRepo(self.repo)
        if not git.has_remote(self.remote):
            return False
        try:
            git.fetch(self.remote)
            upstream = git.rev_parse(self.upstream)
            main = git.rev_parse(self.main_branch)
            if not git.is_ancestor(upstream, main) or code_paths(git.diff_names(upstream, main)):
                return False
            git.push(self.remote, f"{main}:refs/heads/{self.state_branch}")
        except GitRepoError:
            return False
        return True

    def land_release(self, commit: str, tag: str) -> str:
        """The release PR (ARCHITECTURE.md §4): ``commit``, local main's tip holding the tracking commits and the
        release's documents, lands on GitHub's main through the squash-merged PR of ``conveyor/release-<tag>``.

        Returns the merge commit on GitHub's main (the one to tag). GitHubForgeError when GitHub's main has
        changes local main lacks (sync and release again), or when the PR does not land.
        """
        git = GitRepo(self.repo)
        git.fetch(self.remote)
        upstream = git.rev_parse(self.upstream)
        if not git.is_ancestor(upstream, commit):
            raise GitHubForgeError(f"GitHub's main has commits local {self.main_branch} lacks: sync, then release")
        message = git.commit_info(commit)[2]
        tree = git.tree_of(commit)
        proposal = git.commit_tree(tree, [upstream], message, self.author_name, self.author_email)
        branch = f"conveyor/release-{tag.lower()}"
        git.push(self.remote, f"+{proposal}:refs/heads/{branch}")
        title, _, body = message.partition("\n\n")
        number = self.pulls.open_or_update_pr(branch, title, body or title, self.label)
        outcome = self._land(git, number, proposal, tree, message)
        if outcome.status is not MergeStatus.MERGED or outcome.commit is None:
            raise GitHubForgeError(f"the release PR #{number} did not land: {outcome.status}: {outcome.detail}")
        return outcome.commit

    # --- steps ------------------------------------------------------------------------------------

    def _merged_on_github(self, git: GitRepo, ticket_id: str) -> str | None:
        ref = self.upstream if git.commit_exists(self.upstream) else self.main_branch
        return merged_commit_on(git, ref, ticket_id)

    def _land(self, git: GitRepo, number: int, proposal: str, code_tree: str, message: str) -> MergeOutcome:
        """Wait for the checks of PR ``number`` (head ``proposal``), squash-merge it and check the result."""
        verdict = self.pulls.wait_for_checks(proposal, self.checks_timeout_s, pull_number=number)
        if verdict.state is ChecksState.FAILURE:
            return MergeOutcome(status=MergeStatus.CHECKS_FAILED, detail=f"checks of PR #{number} {verdict.detail}")
        if verdict.state is ChecksState.TIMEOUT:
            return MergeOutcome(status=MergeStatus.REFUSED, detail=f"checks of PR #{number} {verdict.detail}")
        if verdict.state is ChecksState.CLOSED:
            pull = self.pulls.get(number)
            if pull.get("merged") and pull.get("merge_commit_sha"):
                return self._verified(git, str(pull["merge_commit_sha"]), code_tree, f"{verdict.detail}")
            return MergeOutcome(status=MergeStatus.REFUSED, detail=f"{verdict.detail}: not merged")
        git.fetch(self.remote)
        base = git.rev_parse(f"{proposal}^")
        upstream = git.rev_parse(self.upstream)
        moved = code_paths(git.diff_names(base, upstream))
        if moved:
            self._sync_main(git, upstream)
            return MergeOutcome(
                status=MergeStatus.NEEDS_REBASE, moved_paths=tuple(moved), detail="main moved while the checks ran"
            )
        title, _, body = message.partition("\n\n")
        attempt = self.pulls.merge_pr(number, proposal, title, body)
        if not attempt.merged or attempt.sha is None:
            return self._refused(git, number, proposal, attempt)
        return self._verified(git, attempt.sha, code_tree, f"squash-merged PR #{number}")

    def _refused(self, git: GitRepo, number: int, proposal: str, attempt: MergeAttempt) -> MergeOutcome:
        """What GitHub's refusal to merge means for the queue (module docstring, step 5)."""
        said = f"GitHub refused to merge PR #{number} ({attempt.status}: {attempt.message})"
        git.fetch(self.remote)
        upstream = git.rev_parse(self.upstream)
        moved = code_paths(git.diff_names(f"{proposal}^", upstream))
        if moved:
            self._sync_main(git, upstream)
            return MergeOutcome(status=MergeStatus.NEEDS_REBASE, moved_paths=tuple(moved), detail=said)
        # The proposal sits on the main it saw; with main unmoved in code no conflict is possible, so what is
        # left is GitHub's own rule (a required review, a protection) for a person to look at.
        return MergeOutcome(status=MergeStatus.REFUSED, detail=said)

    def _verified(self, git: GitRepo, commit: str, code_tree: str, detail: str) -> MergeOutcome:
        """MERGED when ``commit`` is on GitHub's main with exactly the QA'd code; local main then syncs."""
        git.fetch(self.remote)
        upstream = git.rev_parse(self.upstream)
        if not git.commit_exists(commit) or not git.is_ancestor(commit, upstream):
            return MergeOutcome(
                status=MergeStatus.REFUSED, commit=commit, detail=f"{detail}, but {commit[:10]} is not on GitHub's main"
            )
        drift = code_paths(git.diff_names(code_tree, commit))
        if drift:
            return MergeOutcome(
                status=MergeStatus.REFUSED,
                commit=commit,
                detail=f"{detail} as {commit[:10]}, but its code differs from the QA tree in {', '.join(drift)}",
            )
        self._sync_main(git, upstream)
        return MergeOutcome(status=MergeStatus.MERGED, commit=commit, pushed=True, detail=detail)

    def _sync_main(self, git: GitRepo, upstream: str) -> None:
        """Make local main contain GitHub's main, keeping the working tree's tracking files (module docstring, 6)."""
        main = git.rev_parse(self.main_branch)
        if git.is_ancestor(upstream, main):
            return
        merged, conflicts = merge_keeping_tracking(self.repo, main, upstream)
        if merged is None:
            raise GitHubForgeError(
                f"local {self.main_branch} and GitHub's main conflict in {', '.join(conflicts)}: merge them by hand"
            )
        tree = with_working_tracking(self.repo, merged)
        if git.is_ancestor(main, upstream) and tree == git.tree_of(upstream):
            target = upstream
        else:
            parents = [upstream] if git.is_ancestor(main, upstream) else [main, upstream]
            sync = f"Sync {self.main_branch} with {self.remote}/{self.main_branch}\n"
            target = git.commit_tree(tree, parents, sync, self.author_name, self.author_email)
        specs = working_tracking_specs(self.repo)
        if specs:
            # The index takes the tracking files as written, so `reset --keep` sees no local change in them.
            git.run_git("add", "-A", "--", *specs)
        git.reset_keep(target)
