"""The re-plan the execution loop runs when rewards decline three completions in a row (build-spec
``on_decline: replan``, the default; issue 5 §4).

With a model the planner gets the product spec and a brief (what was finished and how its rewards fell, what
is under way, and the remaining tickets with their ids to keep) and answers a plan of the remaining work,
folded into the backlog by :func:`conveyor.domain.replan.apply_replan`. Without one, or when the planner
fails, the remaining estimates are re-calibrated from this run's cost variance
(:func:`conveyor.domain.replan.recalibrate`) and the report says which happened. Rules: module docstring of
:mod:`conveyor.domain.replan`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from conveyor.domain.agent import AgentRole
from conveyor.domain.errors import ConveyorError
from conveyor.domain.replan import ReplanResult, apply_replan, recalibrate, scope
from conveyor.domain.roles import Plan
from conveyor.domain.ticket import Ticket
from conveyor.services.bootstrap_inputs import existing_prd
from conveyor.services.delivery_agents import limited_backend
from conveyor.services.workspace import Workspace

REPLAN_STAGE = "replanning"


@dataclass(frozen=True)
class ReplanReport:
    how: str  # "planner" | "recalibrated" | "nothing to re-plan"
    result: ReplanResult
    note: str = ""

    def describe(self) -> str:
        text = f"{self.how}: {self.result.describe()}"
        return f"{text} ({self.note})" if self.note else text


def _line(ticket: Ticket) -> str:
    fields = {
        "id": ticket.id,
        "title": ticket.title,
        "task_type": ticket.task_type.value if ticket.task_type else None,
        "estimate_tokens": ticket.estimate_tokens,
        "depends_on": list(ticket.depends_on),
        "touch_set": list(ticket.touch_set),
        "description": ticket.description,
        "acceptance_criteria": list(ticket.acceptance_criteria),
    }
    return json.dumps(fields, ensure_ascii=False)


def brief(tickets: list[Ticket], finished: list[str], run_id: str) -> str:
    """The planner's context for a re-plan: what happened, what runs, and the tickets to re-plan."""
    by_id = {t.id: t for t in tickets}
    lines = [
        f"RE-PLAN during run {run_id}. The rewards of the last completed tickets declined three times in a row.",
        "Reward components are in [0, 1]: first-pass review approval, QA without retries, cost against the",
        "estimate, iterations. Completed this run, in order (id, title, reward, estimate vs used tokens):",
    ]
    for tid in finished:
        t = by_id.get(tid)
        if t is not None:
            lines.append(f"- {t.id} {t.title!r}: reward {t.reward}, estimate {t.estimate_tokens}, used {t.used_tokens}")
    running = [t for t in tickets if t.state.is_active]
    if running:
        lines.append("Under way (do not plan them; they are being delivered):")
        lines += [f"- {t.id} {t.title!r}" for t in running]
    lines += [
        "Return a plan of the REMAINING work below only. Keep a ticket's id as its id_hint when you keep it;",
        "split, merge, re-order, re-estimate or drop tickets where the rewards show the plan was wrong; new",
        "tickets get new id_hints. Depend only on tickets of your plan (finished ones are merged already).",
        "Remaining tickets (JSON, one per line):",
    ]
    lines += [_line(t) for t in scope(tickets)]
    return "\n".join(lines)


def _plan(ws: Workspace, finished: list[str]) -> Plan:
    prd = existing_prd(ws.repo)
    spec = (ws.repo / prd).read_text(encoding="utf-8") if prd else "(no PRD: the remaining tickets are the spec)"
    from conveyor.adapters.agents.roles import planner  # dspy: loaded only when a model re-plans
    from conveyor.adapters.agents.roles.base import RoleCall

    call = RoleCall(backend=limited_backend(ws), run_id=ws.run_id, stage=REPLAN_STAGE, repo_root=ws.repo)
    outcome = planner.run(call, spec=spec, context=brief(list(ws.tracker.backlog), finished, ws.run_id))
    ws.tracker.spend(None, AgentRole.PLANNER.value, outcome.cost_usd, outcome.usage.total)
    return outcome.output


def replan(ws: Workspace, finished: list[str]) -> ReplanReport:
    """Re-plan the remaining tickets of ``ws``'s backlog; ``finished``: the tickets done this run, in order."""
    if not scope(ws.tracker.backlog):
        return ReplanReport("nothing to re-plan", ReplanResult(list(ws.tracker.backlog)))
    note = "deterministic mode: no planner; estimates re-calibrated from this run's cost variance"
    if ws.backend is not None:
        try:
            plan = _plan(ws, finished)
            with ws.tracker.lock:
                result = apply_replan(list(ws.tracker.backlog), plan, prefix=ws.tracker.task_prefix, at=ws.clock())
                ws.tracker.rework(result.tickets, f"re-plan by the planner ({ws.backend_label})")
            return ReplanReport("planner", result)
        except (ConveyorError, ValueError) as exc:  # a plan that does not fit the backlog changes nothing
            note = f"the planner's re-plan was not applied ({exc}); estimates re-calibrated instead"
    with ws.tracker.lock:
        result = recalibrate(list(ws.tracker.backlog), finished)
        ws.tracker.rework(result.tickets, "re-plan: estimates re-calibrated")
    return ReplanReport("recalibrated", result, note)
