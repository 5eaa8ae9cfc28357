"""QA triage: the logs of failed quality gates → a failure summary for the implementer, the failing gates,
the likely cause and the next action (retry | fix | escalate).

Default tier: normal. Default stage: ``qa``.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import dspy  # type: ignore[import-untyped]

from conveyor.adapters.agents.roles.base import RoleCall, RoleOutcome, RoleProgram, clip_tail, run_role, ticket_text
from conveyor.domain.agent import AgentRole
from conveyor.domain.roles import QATriage
from conveyor.domain.ticket import ModelTier, Ticket

MAX_LOG_CHARS_PER_GATE = 12_000


class QATriageSignature(dspy.Signature):  # type: ignore[misc]
    """Triage failed quality gates."""

    ticket: str = dspy.InputField(desc="The ticket whose change was checked (may be empty).")
    gate_logs: str = dspy.InputField(desc="The output of each failed gate, under a '## <gate>' heading.")
    triage: QATriage = dspy.OutputField(desc="Failure summary, failing gates, likely cause and next action.")


class QATriageProgram(RoleProgram):
    ROLE = AgentRole.QA_TRIAGE
    VERSION = "1"
    SIGNATURE = QATriageSignature
    OUTPUT_FIELD = "triage"
    OUTPUT_TYPE = QATriage
    DEFAULT_TIER = ModelTier.NORMAL
    DEFAULT_STAGE = "qa"


def gate_logs_text(gate_logs: Mapping[str, str]) -> str:
    """Each gate's log under its name; long logs keep their end, where the error usually is."""
    parts = [
        f"## {name}\n{clip_tail(log.strip(), MAX_LOG_CHARS_PER_GATE) or '(no output)'}"
        for name, log in gate_logs.items()
    ]
    return "\n\n".join(parts) or "(no gate logs)"


def run(
    call: RoleCall,
    *,
    gate_logs: Mapping[str, str],
    ticket: Ticket | None = None,
    program: QATriageProgram | None = None,
) -> RoleOutcome[QATriage]:
    """Triage ``gate_logs`` (gate name → its output) of ``ticket``'s change."""
    if ticket is not None and call.ticket_id is None:
        call = replace(call, ticket_id=ticket.id)
    inputs: dict[str, Any] = {
        "ticket": ticket_text(ticket) if ticket is not None else "(none)",
        "gate_logs": gate_logs_text(gate_logs),
    }
    return run_role(QATriageProgram, call, inputs, QATriage, program=program)
