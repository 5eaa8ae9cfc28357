"""Findings of a review report (seed 001 Steps 1-2): what bootstrap turns into tickets, one ticket per finding id."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.ticket import Severity


class Finding(BaseModel):
    """One finding as the report states it; ``source``/``line`` say where in the report it was read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="the report's finding id, e.g. SEC-API-1, CQ-WEB-3, TEST-001")
    severity: Severity
    title: str
    description: str = ""
    component: str | None = Field(None, description="workspace or component; TASKS.md's repo column")
    file: str | None = Field(None, description="affected file, relative to the repository")
    lines: str | None = Field(None, description="line or range, e.g. 45-67")
    security: bool = Field(False, description="a security finding: category SEC whatever its severity (§8)")
    source: str = Field(description="report file the finding was read from, relative to the repository")
    line: int = Field(ge=1, description="1-based line of the finding in that file")


class SeverityCounts(BaseModel):
    """Counts by severity an executive summary states, and where it states them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    counts: dict[Severity, int]
    source: str
    line: int = Field(ge=1)


class ParsedReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="the report folder's name under docs/reports/")
    findings: tuple[Finding, ...]
    summary: SeverityCounts | None = None

    def counted(self) -> dict[Severity, int]:
        out = dict.fromkeys(Severity, 0)
        for finding in self.findings:
            out[finding.severity] += 1
        return out

    def summary_mismatches(self) -> dict[Severity, tuple[int, int]]:
        """Severity → (stated, parsed) wherever the executive summary disagrees with the findings."""
        if self.summary is None:
            return {}
        parsed = self.counted()
        return {
            severity: (stated, parsed[severity])
            for severity, stated in self.summary.counts.items()
            if stated != parsed[severity]
        }
