"""The research agent of an improvement loop (seed 002 step 1), when a model is configured.

It reads the repository map (the implementer's, ranked for risk), the scanners' findings and the previous
loop's summary, and answers issues worth a ticket; each becomes a finding of scanner ``research``,
fingerprinted like the others so it is filed once. Whether its issues are worth fixing is a model's judgment:
nothing here tests that (it needs a real model).
"""

from __future__ import annotations

from pathlib import Path

from conveyor.adapters.agents.repo_map import build_repo_map
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.scan import MODULE_SYMBOL, ScanFinding, ScanResult
from conveyor.ports import AgentBackend
from conveyor.services.agents import role_tier
from conveyor.services.improvement import Research
from conveyor.settings import Settings

CODE_MAP_TOKENS = 8_000
# The query ranks the files for the map: the research agent looks for risk, so files named like it come first.
CODE_MAP_QUERY = "security error handling input validation subprocess auth tests"
EXCLUDE = ("docs/TASKS.md", "automations/*")


def code_map(root: Path) -> str:
    """The repository map the implementer gets, ranked for research (files and their top-level symbols)."""
    return build_repo_map(root, query=CODE_MAP_QUERY, token_budget=CODE_MAP_TOKENS, exclude=EXCLUDE).text


def research_agent(root: Path, settings: Settings, backend: AgentBackend, run_id: str) -> Research:
    from conveyor.adapters.agents.roles import research  # dspy: loaded only when a model is configured
    from conveyor.adapters.agents.roles.base import RoleCall

    def ask(results: list[ScanResult], previous_loop: str) -> list[ScanFinding]:
        call = RoleCall(
            backend=backend,
            run_id=run_id,
            tier=role_tier(settings, "research"),
            base_commit=GitRepo(root).head_sha(),
            repo_root=root,
        )
        found = [f.model_dump(mode="json") for r in results for f in r.findings]
        outcome = research.run(call, code_summary=code_map(root), scanner_findings=found, previous_loop=previous_loop)
        return [
            ScanFinding(
                scanner="research",
                rule=issue.rule or "research",
                file=issue.file or ".",
                symbol=issue.symbol or MODULE_SYMBOL,
                message=f"{issue.title}. {issue.description} {issue.suggested_fix}".strip(),
                severity=issue.severity,
            )
            for issue in outcome.output.issues
        ]

    return ask
