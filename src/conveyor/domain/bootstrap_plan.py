"""Bootstrap from a plan: the planner's (or the PRD parser's) :class:`~conveyor.domain.roles.Plan` → a backlog.

- **Ids** ``{PREFIX}-{CAT}-{NNN}`` with the category of the ticket's task type (:data:`TYPE_CATEGORY`): security,
  auth and guard work SEC, tests and verification TEST, documentation DOC, new features FEAT (a custom category:
  seed 001 has none for features), everything else CQ. Numbers count per category in backlog order.
- **Order:** dependencies before dependents, otherwise the plan's order (Kahn's algorithm, ties by position).
- **Dependencies** are resolved from each ticket's ``depends_on`` (id hint or title, as
  :meth:`~conveyor.domain.roles.Plan.resolve` does); the plan validator has already refused unknown names and
  cycles.
- **Kept as planned:** title, description, acceptance criteria, complexity (hence the model tier), touch set and
  task type. Kind DOCS for DOCS tickets, VERIFICATION for VERIFICATION tickets, CHANGE otherwise.
- **Estimate:** the planner's, corrected by the learnings calibration of its task type
  (:func:`conveyor.domain.estimates.calibration_for`); an estimate of 0 is replaced by the planned type's seed
  estimate for its touch set (:func:`conveyor.domain.estimates.estimate_for_type`), calibrated likewise.
- **Documentation ticket:** when the plan has code work (a ticket that is not DOCS, TEST_ADD or VERIFICATION)
  and no DOCS ticket, one is appended (seed 001 Step 6b), depending on every code-work ticket, estimated 2.5K
  per code-work ticket.
- A plan has no phases: ``phase``, ``severity`` and ``issue`` stay empty, and scope cuts by phase do not apply.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from conveyor.domain.bootstrap import DOCS_CATEGORY, DOCS_PER_TICKET_TOKENS, branch_for
from conveyor.domain.estimates import calibrate, calibration_for, complexity_for, estimate_for_type
from conveyor.domain.ids import format_ticket_id
from conveyor.domain.learning import LearningRecord
from conveyor.domain.roles import Plan, PlannedTicket
from conveyor.domain.ticket import TaskType, Ticket, TicketKind

TYPE_CATEGORY: dict[TaskType, str] = {
    TaskType.SECURITY_FIX: "SEC",
    TaskType.AUTH_ADD: "SEC",
    TaskType.GUARD_ADD: "SEC",
    TaskType.TEST_ADD: "TEST",
    TaskType.VERIFICATION: "TEST",
    TaskType.DOCS: DOCS_CATEGORY,
    TaskType.FEATURE_ADD: "FEAT",
}
DEFAULT_CATEGORY = "CQ"
NO_CODE_TYPES = frozenset({TaskType.DOCS, TaskType.TEST_ADD, TaskType.VERIFICATION})
_KIND: dict[TaskType, TicketKind] = {TaskType.DOCS: TicketKind.DOCS, TaskType.VERIFICATION: TicketKind.VERIFICATION}


def plan_category(task_type: TaskType) -> str:
    return TYPE_CATEGORY.get(task_type, DEFAULT_CATEGORY)


def _plan_order(plan: Plan) -> list[int]:
    """Positions of the plan's tickets, dependencies first, ties in plan order."""
    position = {id(t): i for i, t in enumerate(plan.tickets)}
    deps = {i: sorted({position[id(d)] for d in plan.resolve(t)}) for i, t in enumerate(plan.tickets)}
    dependents: dict[int, list[int]] = {i: [] for i in deps}
    for node, needs in deps.items():
        for need in needs:
            dependents[need].append(node)
    indegree = {i: len(needs) for i, needs in deps.items()}
    heap = [i for i, d in indegree.items() if d == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        node = heapq.heappop(heap)
        order.append(node)
        for child in dependents[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, child)
    return order


def _estimate(ticket: PlannedTicket, learnings: list[LearningRecord]) -> int:
    if ticket.estimate_tokens > 0:
        return calibrate(ticket.estimate_tokens, calibration_for(ticket.task_type, learnings))
    files = max(1, len(ticket.touch_set))
    return estimate_for_type(ticket.task_type, file_count=files, learnings=learnings, why="planned").tokens


def _numbered(plan: Plan, prefix: str, order: list[int]) -> tuple[dict[int, str], dict[str, int]]:
    counters: dict[str, int] = {}
    ids: dict[int, str] = {}
    for index in order:
        category = plan_category(plan.tickets[index].task_type)
        counters[category] = counters.get(category, 0) + 1
        ids[index] = format_ticket_id(prefix, category, counters[category])
    return ids, counters


def plan_ticket_ids(plan: Plan, *, prefix: str) -> list[str]:
    """The id :func:`backlog_from_plan` gives each ticket of ``plan``, by the plan's own positions."""
    ids, _ = _numbered(plan, prefix, _plan_order(plan))
    return [ids[i] for i in range(len(plan.tickets))]


def backlog_from_plan(
    plan: Plan, *, prefix: str, learnings: Iterable[LearningRecord] = (), add_docs: bool = True
) -> list[Ticket]:
    """The backlog of ``plan``, by the rules of the module docstring (``add_docs``: the documentation ticket
    a plan without one gets; a re-plan of part of a backlog passes False)."""
    records = list(learnings)
    order = _plan_order(plan)
    ids, counters = _numbered(plan, prefix, order)
    position = {id(t): i for i, t in enumerate(plan.tickets)}
    tickets: list[Ticket] = []
    for index in order:
        planned = plan.tickets[index]
        ticket_id = ids[index]
        deps = list(dict.fromkeys(ids[position[id(d)]] for d in plan.resolve(planned)))
        kind = _KIND.get(planned.task_type, TicketKind.CHANGE)
        tickets.append(
            Ticket(
                id=ticket_id,
                title=planned.title,
                description=planned.description,
                acceptance_criteria=tuple(planned.acceptance_criteria),
                kind=kind,
                depends_on=tuple(deps),
                branch=None if kind is TicketKind.VERIFICATION else branch_for(ticket_id),
                touch_set=tuple(planned.touch_set),
                complexity=planned.complexity,
                task_type=planned.task_type,
                estimate_tokens=_estimate(planned, records),
            )
        )
    code_work = [t.id for t in tickets if t.task_type not in NO_CODE_TYPES]
    if add_docs and code_work and not any(t.task_type is TaskType.DOCS for t in tickets):
        docs_id = format_ticket_id(prefix, DOCS_CATEGORY, counters.get(DOCS_CATEGORY, 0) + 1)
        tokens = calibrate(DOCS_PER_TICKET_TOKENS * len(code_work), calibration_for(TaskType.DOCS, records))
        tickets.append(
            Ticket(
                id=docs_id,
                title="Documentation: update the docs for the planned changes",
                description=(
                    "Update the documentation for every change of this plan (API, auth, configuration, "
                    "operations) and complete the documentation checklist (seed 001 Step 6b)."
                ),
                acceptance_criteria=(
                    "Documentation reflects every planned change",
                    "Documentation checklist complete",
                ),
                kind=TicketKind.DOCS,
                depends_on=tuple(code_work),
                branch=branch_for(docs_id),
                complexity=complexity_for(TaskType.DOCS),
                task_type=TaskType.DOCS,
                estimate_tokens=tokens,
            )
        )
    return tickets
