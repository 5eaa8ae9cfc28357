"""Step 3 of the milestone release (issue 6; seed 001 "Milestone Completion Protocol"): write, commit, tag.

Given a validated :class:`~conveyor.services.release_validation.ReleaseCheck`:

1. **Notes:** docs/releases/v<version>.md from the release-notes agent when a model is available, else (or when
   the agent fails) the deterministic notes from tickets and commits; both end with the retrospective of
   estimate variance by task type (seed 001 "Run final retrospective").
2. **CHANGELOG.md** in Keep a Changelog format (:mod:`conveyor.domain.changelog`), **docs/PRD.md** marked with
   the delivered requirements (:mod:`conveyor.domain.prd_marks`).
3. **Archive:** docs/TASKS.md → docs/tasks/<milestone>-tasks.md, the learnings →
   docs/tasks/<milestone>-learnings.json (a copy: the live file keeps calibrating estimates), then a fresh, empty
   backlog (TASKS.md and run-queue.json) for the next milestone. An archive that exists with other content
   stops the release before anything is written (rename the milestone in the build-spec).
4. **Commit** "chore(orchestrator): Complete <milestone> milestone release" by the bot, an **annotated tag**
   v<version> on it, both pushed when the remote exists. With the github forge main is never pushed: the
   commit lands through the release PR and the tag names its merge commit.

Every input is read and every output computed before the first write, so a file that does not parse (a
CHANGELOG.md or PRD.md a person broke) stops the release with its name and line, and nothing is changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from conveyor.adapters.agents.roles import release_notes
from conveyor.adapters.agents.roles.base import RoleCall
from conveyor.adapters.atomic import write_text
from conveyor.adapters.git_repo import GitRepo, GitRepoError, identity_env
from conveyor.adapters.learnings_file import LEARNINGS_PATH
from conveyor.adapters.state_files import run_queue_path, save_run_queue
from conveyor.adapters.tasks_md import new_tasks_document, write_tasks_file
from conveyor.domain.changelog import CHANGELOG_PATH, changelog_entries, release_changelog
from conveyor.domain.errors import ConveyorError
from conveyor.domain.milestone_archive import (
    archive_paths,
    release_commit_message,
    release_notes_path,
    tag_message,
)
from conveyor.domain.prd_marks import PRD_PATH, mark_delivered
from conveyor.domain.release_notes import fallback_release_notes, render_retrospective
from conveyor.domain.run_state import RunQueue
from conveyor.domain.ticket import State
from conveyor.domain.versions import release_tag_version
from conveyor.ports import AgentBackend
from conveyor.services.backlog_loader import RUN_QUEUE_PATH, TASKS_PATH
from conveyor.services.release_validation import ReleaseCheck
from conveyor.settings import Settings


@dataclass
class Release:
    version: str
    tag: str
    commit: str
    notes_path: str
    notes_by: str  # "release-notes agent (<backend>)" or "deterministic fallback ..."
    written: list[str] = field(default_factory=list)
    pushed: bool = False
    checked_in_prd: int = 0
    push_error: str = ""  # the release is made locally; push main and the tag by hand


def _commits_since(git: GitRepo, main: str) -> list[tuple[str, str]]:
    """(sha, subject) of main's commits since the newest release tag it contains (all of them without one)."""
    merged = git.run_git("tag", "--merged", main, "--sort=-v:refname").splitlines()
    previous = next((t for t in merged if release_tag_version(t) is not None), None)
    out = git.run_git("log", "--format=%H%x00%s", f"{previous}..{main}" if previous else main, "--")
    pairs = [line.split("\x00", 1) for line in out.splitlines() if "\x00" in line]
    return [(sha, subject) for sha, subject in pairs]


def _notes(
    version: str,
    check: ReleaseCheck,
    settings: Settings,
    commits: list[tuple[str, str]],
    backend: AgentBackend | None,
    call: tuple[str, Path, date],
) -> tuple[str, str]:
    run_id, repo, today = call
    done = [t for t in check.tickets if t.state is State.DONE]
    fallback_why = "no model (deterministic mode)"
    if backend is not None:
        try:
            outcome = release_notes.run(
                RoleCall(backend=backend, run_id=run_id, repo_root=repo),
                version=version,
                tickets=done,
                commits=[subject for _, subject in commits],
            )
        except ConveyorError as exc:
            fallback_why = f"the release-notes agent failed: {exc}"
        else:
            text = outcome.output.markdown().rstrip() + "\n\n" + render_retrospective(check.tickets).rstrip() + "\n"
            return text, f"release-notes agent ({backend.name})"
    text = fallback_release_notes(
        version,
        settings.milestone.name,
        check.tickets,
        commits=commits,
        merge_commits=check.merge_commits,
        deferral_reasons=check.deferral_reasons,
        released_on=today,
    )
    return text, f"deterministic fallback from tickets and commits ({fallback_why})"


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def publish_release(
    repo: Path,
    settings: Settings,
    check: ReleaseCheck,
    *,
    backend: AgentBackend | None,
    run_id: str,
    today: date,
    land: Callable[[str], str] | None = None,
) -> Release:
    """Write, commit and tag the validated release (module docstring); returns what was done.

    ``land`` takes the release commit to the forge's main and returns the commit to tag there (the github
    forge's release PR); without it main itself is pushed when the remote exists (the local forge)."""
    if not check.ok or check.decision is None:
        raise ConveyorError(check.describe())
    git = GitRepo(repo)
    main = settings.git.main_branch
    version = str(check.decision.version)
    commits = _commits_since(git, main)

    # Everything is computed (and every input parsed) before the first write.
    outputs: dict[str, str] = {}
    notes, notes_by = _notes(version, check, settings, commits, backend, (run_id, repo, today))
    outputs[release_notes_path(version)] = notes
    outputs[CHANGELOG_PATH] = release_changelog(
        _read(repo / CHANGELOG_PATH), version, today, changelog_entries(check.tickets), path=CHANGELOG_PATH
    )
    checked = 0
    prd = _read(repo / PRD_PATH)
    if prd is not None:
        marks = mark_delivered(prd, version, check.tickets, path=PRD_PATH, released_on=today)
        outputs[PRD_PATH] = marks.text
        checked = len(marks.checked)
    archive = archive_paths(settings.milestone.name)
    copies = {archive.tasks: TASKS_PATH, archive.learnings: LEARNINGS_PATH}
    for target, source in copies.items():
        existing, wanted = _read(repo / target), _read(repo / source)
        if existing is not None and wanted is not None and existing != wanted:
            raise ConveyorError(
                f"{target} already archives another backlog of milestone {settings.milestone.name!r}: give this "
                "milestone its own name (build-spec milestone.name) and release again; nothing was written"
            )

    for path, text in outputs.items():
        write_text(repo / path, text)
    written = list(outputs)
    for target, source in copies.items():
        if (repo / source).is_file():
            (repo / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(repo / source, repo / target)
            written.append(target)
    write_tasks_file(repo / TASKS_PATH, new_tasks_document())
    prefix = settings.task_prefix
    save_run_queue(run_queue_path(repo), RunQueue.of([], prefix, settings.milestone.name), display=RUN_QUEUE_PATH)
    written += [TASKS_PATH, RUN_QUEUE_PATH]

    bot = (settings.git.bot_name, settings.git.bot_email)
    sha = git.commit_paths(written, release_commit_message(settings.milestone.name, version), *bot)
    if sha is None:
        raise ConveyorError("the release wrote nothing new to commit")
    tag = check.decision.tag
    remote = git.has_remote(settings.git.remote)
    if land is not None:
        sha = land(sha)
    git.run_git("tag", "-a", tag, "-m", tag_message(version, settings.milestone.name), sha, env=identity_env(*bot))
    release = Release(version, tag, sha, release_notes_path(version), notes_by, written, False, checked)
    if remote:
        # The release is made (commit and tag); a refused push is reported, and pushing by hand finishes it.
        try:
            if land is None:
                git.push(settings.git.remote, f"{main}:{main}")
            git.push(settings.git.remote, f"refs/tags/{tag}")
            release.pushed = True
        except GitRepoError as exc:
            release.push_error = str(exc)
    return release
