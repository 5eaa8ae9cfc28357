"""Names of a milestone release's files and commits (seed 001 Milestone Completion Protocol, steps 3, 6, 7).

- Archives: docs/TASKS.md moves to ``docs/tasks/<slug>-tasks.md`` and docs/tasks/orchestrator-learnings.json to
  ``docs/tasks/<slug>-learnings.json``.
- Slug of a milestone name: accents dropped (NFKD, ASCII only); every run of characters other than letters,
  digits, ``.``, ``_`` and ``-`` becomes one ``-``; runs of ``-`` collapse; leading and trailing ``-``, ``.``
  and ``_`` go; at most 80 characters. Case is kept, as in seed 001's ``M6-AgentOrchestration-Fixes-tasks.md``.
  A name with nothing left, or whose slug is ``orchestrator`` (its learnings archive would be the live
  learnings file), is refused with :class:`ArchiveNameError`.
- Whether an archive path already exists, and with what content, is the caller's check: this module only
  names things.
- Release notes: ``docs/releases/v<version>.md``. Tag ``v<version>``, annotated with
  ``Release v<version> - <milestone>``. The release commit: ``chore(orchestrator): Complete <milestone>
  milestone release`` with a body naming the tag, the notes and the archive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from conveyor.domain.errors import ConveyorError

TASKS_PATH = "docs/TASKS.md"
LEARNINGS_PATH = "docs/tasks/orchestrator-learnings.json"
ARCHIVE_DIR = "docs/tasks"
RELEASES_DIR = "docs/releases"
MAX_SLUG = 80

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DASHES = re.compile(r"-{2,}")


class ArchiveNameError(ConveyorError):
    """A milestone name that gives no usable archive file name."""


@dataclass(frozen=True)
class ArchivePaths:
    tasks: str  # where docs/TASKS.md goes
    learnings: str  # where docs/tasks/orchestrator-learnings.json goes


def _one_line(text: str) -> str:
    return " ".join(text.split())


def milestone_slug(name: str) -> str:
    """The file-name-safe form of a milestone name (rule in the module docstring)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _DASHES.sub("-", _UNSAFE.sub("-", ascii_name)).strip("-._")[:MAX_SLUG].rstrip("-._")
    if not slug:
        raise ArchiveNameError(f"milestone name {name!r} has no letters or digits to name its archive files")
    if slug.lower() == "orchestrator":
        raise ArchiveNameError(
            f"milestone name {name!r} would archive its learnings over the live {LEARNINGS_PATH}; rename the milestone"
        )
    return slug


def archive_paths(milestone_name: str) -> ArchivePaths:
    slug = milestone_slug(milestone_name)
    return ArchivePaths(f"{ARCHIVE_DIR}/{slug}-tasks.md", f"{ARCHIVE_DIR}/{slug}-learnings.json")


def release_notes_path(version: str) -> str:
    return f"{RELEASES_DIR}/v{version.strip().removeprefix('v')}.md"


def tag_message(version: str, milestone_name: str) -> str:
    """The annotated tag's message, as seed 001 writes it."""
    return f"Release v{version.strip().removeprefix('v')} - {_one_line(milestone_name)}"


def release_commit_message(milestone_name: str, version: str) -> str:
    """The commit that records the release notes, the changelog, the PRD marks and the archive."""
    version = version.strip().removeprefix("v")
    return (
        f"chore(orchestrator): Complete {_one_line(milestone_name)} milestone release\n\n"
        f"- Tagged: v{version}\n"
        f"- Release notes: {release_notes_path(version)}\n"
        f"- Artifacts archived to {ARCHIVE_DIR}/\n"
    )
