"""Which forge a repository's settings give, and which GitHub repository the github forge names."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.adapters.forges.github import GitHubForge
from conveyor.adapters.forges.local import LocalForge
from conveyor.domain.build_spec import GitHubSpec
from conveyor.domain.errors import ConveyorError
from conveyor.services.forges import github_repository, make_forge
from conveyor.settings import Settings
from tests.conftest import git


def _settings(**github: str) -> Settings:
    return Settings(forge="github", github=GitHubSpec(**github))


@pytest.mark.parametrize(
    "url",
    ["https://github.com/acme/widgets.git", "git@github.com:acme/widgets.git", "https://ghe.example.com/acme/widgets"],
)
def test_owner_and_name_come_from_the_remote_url(scratch_repo: Path, url: str) -> None:
    git(scratch_repo, "remote", "add", "origin", url)
    assert github_repository(scratch_repo, _settings()) == ("acme", "widgets")


def test_the_build_spec_names_win_over_the_remote(scratch_repo: Path) -> None:
    git(scratch_repo, "remote", "add", "origin", "https://github.com/acme/widgets.git")
    assert github_repository(scratch_repo, _settings(owner="corp", name="gizmo")) == ("corp", "gizmo")


def test_no_remote_and_no_names_says_what_to_set(scratch_repo: Path) -> None:
    with pytest.raises(ConveyorError, match=r"set github\.owner and github\.name"):
        github_repository(scratch_repo, _settings())


def test_the_settings_choose_the_forge(scratch_repo: Path) -> None:
    assert isinstance(make_forge(scratch_repo, Settings()), LocalForge)
    forge = make_forge(scratch_repo, _settings(owner="acme", name="widgets"), token="t")
    assert isinstance(forge, GitHubForge) and forge.label == "conveyor"
    forge.close()
