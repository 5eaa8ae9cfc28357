"""Bootstrap's inputs (seed 001 Phase 1 Steps 0-2, Recovery): which source, the PRD first, and the plan.

A PRD exists before any ticket is planned: with only a review report, a minimal one is written
deterministically; with only a kickstart text, the planner drafts it (or, without a model, the kickstart
itself becomes the PRD). Every guess is marked ``ASSUMPTION:``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.adapters.atomic import write_text
from conveyor.domain.agent import AgentRequest, AgentRole
from conveyor.domain.errors import ConveyorError, InputError
from conveyor.domain.findings import ParsedReport
from conveyor.ports import AgentBackend

PRD_MD = "docs/PRD.md"
PRD_JSON = "docs/PRD.json"
TASKS_MD = "docs/TASKS.md"


@dataclass(frozen=True)
class BootstrapRequest:
    """One of ``prd`` (a path), ``report`` (a folder under docs/reports/) or ``kickstart`` (text); none: the
    repository's own docs/PRD.md or docs/PRD.json. ``archive``: "resume" or "fresh" when an archived backlog
    is found and docs/TASKS.md is missing (seed 001 Recovery)."""

    repo: Path
    prd: str | None = None
    report: str | None = None
    kickstart: str | None = None
    archive: str | None = None


@dataclass
class PrdStep:
    path: str
    written: bool = False
    assumptions: list[str] = field(default_factory=list)


def existing_prd(repo: Path) -> str | None:
    for candidate in (PRD_MD, PRD_JSON):
        if (repo / candidate).exists():
            return candidate
    return None


def recover(request: BootstrapRequest) -> str | None:
    """Seed 001 Recovery: no docs/TASKS.md but an archive in docs/tasks/ → resume from it or start fresh.

    Returns what was done, None when there was nothing to recover. Without a choice it stops and says how.
    """
    repo = request.repo
    if (repo / TASKS_MD).exists():
        return None
    archives = sorted((repo / "docs/tasks").glob("*-tasks.md"), key=lambda p: (p.stat().st_mtime, p.name))
    if not archives:
        return None
    newest = archives[-1].relative_to(repo).as_posix()
    if request.archive is None:
        raise ConveyorError(
            f"docs/TASKS.md is missing but {newest} holds an archived backlog (another session may have archived "
            "it). Re-run with --resume-archive to continue from it, or --fresh to bootstrap a new backlog."
        )
    if request.archive == "resume":
        shutil.copyfile(repo / newest, repo / TASKS_MD)
        return f"resumed from {newest}"
    return f"started fresh (archive {newest} kept)"


def minimal_prd_for_report(report: ParsedReport, folder: str) -> str:
    counts = report.counted()
    stated = ", ".join(f"{n} {severity.value}" for severity, n in counts.items() if n)
    return "\n".join(
        [
            f"# PRD: remediate the findings of {folder}",
            "",
            "ASSUMPTION: Conveyor wrote this PRD because the repository had none; it states only what the "
            "review report implies.",
            "",
            "## Goal",
            f"Remediate the {len(report.findings)} findings ({stated}) of the review report {folder}.",
            "",
            "## Requirements",
            f"- [ ] Every finding of {folder} is fixed, or deferred with a documented reason "
            "(docs/reports/deferred/deferred-errors.md).",
            "- [ ] The quality gates pass after each phase.",
            "- [ ] Documentation is updated for code, API, auth and infrastructure changes.",
            "",
            "ASSUMPTION: no new features are in scope; behaviour changes only where a finding requires it.",
            "",
        ]
    )


DRAFT_SYSTEM = """You draft a product requirements document (PRD) in markdown from a short kickstart text.
Write: a title line '# PRD: <name>', a Goal section, and a Requirements section as a checkbox list
('- [ ] <one checkable requirement>'), one requirement per line. Every requirement you had to guess, and every
assumption about scope, users or constraints, is a line starting with 'ASSUMPTION:'. Answer with the markdown
only."""


def kickstart_prd(text: str, backend: AgentBackend | None, run_id: str) -> tuple[str, bool]:
    """(PRD markdown, drafted by a model?). Without a backend the kickstart text itself becomes the PRD."""
    if backend is not None:
        result = backend.run(
            AgentRequest(
                role=AgentRole.PLANNER,
                run_id=run_id,
                stage="bootstrap-prd",
                prompt_version="prd-draft-1",
                system=DRAFT_SYSTEM,
                inputs={"messages": [{"role": "user", "content": text}]},
            )
        )
        if result.ok and result.text.strip():
            return result.text.strip() + "\n", True
        raise ConveyorError(f"the planner could not draft docs/PRD.md: {result.error_kind}: {result.error_detail}")
    body = text.strip()
    prd = (
        "# PRD (from the kickstart)\n\n"
        "ASSUMPTION: no model was available (deterministic mode); these requirements are the kickstart text as "
        "given, nothing was inferred.\n\n" + body + "\n"
    )
    return prd, False


def ensure_prd(
    request: BootstrapRequest, report: ParsedReport | None, backend: AgentBackend | None, run_id: str
) -> PrdStep:
    """Step 0: the PRD exists before planning; write it when the inputs allow and it is missing."""
    repo = request.repo
    if request.prd is not None:
        if not (repo / request.prd).exists():
            raise InputError.single(request.prd, None, "PRD file not found")
        return PrdStep(request.prd)
    found = existing_prd(repo)
    if found is not None:
        return PrdStep(found)
    if report is not None and request.report is not None:
        text = minimal_prd_for_report(report, request.report)
    elif request.kickstart is not None:
        text, _ = kickstart_prd(request.kickstart, backend, run_id)
    else:
        raise InputError.single(
            PRD_MD, None, "no PRD: give --prd PATH, --report DIR (docs/reports/<name>/) or --kickstart TEXT"
        )
    write_text(repo / PRD_MD, text)
    assumptions = [line.strip() for line in text.splitlines() if line.strip().startswith("ASSUMPTION:")]
    return PrdStep(PRD_MD, written=True, assumptions=assumptions)
