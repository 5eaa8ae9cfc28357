"""``conveyor init``: lay out Conveyor's files in a target repository without overwriting anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conveyor.adapters.atomic import write_text
from conveyor.adapters.build_spec_file import BUILD_SPEC_PATH, scaffold_build_spec
from conveyor.adapters.tasks_md import new_tasks_document

TASKS_PATH = "docs/TASKS.md"
KEEP_DIRS = (
    "docs/reports/deferred",
    "docs/tasks",
    "docs/releases",
    "docs/scratchpads",
    "automations/gates",
    "automations/workflows",
    "automations/memory",
)
# Paths Conveyor writes that never belong in git (ARCHITECTURE.md §2).
GITIGNORE_ENTRIES = (
    ".conveyor/",
    "automations/runs/*/logs/",
    "automations/logs/",
    "automations/memory/replay/",
    "docs/reports/qa-automation/",
)


@dataclass
class InitReport:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already there: left untouched
    gitignore_added: list[str] = field(default_factory=list)


def _create(repo: Path, relative: str, text: str, report: InitReport) -> None:
    path = repo / relative
    if path.exists():
        report.kept.append(relative)
        return
    write_text(path, text)
    report.created.append(relative)


def init_repository(repo: Path) -> InitReport:
    """Create the build-spec, an empty backlog, docs/ folders and .gitignore entries; keep what exists."""
    report = InitReport()
    _create(repo, BUILD_SPEC_PATH, scaffold_build_spec(repo.resolve().name), report)
    _create(repo, TASKS_PATH, new_tasks_document().render(), report)
    for folder in KEEP_DIRS:
        path = repo / folder
        if any(path.iterdir()) if path.is_dir() else False:
            report.kept.append(folder + "/")
            continue
        _create(repo, f"{folder}/.gitkeep", "", report)
    gitignore = repo / ".gitignore"
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    present = {line.strip() for line in existing.splitlines()}
    missing = [entry for entry in GITIGNORE_ENTRIES if entry not in present]
    if missing:
        # Appending keeps every line the user wrote; only Conveyor's own entries are added.
        prefix = existing if not existing or existing.endswith("\n") else existing + "\n"
        block = "\n# Conveyor: local state, logs and transcripts\n" + "\n".join(missing) + "\n"
        write_text(gitignore, prefix + block)
        report.gitignore_added = missing
    return report
