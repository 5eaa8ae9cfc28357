"""Secret redaction for everything an agent call writes to disk (ARCHITECTURE.md §5: secrets never reach logs).

:func:`redact` walks JSON-like data (dicts, lists, tuples, strings; other scalars pass through) and replaces:

- credentials recognised by their shape anywhere in a string: Anthropic keys (``sk-ant-...``), other ``sk-...``
  keys, GitHub tokens (``ghp_``, ``gho_``, ``ghs_``, ``ghu_``, ``ghr_``, ``github_pat_``), ``Bearer <token>``,
  AWS access key ids (``AKIA...``/``ASIA...``);
- the value of a dict key, or of a ``NAME=value`` / ``NAME: value`` assignment inside a string, whose name
  contains KEY, TOKEN, SECRET or PASSWORD (case-insensitive). Numbers and booleans under such names are kept
  (``max_tokens: 8192``, usage counts are not secrets); strings, and every string nested below such a key,
  become ``[REDACTED]``;
- every literal secret value passed in ``known_secrets`` (e.g. the value of ANTHROPIC_API_KEY, collected with
  :func:`secrets_from_environment`), wherever it appears.

Over-redaction is accepted (a prose ``key: word`` loses its word); a leak is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
SENSITIVE_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD")
# Names Conveyor itself writes whose string values are not secrets (a replay key is a hash of the call).
NOT_SECRET_NAMES = frozenset({"replay_key"})
MIN_KNOWN_SECRET_LENGTH = 6  # shorter "secrets" (e.g. "1", "true") would redact half of every log
MIN_ENV_SECRET_LENGTH = 8

_SENSITIVE_NAME = re.compile("|".join(SENSITIVE_WORDS), re.IGNORECASE)

# Credentials recognised by shape; the replacement keeps a recognisable prefix where that helps debugging.
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{16,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"), REDACTED),
    (re.compile(r"\b(Bearer)(\s+)[A-Za-z0-9._~+/=\-]{4,}", re.IGNORECASE), rf"\1\2{REDACTED}"),
)

# NAME=value, NAME: value, "NAME": "value", NAME = 'value' where NAME contains a sensitive word.
_ASSIGNMENT = re.compile(
    r"""
    (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*(?:key|token|secret|passw(?:or)?d)[A-Za-z0-9_.\-]*)
    (?P<close>["']?)
    (?P<sep>[ \t]*[:=][ \t]*)
    (?P<open>["']?)
    (?P<value>\[REDACTED\]|[^\s"',;&}\]\)]+)
    """,
    re.IGNORECASE | re.VERBOSE,
)


def is_sensitive_name(name: str) -> bool:
    """True when a variable or field called ``name`` holds a secret by its name."""
    return name.lower() not in NOT_SECRET_NAMES and _SENSITIVE_NAME.search(name) is not None


def _assignment(match: re.Match[str]) -> str:
    value = match.group("value")
    if value == REDACTED or value.isdigit() or value.lower() in {"true", "false", "null", "none"}:
        return match.group(0)
    if not is_sensitive_name(match.group("name")):
        return match.group(0)
    return f"{match.group('name')}{match.group('close')}{match.group('sep')}{match.group('open')}{REDACTED}"


def _compile_known(known_secrets: Iterable[str]) -> re.Pattern[str] | None:
    values = sorted(
        {s for s in known_secrets if isinstance(s, str) and len(s) >= MIN_KNOWN_SECRET_LENGTH}, key=len, reverse=True
    )
    return re.compile("|".join(re.escape(v) for v in values)) if values else None


class Redactor:
    """:func:`redact` with a fixed set of known secrets, compiled once."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self._known = _compile_known(known_secrets)

    def text(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return _ASSIGNMENT.sub(_assignment, text)

    def __call__(self, value: Any) -> Any:
        return self._walk(value, sensitive=False)

    def _walk(self, value: Any, *, sensitive: bool) -> Any:
        if isinstance(value, str):
            return REDACTED if sensitive and value else self.text(value)
        if isinstance(value, Mapping):
            return {
                (self.text(k) if isinstance(k, str) else k): self._walk(
                    v, sensitive=sensitive or (isinstance(k, str) and is_sensitive_name(k))
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._walk(v, sensitive=sensitive) for v in value]
        return value


def redact(value: Any, known_secrets: Iterable[str] = ()) -> Any:
    """A redacted copy of ``value`` (JSON-like data or a string); see the module docstring for the rules."""
    return Redactor(known_secrets)(value)


def redact_text(text: str, known_secrets: Iterable[str] = ()) -> str:
    return Redactor(known_secrets).text(text)


def secrets_from_environment(env: Mapping[str, str]) -> list[str]:
    """The values of environment variables named like secrets (``*KEY*``, ``*TOKEN*``...), long enough to matter."""
    return sorted(
        {value for name, value in env.items() if is_sensitive_name(name) and len(value) >= MIN_ENV_SECRET_LENGTH}
    )
