"""The forge a repository's settings ask for (build-spec ``forge``): ``local`` or ``github``.

The github forge names its repository by build-spec ``github.owner`` / ``github.name``, or else by the remote's
URL (``https://github.com/<owner>/<name>.git``, ``git@github.com:<owner>/<name>.git``). Its token is resolved
by the caller (a Prefect Secret block is a flow-layer concern); ``None`` lets the adapter read
CONVEYOR_GITHUB_TOKEN or GITHUB_TOKEN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from conveyor.adapters.forges.github import GitHubForge
from conveyor.adapters.forges.local import LocalForge
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.errors import ConveyorError
from conveyor.ports import Forge
from conveyor.settings import Settings

_REMOTE = re.compile(r"[:/](?P<owner>[^/:]+)/(?P<name>[^/]+?)(?:\.git)?/?$")


def github_repository(repo: Path, settings: Settings) -> tuple[str, str]:
    """(owner, name) of the GitHub repository: the build-spec's, or the remote URL's."""
    spec = settings.github
    if spec.owner and spec.name:
        return spec.owner, spec.name
    try:
        # The configured URL, not `remote get-url`'s: that one applies url.<base>.insteadOf rewrites.
        url = GitRepo(repo).config_get(f"remote.{settings.git.remote}.url") or ""
    except ConveyorError:
        url = ""
    found = _REMOTE.search(url)
    if found is None:
        raise ConveyorError(
            f"forge github: set github.owner and github.name in the build-spec (the remote {settings.git.remote!r} "
            f"URL {url or '(none)'} names no owner/name)"
        )
    return spec.owner or found["owner"], spec.name or found["name"]


def github_forge(repo: Path, settings: Settings, token: str | None) -> GitHubForge:
    owner, name = github_repository(repo, settings)
    spec, git = settings.github, settings.git
    return GitHubForge(
        repo,
        owner=owner,
        name=name,
        token=token,
        api_url=spec.api_url,
        main_branch=git.main_branch,
        remote=git.remote,
        author_name=git.bot_name,
        author_email=git.bot_email,
        label=spec.label,
        checks_timeout_s=spec.checks_timeout_s,
        poll_interval_s=spec.poll_interval_s,
    )


def make_forge(repo: Path, settings: Settings, token: str | None = None) -> Forge:
    git = settings.git
    if settings.forge == "github":
        return github_forge(repo, settings, token)
    return LocalForge(
        repo, main_branch=git.main_branch, remote=git.remote, author_name=git.bot_name, author_email=git.bot_email
    )


def publish_github_release(
    forge: GitHubForge, settings: Settings, tag: str, notes: str, issues: Iterable[int] = ()
) -> str:
    """The GitHub side of a release (seed 001 steps 4-5): the release for the pushed tag (created or updated),
    the milestone's ``issues`` and then the milestone named after the build-spec milestone closed. Returns the
    release's page."""
    url = forge.issues.create_release(tag, tag, notes)
    for number in issues:
        forge.issues.close_issue(number)
    forge.issues.close_milestone(forge.issues.ensure_milestone(settings.milestone.name))
    return url
