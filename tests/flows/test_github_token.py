"""The github forge's token from a Prefect Secret block (a real Prefect API: the session's test server)."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret

from blocks.github_token import resolve_github_token
from conveyor.adapters.forges.github_client import GitHubTokenMissingError


def test_the_secret_block_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    Secret(value="ghp_from_block").save("conveyor-gh-token", overwrite=True)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_env")
    assert resolve_github_token("conveyor-gh-token") == "ghp_from_block"


def test_an_unknown_block_falls_back_to_the_environment_or_names_both_places(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_env")
    assert resolve_github_token("no-such-block") == "ghp_from_env"
    monkeypatch.delenv("GITHUB_TOKEN")
    with pytest.raises(GitHubTokenMissingError, match=r"no-such-block.*GITHUB_TOKEN"):
        resolve_github_token("no-such-block")
