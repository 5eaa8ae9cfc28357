"""The milestone release flow (issue 6): validate → (approval) → notes, changelog, PRD marks, archive → commit and
annotated tag → artifacts and the event ``conveyor.milestone.released``.

Composition only: the steps are conveyor's services (services/release_validation.py, services/release_publish.py);
the rules are in their docstrings. A release that cannot go ahead stops with every reason listed and writes
nothing; the release report artifact says why. Build-spec ``approvals.release: true`` pauses the flow run with
a typed approval form before anything is written (answer in the UI or with ``conveyor answer release``); where
nobody can answer (``interactive`` false) it stops and says how to run it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from blocks.github_token import resolve_github_token
from blocks.settings_layer import use_blocks
from conveyor.adapters.forges.github import GitHubForge
from conveyor.adapters.lease import RepositoryLease
from conveyor.adapters.run_store import RunStore
from conveyor.domain.errors import ConveyorError
from conveyor.ports import utcnow
from conveyor.services.agents import agent_backend, backend_name
from conveyor.services.forges import github_forge, publish_github_release
from conveyor.services.phase_issues import issue_number
from conveyor.services.release_publish import Release, publish_release
from conveyor.services.release_validation import ReleaseCheck, validate_release
from conveyor.settings import Settings, load_settings
from tasks.artifacts import PrefectArtifacts, artifact_key
from tasks.events import PrefectEvents
from tasks.release_gate import ask_release_approval
from tasks.repo_slot import repo_slot


def release_run_name(repo: str) -> str:
    """The flow run's name, which ``conveyor answer release`` looks for: ``release-<repo-slug>``."""
    return f"release-{Path(repo).resolve().name}"


def _run_name() -> str:
    from prefect.runtime import flow_run

    return release_run_name(str((flow_run.parameters or {}).get("repo") or "."))


@task(name="validate-release", cache_policy=NO_CACHE, persist_result=False)
def validate_task(repo: Path, settings: Settings, version: str | None, gate_logs: Path) -> ReleaseCheck:
    return validate_release(repo, settings, version, gate_logs=gate_logs)


@task(name="publish-release", cache_policy=NO_CACHE, persist_result=False)
def publish_task(
    repo: Path, settings: Settings, check: ReleaseCheck, run_id: str, forge: GitHubForge | None
) -> tuple[Release, str]:
    """The release written, committed and tagged; with the github forge through the release PR, then GitHub's
    release and the milestone closed. Returns the release and the link to show (GitHub's page, or the notes)."""
    backend = agent_backend(repo, settings)
    tag = check.decision.tag if check.decision else ""
    land = None if forge is None else (lambda sha: forge.land_release(sha, tag))
    today = datetime.now(UTC).date()
    release = publish_release(repo, settings, check, backend=backend, run_id=run_id, today=today, land=land)
    if forge is None:
        return release, (repo / release.notes_path).as_uri()
    notes = (repo / release.notes_path).read_text(encoding="utf-8")
    issues = sorted({n for t in check.tickets if (n := issue_number(t.issue)) is not None})
    return release, publish_github_release(forge, settings, release.tag, notes, issues)


def release_report(check: ReleaseCheck, release: Release | None, stopped: str) -> str:
    """The release report (markdown): the version, the checks, what was written, or why it stopped."""
    tag = check.decision.tag if check.decision else "(no version)"
    lines = [f"# Release {tag}", ""]
    if stopped:
        lines += [f"**Stopped:** {stopped}", ""]
    if check.problems:
        lines += ["## What stops the release", "", *(f"- {p}" for p in check.problems), ""]
    if check.decision is not None:
        lines += [f"- Version: {check.decision.version} ({check.decision.source.value})"]
        lines += [f"- Note: {note}" for note in check.decision.notes]
    done = sum(1 for t in check.tickets if t.state.value == "done")
    lines += [f"- Tickets: {done} done of {len(check.tickets)}"]
    if check.docs is not None:
        statuses = [f"{t.ticket_id}: {t.status.value}" for t in check.docs.tickets]
        lines += [f"- Documentation checklist ({check.docs.source}): " + ("; ".join(statuses) or "no ticket changes")]
    if check.gates is not None:
        lines += [f"- QA gates on main: {check.gates.summary()}"]
    if release is not None:
        lines += [
            f"- Commit: {release.commit}",
            f"- Tag: {release.tag} ({_push_state(release)})",
            f"- Release notes: {release.notes_path}, by {release.notes_by}",
            f"- PRD requirements checked off: {release.checked_in_prd}",
            f"- Written: {', '.join(release.written)}",
        ]
    return "\n".join(lines) + "\n"


def _push_state(release: Release) -> str:
    if release.pushed:
        return "pushed"
    if release.push_error:
        return f"NOT pushed: {release.push_error}; push main and the tag by hand"
    return "not pushed: no remote"


@flow(name="milestone-release", flow_run_name=_run_name, validate_parameters=True)
async def milestone_release(
    repo: str,
    *,
    version: str | None = None,
    backend: str | None = None,
    interactive: bool = False,
    approval_timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Release the milestone of ``repo`` (``version``: instead of the one the rules pick; refused if it breaks them)."""
    logger = get_run_logger()
    root = Path(repo).resolve()
    use_blocks()  # the Prefect block layer of the settings, when CONVEYOR_BLOCKS names one
    settings = load_settings(root)
    if backend:
        settings = settings.model_copy(update={"agents": settings.agents.model_copy(update={"backend": backend})})
    logger.info("agents: %s", backend_name(settings))
    slug = root.name
    store = RunStore(root)
    run = store.next_run_id(utcnow())
    sink = PrefectArtifacts()
    release: Release | None = None
    link = ""
    stopped = ""
    async with repo_slot(root, inner=RepositoryLease(root, run_id=run, command="release")):
        check = validate_task(root, settings, version, store.logs_dir(run) / "release-gates")
        if not check.ok:
            stopped = "validation failed"
        elif settings.approvals.release:
            stopped = await _approval(check, interactive, approval_timeout_s)
        if not stopped:
            forge = None
            if settings.forge == "github":  # the Secret block is loaded off the event loop (a sync Prefect call)
                token = await asyncio.to_thread(resolve_github_token, settings.github.token_block)
                forge = github_forge(root, settings, token)
            try:
                release, link = publish_task(root, settings, check, run, forge)
            finally:
                if forge is not None:
                    forge.close()
    report = release_report(check, release, stopped)
    if release is None:
        sink.markdown(artifact_key(slug, "release-report"), report, f"Release report of {slug}")
        raise ConveyorError(check.describe() if not check.ok else f"The release stops: {stopped}")
    if settings.forge == "github":
        report += f"- GitHub release: {link}\n"
    sink.markdown(artifact_key(slug, "release-report"), report, f"Release report of {slug}")
    sink.link(artifact_key(slug, "release"), link, f"{release.tag} release", release.tag)
    PrefectEvents().emit(
        "conveyor.milestone.released",
        resource={"id": settings.milestone.name, "repo": slug, "tag": release.tag},
        payload={"version": release.version, "commit": release.commit, "pushed": release.pushed},
    )
    logger.info("released %s at %s", release.tag, release.commit)
    return {
        "version": release.version,
        "tag": release.tag,
        "commit": release.commit,
        "pushed": release.pushed,
        "notes": release.notes_path,
        "notes_by": release.notes_by,
        "link": link,
        "report": report,
    }


async def _approval(check: ReleaseCheck, interactive: bool, timeout_s: float) -> str:
    """'' when a person approved; else why the release stops."""
    tag = check.decision.tag if check.decision else "?"
    if not interactive:
        return (
            f"{tag} needs a person's approval (build-spec approvals.release): run `conveyor release --interactive` "
            "and answer with `conveyor answer release --action approve` or in the Prefect UI"
        )
    get_run_logger().warning("%s waits for approval (answer in the UI or with `conveyor answer release`)", tag)
    answer = await ask_release_approval(f"Approve release {tag}? {check.describe()}", timeout_s)
    if answer is None:
        return f"nobody approved {tag} within {timeout_s:.0f} s"
    if answer.action != "approve":
        return f"{tag} rejected by a person" + (f": {answer.reason}" if answer.reason else "")
    return ""
