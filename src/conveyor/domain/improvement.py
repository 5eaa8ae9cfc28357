"""One improvement loop's bookkeeping (issue 7 §1, seed 002): findings against the queue, then tickets.

:func:`triage` folds a loop's scan into the issue queue: new findings are added, findings no scan reports any
more are fixed, and findings whose ticket was deferred, skipped or failed (or that a person marked won't-fix)
move to the suppression list. A finding with a ticket (open, done or archived) is never filed again.

:func:`decompose` turns the open findings into at most ``max_tickets`` tickets: one per rule of a scanner (one per
finding for the research agent), split so no ticket touches more files than the no-LLM review allows, most severe
first. In deterministic mode only the findings a mechanical fixer can fix become tickets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from conveyor.domain.ids import format_ticket_id, is_ticket_id, parse_ticket_id
from conveyor.domain.issue_queue import IssueQueue, QueueEntry, QueueStatus, Suppression
from conveyor.domain.scan import ScanFinding, ScanResult, unique
from conveyor.domain.ticket import ModelTier, Severity, State, TaskType, Ticket

SUPPRESSING_STATES = frozenset({State.DEFERRED, State.SKIPPED, State.FAILED})
_CATEGORY = {"bandit": "SEC", "pytest": "TEST", "coverage": "TEST"}
_TASK_TYPE = {
    "ruff": TaskType.STYLE_FIX,
    "ruff-format": TaskType.STYLE_FIX,
    "mypy": TaskType.REFACTOR,
    "bandit": TaskType.SECURITY_FIX,
    "pytest": TaskType.ERROR_HANDLING,
    "coverage": TaskType.TEST_ADD,
}
FIXABLE_ESTIMATE = 2_000  # tokens: a mechanical fix costs no model call, the estimate only orders the backlog
AGENT_ESTIMATE = 30_000


@dataclass
class Triage:
    queue: IssueQueue
    candidates: list[ScanFinding] = field(default_factory=list)
    newly_suppressed: list[Suppression] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)  # fingerprints whose ticket is still open
    recurring: list[str] = field(default_factory=list)  # reported again although their ticket is done


def triage(
    queue: IssueQueue,
    results: Sequence[ScanResult],
    research: Iterable[ScanFinding],
    *,
    loop: int,
    ticket_states: Mapping[str, State],
) -> Triage:
    """``ticket_states``: the backlog's tickets; a filed ticket missing from it was archived by a release."""
    ran = {r.scanner for r in results if r.available}
    found = {f.fingerprint: f for f in unique([*(f for r in results for f in r.findings), *research])}
    ran |= {f.scanner for f in found.values()}
    out = Triage(queue=queue)
    suppressed = list(queue.suppressed)
    entries: list[QueueEntry] = []
    for entry in queue.entries:
        kept = _fold(entry, found.get(entry.fingerprint), ran, loop, ticket_states, out)
        if kept is not None:
            entries.append(kept)
    suppressed += out.newly_suppressed
    known = {e.fingerprint for e in entries} | {s.fingerprint for s in suppressed}
    for fingerprint, finding in found.items():
        if fingerprint not in known:
            entries.append(QueueEntry(finding=finding, first_loop=loop, last_loop=loop))
    out.candidates = [e.finding for e in entries if e.status is QueueStatus.OPEN and e.fingerprint in found]
    out.queue = IssueQueue(last_loop=loop, entries=tuple(entries), suppressed=tuple(suppressed))
    return out


def _fold(
    entry: QueueEntry,
    now: ScanFinding | None,
    ran: set[str],
    loop: int,
    ticket_states: Mapping[str, State],
    out: Triage,
) -> QueueEntry | None:
    """One known finding against this loop's scan; None when it moves to the suppression list."""
    state = ticket_states.get(entry.ticket) if entry.ticket else None
    if entry.status is QueueStatus.WONT_FIX or (now is not None and state in SUPPRESSING_STATES):
        reason = "marked wont-fix" if entry.status is QueueStatus.WONT_FIX else f"ticket {entry.ticket} {state}"
        out.newly_suppressed.append(Suppression(fingerprint=entry.fingerprint, reason=reason))
        return None
    if now is None:
        if entry.finding.scanner in ran and entry.status is not QueueStatus.FIXED:
            out.fixed.append(entry.fingerprint)
            return entry.model_copy(update={"status": QueueStatus.FIXED, "last_loop": loop})
        return entry
    update: dict[str, object] = {"finding": now, "last_loop": loop}
    if entry.status is QueueStatus.FIXED:  # it came back: a regression is a new finding
        update |= {"status": QueueStatus.OPEN, "ticket": None}
    if entry.status is QueueStatus.FILED:
        (out.recurring if state is State.DONE else out.in_flight).append(entry.fingerprint)
    return entry.model_copy(update=update)


@dataclass(frozen=True)
class Filed:
    ticket: Ticket
    findings: tuple[ScanFinding, ...]


def _groups(findings: Iterable[ScanFinding], max_files: int) -> list[list[ScanFinding]]:
    by_rule: dict[tuple[str, str, bool], list[ScanFinding]] = defaultdict(list)
    for finding in findings:
        key = (finding.scanner, finding.rule if finding.scanner != "research" else finding.fingerprint, finding.fixable)
        by_rule[key].append(finding)
    groups: list[list[ScanFinding]] = []
    for members in by_rule.values():
        files = sorted({f.file for f in members})
        for start in range(0, len(files), max_files):
            chunk = set(files[start : start + max_files])
            groups.append([f for f in members if f.file in chunk])
    return sorted(groups, key=lambda g: (min(Severity(f.severity).rank for f in g), -len(g), g[0].fingerprint))


def next_numbers(taken: Iterable[str]) -> Counter[str]:
    """The highest number used per category among ``taken`` ticket ids (suffixed ids count for their base)."""
    high: Counter[str] = Counter()
    for ident in taken:
        if is_ticket_id(ident):
            parsed = parse_ticket_id(ident)
            high[parsed.category] = max(high[parsed.category], parsed.number)
    return high


def decompose(
    candidates: Iterable[ScanFinding],
    *,
    max_tickets: int,
    max_files: int,
    fixable_only: bool,
    prefix: str,
    taken_ids: Iterable[str],
) -> list[Filed]:
    pool = [f for f in candidates if f.fixable or not fixable_only]
    numbers = next_numbers(taken_ids)
    filed: list[Filed] = []
    for group in _groups(pool, max_files)[: max(0, max_tickets)]:
        category = _category(group[0])
        numbers[category] += 1
        filed.append(Filed(_ticket(format_ticket_id(prefix, category, numbers[category]), group), tuple(group)))
    return filed


def _category(finding: ScanFinding) -> str:
    if finding.scanner == "research":
        return "SEC" if finding.rule.upper().startswith("B") else ("HIGH" if finding.severity == "high" else "CQ")
    return _CATEGORY.get(finding.scanner, "CQ")


def _ticket(ident: str, group: list[ScanFinding]) -> Ticket:
    first = group[0]
    files = sorted({f.file for f in group})
    fixer = " (mechanical fix)" if first.fixable else ""
    if first.scanner == "research":
        title = first.message.splitlines()[0][:120]
    else:
        title = f"{first.scanner} {first.rule}: {first.message.splitlines()[0][:80]}"
        if len(group) > 1:
            title += f" (+{len(group) - 1} more in {len(files)} file(s))"
    lines = [f"- {f.location} `{f.symbol}`: {f.message}" for f in group[:30]]
    if len(group) > 30:
        lines.append(f"- ... and {len(group) - 30} more")
    description = f"Improvement loop finding(s) of {first.scanner}{fixer}:\n" + "\n".join(lines)
    severity = min((Severity(f.severity) for f in group), key=lambda s: s.rank)
    return Ticket(
        id=ident,
        title=title,
        description=description,
        acceptance_criteria=(
            f"{first.scanner} no longer reports {first.rule} in {', '.join(files[:5])}",
            "the quality gates pass",
        ),
        severity=severity,
        touch_set=tuple(files),
        complexity=1 if first.fixable else (5 if first.scanner == "research" else 3),
        tier_override=ModelTier.EASY if first.fixable else None,
        task_type=_TASK_TYPE.get(first.scanner, TaskType.REFACTOR),
        estimate_tokens=FIXABLE_ESTIMATE if first.fixable else AGENT_ESTIMATE,
    )
