"""The budget decision of bootstrap (seed 001 Step 3b): what the form says and what an answer does.

The Prefect pause itself lives in tasks/human_gate.py; this is the logic behind it, without Prefect.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.domain.ticket import Ticket
from conveyor.services.bootstrap import BudgetStep, split_phase_ids, with_dependents


def over_cap_message(budget: BudgetStep) -> str:
    after = budget.after
    return (
        f"projected ${after.projected_usd:.2f} is over the cap ${after.cap_usd:.2f} even after deferring "
        f"phases {budget.cut_phases or 'none'}: reduce the scope, split the work into phases, or raise "
        "budget.cap_usd in automations/build-spec.yaml"
    )


def budget_question(budget: BudgetStep, problem: str | None) -> str:
    """The description above the budget form: where the budget stands and what each answer does."""
    after = budget.after
    open_ids = [t.id for t in budget.tickets if not t.state.is_terminal]
    lines = [
        "## Bootstrap budget: over the cap",
        "",
        f"Projected **${after.projected_usd:.2f}** against the cap **${after.cap_usd:.2f}** "
        f"({after.percent:.0f}%), after deferring phases {budget.cut_phases or 'none'} "
        f"({len(budget.cut)} ticket(s) deferred).",
        "",
        f"Open tickets ({len(open_ids)}): {', '.join(open_ids) or 'none'}.",
        "",
        "Choose: `reduce_scope` with the ticket ids to defer (their dependents are deferred too), "
        "`split_phases` (only the most severe phase now), `raise_cap` with `new_cap_usd` above the projection, "
        "or `stop` (nothing is written).",
    ]
    if problem:
        lines[1:1] = ["", f"**{problem}**"]
    return "\n".join(lines) + "\n"


def interpret_decision(
    action: str,
    defer: Sequence[str],
    new_cap_usd: float | None,
    base: list[Ticket],
    budget: BudgetStep,
    deferred: list[str],
    cap: float | None,
) -> tuple[list[str], float | None]:
    """The tickets an answer defers and the cap it sets; ValueError (shown on the next form) when it cannot apply."""
    if action == "reduce_scope":
        if not defer:
            raise ValueError("reduce_scope needs the ticket ids to defer in 'defer'")
        return list(defer), cap
    if action == "split_phases":
        gone = set(with_dependents(base, deferred))
        chosen = split_phase_ids([t for t in base if t.id not in gone])
        if not chosen:
            raise ValueError("split_phases found no other phase with open tickets")
        return chosen, cap
    projected = budget.after.projected_usd
    if new_cap_usd is None or new_cap_usd <= projected:
        given = "none" if new_cap_usd is None else f"${new_cap_usd:.2f}"
        raise ValueError(f"raise_cap needs new_cap_usd above the projected ${projected:.2f} (given {given})")
    return [], new_cap_usd
