"""Step 1 of the milestone release (issue 6; seed 001 "Milestone Completion Protocol", seed 000 "Post-loop
Validation"): may this milestone be released, and as which version?

Everything that stops a release is collected, never the first problem only:

- the checkout: clean and on main (the release commits and tags there);
- the backlog: every ticket done, deferred with an entry in docs/reports/deferred/deferred-errors.md, skipped
  or obsolete (:func:`conveyor.domain.release_checks.release_blockers`);
- the version: :func:`conveyor.domain.versions.release_version` (0.0.x before the MVP, 0.1.0 only for the
  milestone build-spec marks ``mvp: true``, minor versions after it; never a version whose tag exists);
- the documentation checklist (the shipped src/conveyor/checklists/documentation.toml, or the repository's
  automations/checklists/documentation.toml): each done ticket's squash commit on main is checked for CLI,
  public-API and configuration changes without a docs change or a recorded waiver;
- the QA gates of the build-spec, run on a detached worktree of main's tip (the code the tag will name: the
  release commit adds only docs and Conveyor's records).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.adapters.forges.trailers import merged_commit_on
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.quality_gates import run_quality_gates
from conveyor.adapters.sandbox.select import select_sandbox
from conveyor.checklists import default_documentation_checklist
from conveyor.domain.doc_checklist import (
    OVERRIDE_PATH,
    DocChecklistReport,
    TicketChange,
    check_documentation,
    parse_checklist,
    waiver_from_notes,
)
from conveyor.domain.qa import QAReport
from conveyor.domain.release_checks import DEFERRED_PATH, deferral_reasons, release_blockers
from conveyor.domain.ticket import State, Ticket
from conveyor.domain.tracking import is_tracking_path
from conveyor.domain.versions import VersionDecision, VersionRefusedError, release_version
from conveyor.services.backlog_loader import load_backlog
from conveyor.settings import Settings

SHIPPED_CHECKLIST = "conveyor/checklists/documentation.toml (shipped)"


@dataclass
class ReleaseCheck:
    """What validation found; :attr:`problems` empty means the release may go ahead."""

    tickets: list[Ticket]
    decision: VersionDecision | None
    merge_commits: dict[str, str] = field(default_factory=dict)  # ticket id → its squash commit on main
    deferral_reasons: dict[str, str] = field(default_factory=dict)
    docs: DocChecklistReport | None = None
    gates: QAReport | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok and self.decision is not None:
            return f"release {self.decision.tag} may go ahead"
        lines = [f"The release stops: {len(self.problems)} problem(s); nothing was written."]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def _checklist_text(repo: Path) -> tuple[str, str]:
    override = repo / OVERRIDE_PATH
    if override.is_file():
        return override.read_text(encoding="utf-8"), OVERRIDE_PATH
    return default_documentation_checklist(), SHIPPED_CHECKLIST


def ticket_changes(git: GitRepo, main: str, tickets: list[Ticket]) -> tuple[dict[str, str], list[TicketChange]]:
    """Each done ticket's squash commit on ``main`` (found by its trailer) and its change, tracking files aside."""
    commits: dict[str, str] = {}
    changes: list[TicketChange] = []
    for ticket in tickets:
        if ticket.state is not State.DONE:
            continue
        sha = merged_commit_on(git, main, ticket.id)
        if sha is None:
            continue  # a verification ticket (it merges nothing), or a ticket done by hand
        commits[ticket.id] = sha
        paths = [p for p in git.diff_names(f"{sha}^", sha) if not is_tracking_path(p)]
        diff = git.diff_text(f"{sha}^", sha, paths=paths) if paths else ""
        changes.append(TicketChange(ticket.id, tuple(paths), diff, waiver_from_notes(ticket.notes)))
    return commits, changes


def run_gates_on_main(repo: Path, settings: Settings, log_dir: Path) -> QAReport:
    """The build-spec's QA gates on a detached worktree of main's tip, removed afterwards."""
    git = GitRepo(repo)
    with tempfile.TemporaryDirectory(prefix="conveyor-release-") as tmp:
        tree = Path(tmp) / "main"
        git.run_git("worktree", "add", "--quiet", "--detach", str(tree), settings.git.main_branch)
        try:
            return run_quality_gates(
                tree,
                settings.quality_gates,
                sandbox=select_sandbox(settings.agents.sandbox),
                log_dir=log_dir,
                attempt=1,
            )
        finally:
            git.run_git("worktree", "remove", "--force", str(tree))


def validate_release(
    repo: Path, settings: Settings, requested: str | None, *, gate_logs: Path, run_gates: bool = True
) -> ReleaseCheck:
    """Step 1 of the release: every reason it cannot go ahead (module docstring), and the version."""
    git = GitRepo(repo)
    main = settings.git.main_branch
    problems: list[str] = []
    if git.branch_of() != main:
        problems.append(f"the checkout of {repo} is not on {main} (it is on {git.branch_of() or 'a detached HEAD'})")
    if not git.is_clean():
        problems.append(f"the checkout of {repo} has uncommitted changes: commit or stash them first")
    tickets = list(load_backlog(repo).backlog)
    deferred_file = repo / DEFERRED_PATH
    reasons = deferral_reasons(deferred_file.read_text(encoding="utf-8")) if deferred_file.is_file() else {}
    problems += [str(blocker) for blocker in release_blockers(tickets, reasons.keys())]
    decision: VersionDecision | None = None
    tags = [t for t in git.run_git("tag", "--list").splitlines() if t]
    try:
        decision = release_version(tags, settings.milestone, None if requested is None else requested)
    except VersionRefusedError as refused:
        problems.append(f"version: {refused}")
    text, source = _checklist_text(repo)
    checklist = parse_checklist(text, source)  # InputError (file and line) stops the release before anything
    commits, changes = ticket_changes(git, main, tickets)
    docs = check_documentation(checklist, changes)
    problems += [f"documentation checklist: {item}" for item in docs.missing]
    check = ReleaseCheck(tickets, decision, commits, reasons, docs, problems=problems)
    if run_gates and not problems:  # the gates take longest: only when nothing else already stops the release
        check.gates = run_gates_on_main(repo, settings, gate_logs)
        if not check.gates.passed:
            problems.append(f"QA gates on {main}: {check.gates.summary()} (logs in {gate_logs})")
    return check
