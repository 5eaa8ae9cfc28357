"""The redaction corpus: secrets never reach logs, traces or the replay cache (ARCHITECTURE.md §5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.adapters.agents.redaction import (
    REDACTED,
    Redactor,
    is_sensitive_name,
    redact,
    redact_text,
    secrets_from_environment,
)

ANT = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdef"
OPENAI = "sk-proj-0123456789abcdefABCDEF0123"
GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GHO = "gho_" + "Z" * 36
GHS = "ghs_" + "x9" * 18
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV"
AWS = "AKIAIOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"

# (input, secrets that must be gone, text that must survive)
TEXT_CASES: list[tuple[str, list[str], list[str]]] = [
    (f"using key {ANT} now", [ANT], ["using key", "now"]),
    (f"openai={OPENAI}", [OPENAI], []),
    (f"token {GHP} in text", [GHP], ["in text"]),
    (f"gho {GHO}", [GHO], []),
    (f"ghs:{GHS}.", [GHS], []),
    (f"pat {PAT}", [PAT], []),
    (f"aws id {AWS} here", [AWS], ["here"]),
    (f"Authorization: Bearer {JWT}", [JWT], ["Authorization: Bearer"]),
    ("export ANTHROPIC_API_KEY=plainvalue123 && run", ["plainvalue123"], ["export ANTHROPIC_API_KEY=", "&& run"]),
    ("DB_PASSWORD='hunter2hunter2'", ["hunter2hunter2"], ["DB_PASSWORD="]),
    ('{"client_secret": "abcdef-123456"}', ["abcdef-123456"], ['"client_secret": "']),
    ("github_token: tok_value_xyz\nother: fine", ["tok_value_xyz"], ["other: fine"]),
    ("MY_SECRET = s3cr3t;", ["s3cr3t"], ["MY_SECRET = "]),
    ("url https://api.example/?access_token=abc123def&x=1", ["abc123def"], ["&x=1"]),
    ("max_tokens=8192 and input_tokens: 1200", [], ["max_tokens=8192", "input_tokens: 1200"]),
    ("plain prose without secrets; sk-short stays", [], ["plain prose without secrets; sk-short stays"]),
    (f"twice {ANT} and {ANT}", [ANT], ["twice", "and"]),
]


@pytest.mark.parametrize(("text", "gone", "kept"), TEXT_CASES)
def test_text_corpus(text: str, gone: list[str], kept: list[str]) -> None:
    out = redact_text(text)
    for secret in gone:
        assert secret not in out
    for fragment in kept:
        assert fragment in out
    if gone:
        assert REDACTED in out
    assert redact_text(out) == out  # idempotent


def test_nested_data() -> None:
    data: dict[str, Any] = {
        "inputs": {
            "ticket": "implement login",
            "env": {"ANTHROPIC_API_KEY": "anything-at-all", "PATH": "/usr/bin", "retries": 3},
            "headers": [{"name": "Authorization", "value": f"Bearer {JWT}"}],
            "notes": [f"found {GHP} in config", "nothing here"],
            "password": {"primary": "pw-one", "backup": ["pw-two"], "length": 12},
            "api_key": "",
        },
        "usage": {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 0},
        "replay_key": "0123456789abcdef0123456789abcdef",
        "tuple": ("x", f"aws {AWS}"),
        "count": 5,
        "flag": True,
        "none": None,
    }
    out = redact(data)
    text = json.dumps(out)
    for secret in ("anything-at-all", JWT, GHP, "pw-one", "pw-two", AWS):
        assert secret not in text
    assert out["inputs"]["env"]["ANTHROPIC_API_KEY"] == REDACTED
    assert out["inputs"]["env"]["PATH"] == "/usr/bin"
    assert out["inputs"]["env"]["retries"] == 3
    assert out["inputs"]["password"] == {"primary": REDACTED, "backup": [REDACTED], "length": 12}
    assert out["inputs"]["api_key"] == ""
    assert out["inputs"]["notes"][1] == "nothing here"
    assert out["usage"] == {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 0}
    assert out["replay_key"] == "0123456789abcdef0123456789abcdef"
    assert out["tuple"][0] == "x"
    assert out["count"] == 5 and out["flag"] is True and out["none"] is None
    assert data["inputs"]["env"]["ANTHROPIC_API_KEY"] == "anything-at-all"  # the input is not modified


def test_known_secrets_are_redacted_anywhere() -> None:
    odd = "correct-horse-battery"  # no recognisable shape, no sensitive name around it
    data = {"text": f"the value is {odd}!", "list": [odd], odd: "as a key"}
    out = redact(data, known_secrets=[odd, "", "ab"])
    assert odd not in json.dumps(out)
    assert out["text"] == f"the value is {REDACTED}!"
    assert redact("ab stays: short known secrets are ignored", known_secrets=["ab"]).startswith("ab stays")


def test_secrets_from_environment() -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-from-the-environment",
        "GITHUB_TOKEN": "a-github-token-value",
        "SOME_PASSWORD": "short",  # too short to be worth redacting everywhere
        "HOME": "/home/user",
        "PATH": "/usr/bin:/bin",
    }
    found = secrets_from_environment(env)
    assert found == sorted(["sk-ant-from-the-environment", "a-github-token-value"])
    redactor = Redactor(found)
    assert redactor("token was a-github-token-value.") == f"token was {REDACTED}."


def test_sensitive_names() -> None:
    for name in ("api_key", "ANTHROPIC_API_KEY", "accessToken", "client-secret", "DB_PASSWORD", "passwd"):
        assert is_sensitive_name(name), name
    for name in ("path", "ticket", "replay_key", "notes"):
        assert not is_sensitive_name(name), name
