"""Mechanical fixes and the no-LLM review (issue 7 §1, deterministic mode).

A ticket an improvement loop filed for findings that a mechanical fixer can fix (ruff --fix, ruff format) is
implemented by that fixer, with or without a model: it costs nothing and its result is exact. Its findings are
read from automations/issue_queue.md in the main checkout (the loop writes the queue before delivery starts).

Without a model every change gets the no-LLM review, which says it is one: the diff limits of build-spec
``improvement`` (files, lines), the ticket's touch set, and a security scan (bandit) of the changed Python files
compared with their base versions. The QA gates run after it, as after any review.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.issue_queue_file import load_queue
from conveyor.adapters.scanners import make_fixers, run_scanners
from conveyor.domain.errors import InputError
from conveyor.domain.roles import (
    FindingSeverity,
    ReviewDecision,
    ReviewFinding,
    ReviewVerdict,
    SecurityFinding,
    SecuritySeverity,
)
from conveyor.domain.scan import ScanFinding
from conveyor.domain.ticket import Ticket
from conveyor.domain.tracking import code_paths
from conveyor.services.workspace import Workspace

NO_LLM = "No-LLM review (deterministic mode: no model reviewed this change)"


def fix_plan(ws: Workspace, ticket: Ticket) -> list[ScanFinding]:
    """The ticket's findings when a mechanical fixer can fix every one of them, else [].

    Asked for every ticket of every run: a queue a person broke during a run must not hold the other tickets, so a
    malformed queue counts as none here (the improvement loop itself stops on it, naming file and line).
    """
    try:
        findings = load_queue(ws.repo).for_ticket(ticket.id)
    except InputError:
        return []
    return findings if findings and all(f.fixable for f in findings) else []


def apply_fixes(ws: Workspace, ticket: Ticket, worktree: Path, findings: list[ScanFinding]) -> list[str]:
    """Run the fixers in the worktree and commit on the ticket branch; returns the files changed."""
    changed: set[str] = set()
    for fixer in make_fixers(ws.settings.improvement):
        mine = [f for f in findings if fixer.can_fix(f)]
        if mine:
            changed.update(fixer.fix(worktree, mine))
    if changed:
        rules = sorted({f"{f.scanner} {f.rule}" for f in findings})
        ws.worktrees.save(ticket.id, f"fix({ticket.id}): mechanical fix of {', '.join(rules)}")
    return sorted(changed)


def still_reported(ws: Workspace, worktree: Path, findings: list[ScanFinding]) -> list[ScanFinding]:
    """The findings their scanners still report in the worktree (only those scanners, only those files)."""
    spec = ws.settings.improvement.model_copy(
        update={"scanners": sorted({f.scanner for f in findings}), "paths": sorted({f.file for f in findings})}
    )
    now = {f.fingerprint for r in run_scanners(worktree, spec) for f in r.findings}
    return [f for f in findings if f.fingerprint in now]


def _changed_lines(diff: str) -> int:
    return sum(1 for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))


def no_llm_review(ws: Workspace, ticket: Ticket, base: str, head: str, worktree: Path) -> ReviewVerdict:
    git = GitRepo(worktree)
    spec = ws.settings.improvement
    changed = code_paths(git.diff_names(base, head))
    lines = _changed_lines(git.diff_text(base, head, paths=changed)) if changed else 0
    findings: list[ReviewFinding] = []
    if len(changed) > spec.max_diff_files:
        findings.append(_blocker(f"the change touches {len(changed)} files (limit {spec.max_diff_files})"))
    if lines > spec.max_diff_lines:
        findings.append(_blocker(f"the change has {lines} changed lines (limit {spec.max_diff_lines})"))
    outside = sorted(set(changed) - set(ticket.touch_set)) if ticket.touch_set else []
    if outside:
        findings.append(_blocker(f"files outside the ticket's touch set: {', '.join(outside[:10])}"))
    security, scan_note = _security_scan(ws, git, base, worktree, [p for p in changed if p.endswith(".py")])
    decision = ReviewDecision.REQUEST_CHANGES if findings or security else ReviewDecision.APPROVE
    comments = (
        f"{NO_LLM}. Diff: {len(changed)} file(s), {lines} changed line(s), limits {spec.max_diff_files} files / "
        f"{spec.max_diff_lines} lines; touch set {'respected' if not outside else 'NOT respected'}; {scan_note}. "
        "The QA gates run next."
    )
    return ReviewVerdict(decision=decision, findings=findings, security_findings=security, comments=comments)


def _blocker(title: str) -> ReviewFinding:
    return ReviewFinding(severity=FindingSeverity.BLOCKER, title=title)


def _security_scan(
    ws: Workspace, git: GitRepo, base: str, worktree: Path, files: list[str]
) -> tuple[list[SecurityFinding], str]:
    """bandit findings in the changed files that their base versions did not have."""
    if not files:
        return [], "security scan: no Python file changed"
    spec = ws.settings.improvement.model_copy(update={"scanners": ["bandit"], "paths": files})
    head_result = run_scanners(worktree, spec)[0]
    if not head_result.available:
        return [], f"security scan unavailable ({head_result.note})"
    with tempfile.TemporaryDirectory(prefix="conveyor-base-") as tmp:
        root = Path(tmp)
        present = []
        for rel in files:
            text = git.show_file(base, rel)
            if text is not None:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text, encoding="utf-8")
                present.append(rel)
        base_spec = spec.model_copy(update={"paths": present})
        base_found = {f.fingerprint for f in run_scanners(root, base_spec)[0].findings} if present else set()
    new = [f for f in head_result.findings if f.fingerprint not in base_found]
    severity = {"critical": SecuritySeverity.CRITICAL, "high": SecuritySeverity.HIGH}
    found = [
        SecurityFinding(
            severity=severity.get(f.severity, SecuritySeverity.MEDIUM),
            title=f"bandit {f.rule}: {f.message}",
            file=f.file,
        )
        for f in new
    ]
    return found, f"security scan (bandit) of {len(files)} changed Python file(s): {len(found)} new finding(s)"
