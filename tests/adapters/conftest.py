"""Fixtures of the github forge's tests: the fake GitHub, a checkout of its repository, and a test clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_repo import Clock, clone, fake_github


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    with fake_github(tmp_path) as running:
        yield running


@pytest.fixture
def checkout(tmp_path: Path, fake: FakeGitHub) -> Path:
    return clone(fake.remote, tmp_path / "checkout")


@pytest.fixture
def clock() -> Clock:
    return Clock()
