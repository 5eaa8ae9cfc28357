"""The judgment roles as DSPy programs with typed pydantic outputs (ARCHITECTURE.md §5).

One module per role, each with its program class and a ``run(call, ...)`` entry function; what they share
(prompt loading, prompt versions, program state files, the repair round) is in :mod:`.base`. Every LM call
goes through the caller's AgentBackend via :class:`conveyor.adapters.agents.dspy_lm.ConveyorLM`.
"""

from conveyor.adapters.agents.roles.base import (
    RoleCall,
    RoleOutcome,
    RoleProgram,
    load_state,
    prompt_version,
    save_state,
    state_path,
)
from conveyor.adapters.agents.roles.planner import PlannerProgram
from conveyor.adapters.agents.roles.qa_triage import QATriageProgram
from conveyor.adapters.agents.roles.release_notes import ReleaseNotesProgram
from conveyor.adapters.agents.roles.research import ResearchProgram
from conveyor.adapters.agents.roles.reviewer import ReviewerProgram
from conveyor.adapters.agents.roles.steward import StewardProgram
from conveyor.domain.agent import AgentRole

PROGRAMS: dict[AgentRole, type[RoleProgram]] = {
    AgentRole.PLANNER: PlannerProgram,
    AgentRole.REVIEWER: ReviewerProgram,
    AgentRole.QA_TRIAGE: QATriageProgram,
    AgentRole.RELEASE_NOTES: ReleaseNotesProgram,
    AgentRole.STEWARD: StewardProgram,
    AgentRole.RESEARCH: ResearchProgram,
}

__all__ = [
    "PROGRAMS",
    "PlannerProgram",
    "QATriageProgram",
    "ReleaseNotesProgram",
    "ResearchProgram",
    "ReviewerProgram",
    "RoleCall",
    "RoleOutcome",
    "RoleProgram",
    "StewardProgram",
    "load_state",
    "prompt_version",
    "save_state",
    "state_path",
]
