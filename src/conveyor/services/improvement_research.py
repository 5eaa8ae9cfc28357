"""The research agent of an improvement loop (seed 002 step 1), when a model is configured.

It reads a map of the code, the scanners' findings and the previous loop's summary, and answers issues worth a
ticket; each becomes a finding of scanner ``research``, fingerprinted like the others so it is filed once.
Whether its issues are worth fixing is a model's judgment: nothing here tests that (it needs a real model).
"""

from __future__ import annotations

import ast
from pathlib import Path

from conveyor.adapters.agents.roles import research
from conveyor.adapters.agents.roles.base import RoleCall
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.scan import MODULE_SYMBOL, ScanFinding, ScanResult
from conveyor.ports import AgentBackend
from conveyor.services.agents import role_tier
from conveyor.services.improvement import Research
from conveyor.settings import Settings

MAX_FILES = 200
_SKIP = (".git", ".venv", ".conveyor", "node_modules", "__pycache__")


def code_map(root: Path) -> str:
    """Each tracked Python file with its top-level classes and functions (the research agent's map)."""
    lines: list[str] = []
    files = [p for p in sorted(root.rglob("*.py")) if not any(part in _SKIP for part in p.relative_to(root).parts)]
    for path in files[:MAX_FILES]:
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            lines.append(f"{rel}: (not parseable)")
            continue
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        lines.append(f"{rel}: {', '.join(names) or '(no top-level definitions)'}")
    if len(files) > MAX_FILES:
        lines.append(f"... and {len(files) - MAX_FILES} more Python files")
    return "\n".join(lines)


def research_agent(root: Path, settings: Settings, backend: AgentBackend, run_id: str) -> Research:
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
