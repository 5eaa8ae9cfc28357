"""A fake GitHub for the github forge's tests: a local HTTP server over a real bare git repository.

The bare repository is the GitHub remote: the forge pushes and fetches it with real git, and the merge
endpoint squash-merges in it with git plumbing (``merge-tree --write-tree``, ``commit-tree``, ``update-ref``),
so the forge can fetch the result and check its tree. Every request and response is checked against GitHub's
OpenAPI description (tests/support/fake_github_openapi.py); what fails is collected in ``violations``, which
the test fixture asserts empty. The repository allows squash merges only, as Conveyor's trunk rules want.

Tests play the other parties through methods: CI (``ci``: check runs and commit statuses that stay pending for
``ci.pending_polls`` polls, then conclude), a person (``close_pull``, ``push_to_main``), and GitHub's bad
moments (``fail_next``: an injected answer, e.g. a 422 or a rate limit, with an optional action first).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.fake_github_bodies import Bodies, Issue, Milestone, Pull, Release, error, validation_failed
from tests.support.fake_github_openapi import GitHubDescription

Reply = tuple[int, Any, dict[str, str]]
GITHUB_IDENTITY = {
    "GIT_AUTHOR_NAME": "A Person",
    "GIT_AUTHOR_EMAIL": "person@example.com",
    "GIT_COMMITTER_NAME": "GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@github.com",
}

ROUTES = {
    "pulls/list": "_list_pulls",
    "pulls/create": "_create_pull",
    "pulls/get": "_get_pull",
    "pulls/update": "_update_pull",
    "pulls/merge": "_merge_pull",
    "issues/add-labels": "_add_labels",
    "repos/get-combined-status-for-ref": "_combined_status",
    "checks/list-for-ref": "_check_runs",
    "issues/list-milestones": "_list_milestones",
    "issues/create-milestone": "_create_milestone",
    "issues/update-milestone": "_update_milestone",
    "issues/list-for-repo": "_list_issues",
    "issues/create": "_create_issue",
    "issues/update": "_update_issue",
    "repos/get-release-by-tag": "_release_by_tag",
    "repos/create-release": "_create_release",
    "repos/update-release": "_update_release",
}  # GitHub operation -> the method of FakeGitHub that answers it
OPERATIONS = frozenset(ROUTES)


@dataclass
class Ci:
    runs: dict[str, str] = field(default_factory=lambda: {"tests": "success"})  # check run -> its conclusion
    statuses: dict[str, str] = field(default_factory=lambda: {"ci/lint": "success"})  # status context -> its state
    pending_polls: int = 1  # how many polls of a commit see its checks still running


@dataclass
class Fault:
    operation_id: str
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    before: Callable[[], object] | None


@dataclass
class Seen:
    method: str
    path: str
    operation_id: str | None
    body: Any
    authorization: str


class FakeGitHub:
    def __init__(
        self, remote: Path, description: GitHubDescription, *, owner: str = "acme", name: str = "widgets"
    ) -> None:
        self.remote = remote
        self.description = description
        self.owner = owner
        self.name = name
        self.bodies = Bodies(description, owner, name)
        self.ci: Ci | None = Ci()
        self.max_per_page = 100
        self.violations: list[str] = []
        self.seen: list[Seen] = []
        self.pulls: dict[int, Pull] = {}
        self.issues: dict[int, Issue] = {}
        self.milestones: dict[int, Milestone] = {}
        self.releases: dict[int, Release] = {}
        self._next_number = 1
        self._polls: dict[str, int] = {}
        self.failing_heads: dict[str, int] = {}  # branch -> how many of its next heads fail their check runs
        self._failed: set[str] = set()
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-github", daemon=True
        )  # a short poll: shutdown() waits for one

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- what tests do as the other parties ---------------------------------------------------------

    def fail_next(
        self,
        operation_id: str,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        before: Callable[[], object] | None = None,
    ) -> None:
        self._faults.append(Fault(operation_id, status, body, headers or {}, times, before))

    def close_pull(self, number: int) -> None:
        """A person closes the PR without merging it."""
        with self._lock:
            self.pulls[number].state = "closed"

    def push_to_main(self, files: dict[str, str], message: str = "A person's change") -> str:
        """A person's commit on main (as a merge they made would leave it); returns its sha."""
        base = self.git("rev-parse", "refs/heads/main")
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, **GITHUB_IDENTITY, "GIT_INDEX_FILE": str(Path(folder) / "index")}
            self.git("read-tree", base, env=env)
            for path, text in files.items():
                blob = self.git("hash-object", "-w", "--stdin", stdin=text, env=env)
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env)
            commit = self.git("commit-tree", tree, "-p", base, "-m", message, env=env)
        self.git("update-ref", "refs/heads/main", commit, base)
        return commit

    def git(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None, check: bool = True) -> str:
        done = subprocess.run(
            ["git", "--git-dir", str(self.remote), *args],
            input=stdin, env=env or {**os.environ, **GITHUB_IDENTITY}, capture_output=True, text=True, check=check,
        )  # fmt: skip
        return done.stdout.strip()

    # --- HTTP ---------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, authorization: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            parts = urlsplit(target)
            path, query = parts.path, parse_qs(parts.query)
            payload = json.loads(raw) if raw else None
            operation = self.description.find(method, path)
            self.seen.append(Seen(method, path, operation.operation_id if operation else None, payload, authorization))
            if operation is None or operation.operation_id not in ROUTES:
                self.violations.append(f"{method} {path}: not an operation the fake (or GitHub's description) has")
                return 404, {"Content-Type": "application/json"}, json.dumps(error("Not Found")).encode()
            self.violations += self.description.request_problems(method, path, query, raw)
            if (operation.variables.get("owner"), operation.variables.get("repo")) != (self.owner, self.name):
                return 404, {"Content-Type": "application/json"}, json.dumps(error("Not Found")).encode()
            flat = {k: v[-1] for k, v in query.items()}
            fault = next((f for f in self._faults if f.operation_id == operation.operation_id and f.times > 0), None)
            if fault is not None:
                fault.times -= 1
                if fault.before is not None:
                    fault.before()
                status, body, headers = fault.status, fault.body, fault.headers
            else:
                answer = getattr(self, ROUTES[operation.operation_id])
                status, body, headers = answer(operation.variables, flat, payload)
            data = b"" if body is None else json.dumps(body).encode()
            headers = {**headers, "Content-Type": "application/json; charset=utf-8"} if body is not None else headers
            self.violations += self.description.response_problems(method, path, query, raw, status, headers, data)
            return status, headers, data

    def _page(self, path: str, query: dict[str, str], items: list[Any]) -> Reply:
        size = min(int(query.get("per_page", 30)), self.max_per_page)
        page = int(query.get("page", 1))
        headers = {}
        if page * size < len(items):
            following = urlencode({**query, "page": page + 1})
            headers["Link"] = f'<{self.url}/repos/{self.owner}/{self.name}{path}?{following}>; rel="next"'
        return 200, items[(page - 1) * size : page * size], headers

    def _number(self) -> int:
        self._next_number += 1
        return self._next_number - 1

    def _main(self) -> str:
        return self.git("rev-parse", "refs/heads/main")

    def _branch(self, name: str) -> str | None:
        sha = self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}", check=False)
        return sha or None

    # --- pull requests --------------------------------------------------------------------------------

    def _pull(self, number: int) -> Pull:
        pull = self.pulls[number]
        if pull.state == "open":
            pull.head_sha = self._branch(pull.branch) or pull.head_sha  # pushes go straight to the bare repository
        return pull

    def _list_pulls(self, _: dict[str, str], query: dict[str, str], __: Any) -> Reply:
        state, head = query.get("state", "open"), query.get("head", "")
        found = [
            self.bodies.pull(self._pull(n), self._main(), simple=True)
            for n, p in sorted(self.pulls.items())
            if state in ("all", p.state) and (not head or head == f"{self.owner}:{p.branch}")
        ]
        return self._page("/pulls", query, found)

    def _create_pull(self, _: dict[str, str], __: dict[str, str], body: Any) -> Reply:
        sha = self._branch(body["head"])
        if sha is None or body["base"] != "main":
            return 422, validation_failed("PullRequest", f"head {body['head']} or base {body['base']} is invalid"), {}
        if any(p.branch == body["head"] and p.state == "open" for p in self.pulls.values()):
            return (
                422,
                validation_failed("PullRequest", f"A pull request already exists for {self.owner}:{body['head']}."),
                {},
            )
        pull = Pull(self._number(), body["head"], body.get("title", ""), body.get("body") or "", sha)
        self.pulls[pull.number] = pull
        location = {"Location": f"{self.bodies.api}/pulls/{pull.number}"}
        return 201, self.bodies.pull(pull, self._main()), location

    def _get_pull(self, variables: dict[str, str], _: dict[str, str], __: Any) -> Reply:
        number = int(variables["pull_number"])
        if number not in self.pulls:
            return 404, error("Not Found"), {}
        return 200, self.bodies.pull(self._pull(number), self._main()), {}

    def _update_pull(self, variables: dict[str, str], _: dict[str, str], body: Any) -> Reply:
        pull = self._pull(int(variables["pull_number"]))
        pull.title = body.get("title", pull.title)
        pull.body = body.get("body", pull.body)
        pull.state = body.get("state", pull.state)
        return 200, self.bodies.pull(pull, self._main()), {}

    def _merge_pull(self, variables: dict[str, str], _: dict[str, str], body: Any) -> Reply:
        number = int(variables["pull_number"])
        if number not in self.pulls:
            return 404, error("Not Found"), {}
        pull = self._pull(number)
        if pull.state != "open":
            return 405, error("Pull Request is not mergeable"), {}
        if body.get("merge_method") != "squash":
            return 405, error("Merge commits are not allowed on this repository."), {}
        if body.get("sha") and body["sha"] != pull.head_sha:
            return 409, error("Head branch was modified. Review and try the merge again."), {}
        commit = self.squash(
            pull, body.get("commit_title") or f"{pull.title} (#{number})", body.get("commit_message", "")
        )
        if commit is None:
            return 405, error("Pull Request is not mergeable"), {}
        return 200, {"sha": commit, "merged": True, "message": "Pull Request successfully merged"}, {}

    def squash(self, pull: Pull, title: str, message: str) -> str | None:
        """Squash ``pull``'s head onto main with git plumbing, as GitHub does; None on a conflict."""
        base = self._main()
        result = subprocess.run(
            ["git", "--git-dir", str(self.remote), "merge-tree", "--write-tree", base, pull.head_sha],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            return None
        tree = result.stdout.split()[0]
        commit = self.git("commit-tree", tree, "-p", base, "-m", f"{title}\n\n{message}".strip() + "\n")
        self.git("update-ref", "refs/heads/main", commit, base)
        pull.state, pull.merged, pull.merge_commit_sha = "closed", True, commit
        return commit

    def _add_labels(self, variables: dict[str, str], _: dict[str, str], body: Any) -> Reply:
        number = int(variables["issue_number"])
        target = self.pulls.get(number) or self.issues.get(number)
        if target is None:
            return 404, error("Not Found"), {}
        target.labels += [name for name in body["labels"] if name not in target.labels]
        return 200, [self.bodies.label(name, i) for i, name in enumerate(target.labels)], {}

    # --- checks ---------------------------------------------------------------------------------------

    def _concluded(self, sha: str) -> bool:
        return self.ci is not None and self._polls.get(sha, 0) > self.ci.pending_polls

    def _combined_status(self, variables: dict[str, str], _: dict[str, str], __: Any) -> Reply:
        sha = variables["ref"]
        self._polls[sha] = self._polls.get(sha, 0) + 1  # one poll of the forge reads the status first
        statuses = {} if self.ci is None else dict(self.ci.statuses)
        if not self._concluded(sha):
            statuses = dict.fromkeys(statuses, "pending")
        return 200, self.bodies.combined_status(sha, statuses), {}

    def _fails(self, sha: str) -> bool:
        """Whether ``sha``'s check runs fail: the head of a branch that ``failing_heads`` still counts down."""
        if sha not in self._failed:
            for branch, left in self.failing_heads.items():
                if left > 0 and self._branch(branch) == sha:
                    self.failing_heads[branch] = left - 1
                    self._failed.add(sha)
        return sha in self._failed

    def _check_runs(self, variables: dict[str, str], query: dict[str, str], __: Any) -> Reply:
        sha = variables["ref"]
        runs = {} if self.ci is None else self.ci.runs
        done = self._concluded(sha)
        if done and self._fails(sha):
            runs = dict.fromkeys(runs, "failure")
        items = [
            self.bodies.check_run(sha, i, name, end if done else None) for i, (name, end) in enumerate(runs.items())
        ]
        status, page, headers = self._page(f"/commits/{sha}/check-runs", query, items)
        return status, {"total_count": len(items), "check_runs": page}, headers

    # --- milestones, issues, releases -----------------------------------------------------------------

    def _list_milestones(self, _: dict[str, str], query: dict[str, str], __: Any) -> Reply:
        state = query.get("state", "open")
        found = [self.bodies.milestone(m) for _, m in sorted(self.milestones.items()) if state in ("all", m.state)]
        return self._page("/milestones", query, found)

    def _create_milestone(self, _: dict[str, str], __: dict[str, str], body: Any) -> Reply:
        if any(m.title == body["title"] for m in self.milestones.values()):
            return 422, validation_failed("Milestone", "already_exists"), {}
        milestone = Milestone(len(self.milestones) + 1, body["title"], body.get("description") or "")
        self.milestones[milestone.number] = milestone
        return 201, self.bodies.milestone(milestone), {"Location": f"{self.bodies.api}/milestones/{milestone.number}"}

    def _update_milestone(self, variables: dict[str, str], _: dict[str, str], body: Any) -> Reply:
        milestone = self.milestones[int(variables["milestone_number"])]
        milestone.state = body.get("state", milestone.state)
        return 200, self.bodies.milestone(milestone), {}

    def _issue_body(self, issue: Issue) -> Any:
        return self.bodies.issue(issue, self.milestones.get(issue.milestone or 0))

    def _list_issues(self, _: dict[str, str], query: dict[str, str], __: Any) -> Reply:
        state = query.get("state", "open")
        found = [
            self._issue_body(self.issues[n]) if n in self.issues else self.bodies.pull_as_issue(self.pulls[n])
            for n in sorted({*self.issues, *self.pulls})
            if state in ("all", (self.issues.get(n) or self.pulls[n]).state)
        ]  # GitHub's issue list holds pull requests too
        return self._page("/issues", query, found)

    def _create_issue(self, _: dict[str, str], __: dict[str, str], body: Any) -> Reply:
        labels = [str(label) for label in body.get("labels", [])]
        issue = Issue(self._number(), body["title"], body.get("body") or "", labels, body.get("milestone"))
        self.issues[issue.number] = issue
        return 201, self._issue_body(issue), {"Location": f"{self.bodies.api}/issues/{issue.number}"}

    def _update_issue(self, variables: dict[str, str], _: dict[str, str], body: Any) -> Reply:
        issue = self.issues[int(variables["issue_number"])]
        issue.title = body.get("title", issue.title)
        issue.body = body.get("body", issue.body)
        issue.labels = [str(label) for label in body.get("labels", issue.labels)]
        issue.milestone = body.get("milestone", issue.milestone)
        issue.state = body.get("state", issue.state)
        issue.state_reason = body.get("state_reason", issue.state_reason)
        return 200, self._issue_body(issue), {}

    def _release_by_tag(self, variables: dict[str, str], _: dict[str, str], __: Any) -> Reply:
        found = next((r for r in self.releases.values() if r.tag == variables["tag"]), None)
        return (404, error("Not Found"), {}) if found is None else (200, self.bodies.release(found), {})

    def _create_release(self, _: dict[str, str], __: dict[str, str], body: Any) -> Reply:
        if any(r.tag == body["tag_name"] for r in self.releases.values()):
            return 422, validation_failed("Release", "already_exists"), {}
        release = Release(
            len(self.releases) + 1,
            body["tag_name"],
            body.get("name", ""),
            body.get("body", ""),
            body.get("target_commitish", "main"),
        )
        self.releases[release.id] = release
        return 201, self.bodies.release(release), {"Location": f"{self.bodies.api}/releases/{release.id}"}

    def _update_release(self, variables: dict[str, str], _: dict[str, str], body: Any) -> Reply:
        release = self.releases[int(variables["release_id"])]
        release.name = body.get("name", release.name)
        release.body = body.get("body", release.body)
        return 200, self.bodies.release(release), {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without it each answer waits 40 ms

    def _any(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake: FakeGitHub = self.server.fake  # type: ignore[attr-defined]
        status, headers, data = fake.handle(self.command, self.path, self.headers.get("Authorization", ""), raw)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815 - the names http.server calls

    def log_message(self, format: str, *args: Any) -> None:
        pass
