"""The implementer's prompts: a stable system prompt (cached) and the task message built from the ticket.

The task message follows seed 001's worker prompt template, adapted to Conveyor: the agent works through
tools confined to its worktree, and reports seed 001's result fields through the ``finish`` tool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

IMPLEMENTER_SYSTEM = """You are the implementer of one ticket in a software project. You work only through the
tools you are given, inside one git worktree; paths are relative to its root.

How to work:
1. Read the ticket, the repository map and any playbook or skills below. Read docs/PRD.md when it exists and
   keep your change aligned with it.
2. Read the files you need before changing them. Make the smallest change that meets every acceptance
   criterion, following the existing code's patterns.
3. Run the quality gates listed in the ticket with run_command and fix every failure in the files you touched.
   Bug fixes and security fixes start with a failing test.
4. Keep working notes with update_scratchpad: what you found, what you changed, what is left.
5. When the work is done and the gates pass, call finish with status "success" and a one-line commit message.
   If you cannot finish, call finish with status "failed" and say why; if a person must decide something,
   use status "escalate".

Rules: never modify docs/TASKS.md (Conveyor is its only writer); do not work on other tickets; do not claim
success with failing gates or without a change."""


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items) if items else "- (none given)"


def task_message(ticket_id: str, inputs: Mapping[str, Any]) -> str:
    """Seed 001's "Task Assignment" for ``ticket_id`` from the request inputs.

    Inputs used: ``ticket`` (title, description, acceptance_criteria, finding_id, source, touch_set),
    ``branch``, ``quality_gates`` (argv lists), ``feedback`` (reviewer or QA findings of the last round).
    """
    ticket: Mapping[str, Any] = inputs.get("ticket", {})
    gates = [" ".join(argv) for argv in inputs.get("quality_gates", [])]
    parts = [
        f"## Task Assignment: {ticket_id}",
        f"**Title:** {ticket.get('title', '')}",
    ]
    if ticket.get("description"):
        parts.append(f"**Description:** {ticket['description']}")
    if ticket.get("finding_id"):
        parts.append(f"**Finding:** {ticket['finding_id']} (details in docs/reports/; search for the id)")
    if ticket.get("source"):
        parts.append(f"**Location:** {ticket['source']}")
    if inputs.get("branch"):
        parts.append(f"**Branch:** {inputs['branch']} (already checked out in your worktree)")
    parts += [
        "### Acceptance criteria",
        _bullets(list(ticket.get("acceptance_criteria", []))),
        "### Files likely touched",
        _bullets(list(ticket.get("touch_set", []))),
        "### Quality gates (run them with run_command; all must pass)",
        _bullets(gates),
    ]
    if inputs.get("feedback"):
        parts += ["### Feedback from the last review or QA round (address every point)", str(inputs["feedback"])]
    parts.append("When done, call finish with your result.")
    return "\n\n".join(parts)


def playbook_context(workdir: Path) -> list[tuple[str, str]]:
    """docs/playbook/** and automations/skills/*.md when the repository has them: (path, text), small files only."""
    found = []
    for pattern in ("docs/playbook/**/*.md", "automations/skills/*.md"):
        for path in sorted(workdir.glob(pattern)):
            if path.is_file() and path.stat().st_size < 50_000:
                found.append((path.relative_to(workdir).as_posix(), path.read_text(errors="replace")))
    return found
