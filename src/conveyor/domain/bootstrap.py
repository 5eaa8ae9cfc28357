"""Bootstrap, deterministic part: review-report findings → a dependency-ordered backlog (seed 001 Steps 2-4, 6b).

Companions: :mod:`conveyor.domain.bootstrap_plan` (a planner's plan → backlog), :mod:`conveyor.domain.bootstrap_budget`
(Step 3b forecast and scope cut) and :mod:`conveyor.domain.bootstrap_merge` (re-runs upsert).

**Findings.** Every finding id becomes exactly one ticket. Findings that share an id are one finding (the first
occurrence, with the most severe severity, the security mark if any carries it, and the first non-empty
description, component, file and lines). Findings with different ids but the same file and title stay two tickets
here; bootstrap passes every backlog it writes through :func:`~conveyor.domain.bootstrap_merge.merge_backlog` (the
first run too, with nothing existing), which merges them and reports the merge, so that a re-run with the same
input finds nothing to change.

**Category** of a finding's ticket (``{PREFIX}-{CAT}-{NNN}``), first rule that applies:

==================================================================  ======
finding                                                             CAT
==================================================================  ======
security (marked ``security``, or id starting SEC), any severity     SEC (ARCHITECTURE.md §8)
performance (id starting PERF)                                      PERF
tests (id starting TEST / COV)                                      TEST
documentation (id starting DOC / DOCS)                              DOC
anything else, critical or high                                     HIGH
anything else, medium, low or info                                  CQ
==================================================================  ======

**Phase** by severity: critical 1, high 2, medium 3, low and info 4. Phases without findings do not exist;
"the previous phase" is the previous one that exists.

**Order within a phase:** tickets are grouped by file (same-file tickets together; a ticket without a file is a
group of its own); inside a group, smaller estimate first (then report order), and each ticket depends on the
one before it (earlier blocks later). Groups are ordered blockers first (a group of k tickets has a head that k-1
tickets wait on, so larger groups first), then by the estimate of their first ticket (simpler first), then by
report order. Seed 001's rule 3 (auth foundations block what relies on them) needs judgment that findings do
not carry; it is the planner's job, not this function's.

**Dependencies and phase tickets:** every ticket of phase N (its docs and verification tickets included) depends
on the verification ticket of the previous phase. A phase with code work (any ticket that is not a test or
documentation finding) gets a documentation ticket (kind DOCS, category DOC; seed 001 Step 6b) depending on the
phase's finding tickets. Each phase ends with a verification ticket (kind and task type VERIFICATION) depending on
every ticket of the phase: it runs the full QA gates on main after the phase's merges, plus the security gates
when the phase holds security fixes. Its category is seed 001's for the phase (1 SEC, 2 HIGH, 3 CQ, 4 TEST).
Numbers count per category in backlog order, from 001.

**Fields** of a finding's ticket: title and description from the finding, its finding id, source (file, lines),
repo = component, touch set = the file, branch ``conveyor/<id in lower case>`` (none for verification tickets:
they run on main), issue = ``forge_issue_ref(phase)`` (``TASKS:P<n>`` without a forge), complexity (hence the
model tier) from the estimate, and an acceptance criterion naming the finding (plus the failing-test rule for
fixes). Phase tickets take the phase's severity (1 critical ... 4 low) so that they sort with their phase.

**Estimates** (:mod:`conveyor.domain.estimates`): a finding names one file unless its text says "~N files";
fixes are estimated with tests (the implementer starts a bug or security fix with a failing test) unless the
finding is about tests or docs; no finding ticket is charged for docs, because the phase's documentation ticket
carries that work: 2.5K (Step 3's +2-3K) per change ticket with code work. Verification tickets are 4K.
Learnings calibrate all of them by task type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from conveyor.domain.estimates import (
    DOCS_TOKENS,
    Estimate,
    FindingArea,
    base_tokens,
    calibrate,
    calibration_for,
    complexity_for,
    estimate_finding,
    finding_area,
)
from conveyor.domain.findings import Finding
from conveyor.domain.ids import format_ticket_id
from conveyor.domain.learning import LearningRecord
from conveyor.domain.ticket import Severity, SourceRef, TaskType, Ticket, TicketKind

PHASE_OF_SEVERITY: dict[Severity, int] = {
    Severity.CRITICAL: 1,
    Severity.HIGH: 2,
    Severity.MEDIUM: 3,
    Severity.LOW: 4,
    Severity.INFO: 4,
}
# Seed 001 Step 2: what each phase is about, and Step 4: the category of its verification ticket.
PHASE_FOCUS: dict[int, str] = {
    1: "critical security and data-exposure fixes",
    2: "high-severity hardening and auth gaps",
    3: "code quality, performance and bugs",
    4: "tests, documentation and cleanup",
}
PHASE_SEVERITY: dict[int, Severity] = {1: Severity.CRITICAL, 2: Severity.HIGH, 3: Severity.MEDIUM, 4: Severity.LOW}
VERIFICATION_CATEGORY: dict[int, str] = {1: "SEC", 2: "HIGH", 3: "CQ", 4: "TEST"}
DOCS_CATEGORY = "DOC"
DOCS_PER_TICKET_TOKENS = DOCS_TOKENS
BRANCH_PREFIX = "conveyor/"

_AREA_CATEGORY: dict[FindingArea, str] = {
    FindingArea.SECURITY: "SEC",
    FindingArea.PERFORMANCE: "PERF",
    FindingArea.TEST: "TEST",
    FindingArea.DOCS: DOCS_CATEGORY,
}


def internal_issue_ref(phase: int) -> str:
    """Seed 001's issue column without a forge: ``TASKS:P<n>``."""
    return f"TASKS:P{phase}"


def phase_for(severity: Severity) -> int:
    return PHASE_OF_SEVERITY[severity]


def ticket_category(finding: Finding) -> str:
    """The ticket category of a finding (the table of the module docstring)."""
    area = finding_area(finding)
    if area in _AREA_CATEGORY:
        return _AREA_CATEGORY[area]
    return "HIGH" if finding.severity in (Severity.CRITICAL, Severity.HIGH) else "CQ"


def has_code_work(finding: Finding) -> bool:
    """Code, API, auth or infrastructure work (seed 001 Step 6b): not a test or documentation finding."""
    return finding_area(finding) not in (FindingArea.TEST, FindingArea.DOCS)


def branch_for(ticket_id: str) -> str:
    return f"{BRANCH_PREFIX}{ticket_id.lower()}"


def normalise_title(title: str) -> str:
    """Case, runs of white space and trailing punctuation do not make two titles different."""
    return re.sub(r"\s+", " ", title).strip().rstrip(".:;!").strip().casefold()


def normalise_path(path: str) -> str:
    text = path.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def dedupe_findings(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per id, in order of first appearance (the merge rule of the module docstring)."""
    merged: dict[str, Finding] = {}
    for finding in findings:
        key = finding.id.strip()
        first = merged.get(key)
        if first is None:
            merged[key] = finding
            continue
        merged[key] = first.model_copy(
            update={
                "severity": min(first.severity, finding.severity, key=lambda s: s.rank),
                "security": first.security or finding.security,
                "description": first.description or finding.description,
                "component": first.component or finding.component,
                "file": first.file or finding.file,
                "lines": first.lines or finding.lines,
            }
        )
    return list(merged.values())


# -- building -----------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A ticket before its id: ``deps`` are positions in the draft list."""

    category: str
    fields: dict[str, object]
    deps: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    finding: Finding
    estimate: Estimate
    index: int

    @property
    def file(self) -> str | None:
        return normalise_path(self.finding.file) if self.finding.file else None


def _ordered(items: Sequence[_Item]) -> list[list[_Item]]:
    """Same-file groups of one phase, each sorted simpler first, blockers (larger groups) first."""
    groups: dict[object, list[_Item]] = {}
    for item in items:
        groups.setdefault(item.file if item.file is not None else ("no file", item.index), []).append(item)
    chains = [sorted(group, key=lambda i: (i.estimate.tokens, i.index)) for group in groups.values()]
    return sorted(chains, key=lambda c: (-len(c), c[0].estimate.tokens, min(i.index for i in c)))


def _finding_fields(item: _Item, *, needs_tests: bool, issue: str) -> dict[str, object]:
    finding = item.finding
    source = SourceRef(file=normalise_path(finding.file), lines=finding.lines) if finding.file else None
    criteria = [f"{finding.id} is remediated" + (f" at {source}" if source else "")]
    if needs_tests:
        criteria.append("A test that failed before the fix passes after it")
    return {
        "title": finding.title.strip(),
        "description": finding.description.strip(),
        "acceptance_criteria": tuple(criteria),
        "kind": TicketKind.DOCS if finding_area(finding) is FindingArea.DOCS else TicketKind.CHANGE,
        "phase": phase_for(finding.severity),
        "severity": finding.severity,
        "finding_id": finding.id.strip(),
        "source": source,
        "issue": issue,
        "repo": finding.component,
        "touch_set": (source.file,) if source else (),
        "complexity": item.estimate.complexity,
        "task_type": item.estimate.task_type,
        "estimate_tokens": item.estimate.tokens,
    }


def docs_ticket_fields(
    phase: int, code_tickets: int, learnings: Sequence[LearningRecord], issue: str | None
) -> dict[str, object]:
    """The fields of a phase's documentation ticket (without id, dependencies and branch)."""
    tokens = calibrate(DOCS_PER_TICKET_TOKENS * max(1, code_tickets), calibration_for(TaskType.DOCS, learnings))
    return {
        "title": f"Phase {phase} documentation: {PHASE_FOCUS.get(phase, f'phase {phase} changes')}",
        "description": (
            f"Update the documentation for every change of phase {phase} (API, auth, configuration, operations) "
            "and complete the documentation checklist; the phase verification waits for it (seed 001 Step 6b)."
        ),
        "acceptance_criteria": (
            f"Documentation reflects every phase {phase} change",
            "Documentation checklist complete",
        ),
        "kind": TicketKind.DOCS,
        "phase": phase,
        "severity": PHASE_SEVERITY.get(phase),
        "issue": issue,
        "complexity": complexity_for(TaskType.DOCS),
        "task_type": TaskType.DOCS,
        "estimate_tokens": tokens,
    }


def verification_ticket_fields(
    phase: int, *, security: bool, docs: bool, learnings: Sequence[LearningRecord], issue: str | None
) -> dict[str, object]:
    """The fields of a phase's verification ticket (without id and dependencies)."""
    gates = "the full QA gates" + (" plus the security gates (the phase holds security fixes)" if security else "")
    criteria = [f"Full QA gates pass on main with every phase {phase} ticket merged"]
    if security:
        criteria.append("Security gates pass on main")
    if docs:
        criteria.append(f"Phase {phase} documentation ticket done")
    tokens = calibrate(base_tokens(TaskType.VERIFICATION), calibration_for(TaskType.VERIFICATION, learnings))
    return {
        "title": f"Phase {phase} verification: {PHASE_FOCUS.get(phase, f'phase {phase}')}",
        "description": (
            f"Runs {gates} on main after phase {phase}'s merges. No code change of its own; "
            f"the next phase waits for it."
        ),
        "acceptance_criteria": tuple(criteria),
        "kind": TicketKind.VERIFICATION,
        "phase": phase,
        "severity": PHASE_SEVERITY.get(phase),
        "issue": issue,
        "complexity": complexity_for(TaskType.VERIFICATION),
        "task_type": TaskType.VERIFICATION,
        "estimate_tokens": tokens,
    }


def backlog_from_findings(
    findings: Iterable[Finding],
    *,
    prefix: str,
    learnings: Iterable[LearningRecord] = (),
    forge_issue_ref: Callable[[int], str] = internal_issue_ref,
    regression_tests: bool = True,
) -> list[Ticket]:
    """The backlog of a review report's findings, by the rules of the module docstring.

    ``regression_tests`` False estimates fixes without the tests surcharge.
    """
    records = list(learnings)
    unique = dedupe_findings(findings)
    by_phase: dict[int, list[_Item]] = {}
    for index, finding in enumerate(unique):
        needs_tests = regression_tests and has_code_work(finding)
        estimate = estimate_finding(finding, needs_tests=needs_tests, learnings=records)
        by_phase.setdefault(phase_for(finding.severity), []).append(_Item(finding, estimate, index))

    drafts: list[_Draft] = []
    previous_verification: int | None = None
    for phase in sorted(by_phase):
        issue = forge_issue_ref(phase)
        gate = [previous_verification] if previous_verification is not None else []
        members: list[int] = []
        code_work = 0
        for chain in _ordered(by_phase[phase]):
            before: int | None = None
            for item in chain:
                needs_tests = regression_tests and has_code_work(item.finding)
                fields = _finding_fields(item, needs_tests=needs_tests, issue=issue)
                deps = [*gate, *([before] if before is not None else [])]
                drafts.append(_Draft(ticket_category(item.finding), fields, deps))
                before = len(drafts) - 1
                members.append(before)
                code_work += has_code_work(item.finding)
        security = any(finding_area(i.finding) is FindingArea.SECURITY for i in by_phase[phase])
        if code_work:
            drafts.append(
                _Draft(DOCS_CATEGORY, docs_ticket_fields(phase, code_work, records, issue), [*gate, *members])
            )
            members.append(len(drafts) - 1)
        fields = verification_ticket_fields(
            phase, security=security, docs=code_work > 0, learnings=records, issue=issue
        )
        drafts.append(_Draft(VERIFICATION_CATEGORY.get(phase, "TEST"), fields, [*gate, *members]))
        previous_verification = len(drafts) - 1
    return _number(drafts, prefix)


def _number(drafts: Sequence[_Draft], prefix: str) -> list[Ticket]:
    """Give drafts their ids (numbers per category in order) and turn them into tickets."""
    counters: dict[str, int] = {}
    ids: list[str] = []
    for draft in drafts:
        counters[draft.category] = counters.get(draft.category, 0) + 1
        ids.append(format_ticket_id(prefix, draft.category, counters[draft.category]))
    tickets = []
    for ticket_id, draft in zip(ids, drafts, strict=True):
        fields = dict(draft.fields)
        if fields.get("kind") is not TicketKind.VERIFICATION:
            fields.setdefault("branch", branch_for(ticket_id))
        tickets.append(
            Ticket.model_validate({**fields, "id": ticket_id, "depends_on": tuple(ids[d] for d in draft.deps)})
        )
    return tickets
