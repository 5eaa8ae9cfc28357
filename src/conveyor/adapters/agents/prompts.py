"""Role prompts: the packaged default, or the target repository's override.

Each judgment role has one prompt file named after its :class:`~conveyor.domain.agent.AgentRole` value
(``planner``, ``reviewer``, ``qa-triage``, ``release-notes``, ``knowledge-steward``, ``research``):

- the default ships in the package: ``conveyor/prompts/<role>.prompt.md``;
- a target repository overrides it with ``automations/prompts/agents/<role>.prompt.md``, which replaces the
  default as a whole (no merging).

The text becomes the DSPy signature's instructions; it is part of the role's ``prompt_version``, so an
override changes the version recorded on every call (and therefore the replay key).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from conveyor.domain.agent import AgentRole
from conveyor.domain.errors import InputError

OVERRIDE_DIR = Path("automations/prompts/agents")
PACKAGE = "conveyor.prompts"


@dataclass(frozen=True)
class Prompt:
    role: AgentRole
    text: str
    source: str  # "package" or "repository"
    path: str  # the file it came from (repository-relative for an override)


def prompt_filename(role: AgentRole) -> str:
    return f"{role.value}.prompt.md"


def override_path(repo_root: Path, role: AgentRole) -> Path:
    return repo_root / OVERRIDE_DIR / prompt_filename(role)


def default_prompt(role: AgentRole) -> Prompt:
    resource = resources.files(PACKAGE).joinpath(prompt_filename(role))
    if not resource.is_file():
        raise LookupError(f"no packaged prompt for role {role.value!r} ({PACKAGE}/{prompt_filename(role)})")
    return Prompt(role, _normalise(resource.read_text(encoding="utf-8")), "package", f"{PACKAGE}/{resource.name}")


def load_prompt(role: AgentRole, repo_root: Path | None = None) -> Prompt:
    """The repository's override when ``repo_root`` has one, else the packaged default.

    An override that is empty or not UTF-8 is an input error naming the file (never silently ignored).
    """
    if repo_root is not None:
        path = override_path(repo_root, role)
        if path.is_file():
            relative = str(OVERRIDE_DIR / prompt_filename(role))
            try:
                text = _normalise(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError as exc:
                raise InputError.single(relative, None, f"prompt override is not UTF-8 text: {exc.reason}") from None
            if not text.strip():
                raise InputError.single(relative, None, "prompt override is empty; delete it to use the default")
            return Prompt(role, text, "repository", relative)
    return default_prompt(role)


def _normalise(text: str) -> str:
    """Line endings and surrounding whitespace do not change a prompt (nor its version); DSPy strips them too."""
    return text.replace("\r\n", "\n").strip()
