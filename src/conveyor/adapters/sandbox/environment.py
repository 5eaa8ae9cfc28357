"""The environment a sandboxed command sees: the caller's, minus anything that looks like a secret."""

from __future__ import annotations

from collections.abc import Mapping

# A variable whose NAME contains one of these (case-insensitive) is dropped.
SECRET_NAME_PARTS: tuple[str, ...] = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
# A variable whose NAME starts with one of these (case-insensitive) is dropped.
SECRET_NAME_PREFIXES: tuple[str, ...] = (
    "ANTHROPIC_",
    "CLAUDE_",
    "GITHUB_",
    "GH_",
    "AWS_",
    "OPENAI_",
    "AZURE_",
    "GOOGLE_",
    "HF_",
)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS) or upper.startswith(SECRET_NAME_PREFIXES)


def scrubbed_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` without secret-looking variables (PATH, HOME, LANG and the rest are kept), no .pyc writing."""
    env = {name: value for name, value in base.items() if not is_secret_name(name)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
