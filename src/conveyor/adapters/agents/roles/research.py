"""Research: a code summary and scanner findings → issues worth a ticket (the improvement loop, seed 002).

Default tier: normal. Default stage: ``improvement``.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dspy  # type: ignore[import-untyped]

from conveyor.adapters.agents.roles.base import RoleCall, RoleOutcome, RoleProgram, clip_head, run_role
from conveyor.domain.agent import AgentRole
from conveyor.domain.roles import ResearchReport
from conveyor.domain.ticket import ModelTier

MAX_SUMMARY_CHARS = 80_000
MAX_FINDINGS_CHARS = 80_000


class ResearchSignature(dspy.Signature):  # type: ignore[misc]
    """Find the issues in a codebase worth fixing."""

    code_summary: str = dspy.InputField(desc="A map of the code: files, top-level symbols, notable excerpts.")
    scanner_findings: str = dspy.InputField(desc="Findings of the scanners (lint, type, security, coverage).")
    previous_loop: str = dspy.InputField(
        desc="The previous improvement loop's summary: its patterns and gotchas (what to avoid repeating)."
    )
    report: ResearchReport = dspy.OutputField(desc="The issues worth a ticket, most severe first.")


class ResearchProgram(RoleProgram):
    ROLE = AgentRole.RESEARCH
    VERSION = "2"
    SIGNATURE = ResearchSignature
    OUTPUT_FIELD = "report"
    OUTPUT_TYPE = ResearchReport
    DEFAULT_TIER = ModelTier.NORMAL
    DEFAULT_STAGE = "improvement"


def findings_text(findings: str | Sequence[Mapping[str, Any]]) -> str:
    if isinstance(findings, str):
        return findings.strip()
    return "\n".join(json.dumps(dict(item), sort_keys=True, ensure_ascii=False, default=str) for item in findings)


def run(
    call: RoleCall,
    *,
    code_summary: str,
    scanner_findings: str | Sequence[Mapping[str, Any]],
    previous_loop: str = "",
    program: ResearchProgram | None = None,
) -> RoleOutcome[ResearchReport]:
    """Issues from ``code_summary`` and ``scanner_findings`` (text, or one mapping per finding); ``previous_loop`` is
    the last loop's summary (seed 002: the loop reads only loop_summary.md of its history)."""
    inputs: dict[str, Any] = {
        "code_summary": clip_head(code_summary.strip(), MAX_SUMMARY_CHARS) or "(none)",
        "scanner_findings": clip_head(findings_text(scanner_findings), MAX_FINDINGS_CHARS) or "(none)",
        "previous_loop": clip_head(previous_loop.strip(), MAX_SUMMARY_CHARS) or "(first loop)",
    }
    return run_role(ResearchProgram, call, inputs, ResearchReport, program=program)
