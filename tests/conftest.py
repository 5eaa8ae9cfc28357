"""Test environment of ARCHITECTURE.md §7: offline, no telemetry, HOME and caches under a temp dir."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_SANDBOX_HOME = Path(tempfile.mkdtemp(prefix="conveyor-test-home-"))
for key, value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "HOME": str(_SANDBOX_HOME),
    "DSPY_CACHEDIR": str(_SANDBOX_HOME / "dspy"),
    "PREFECT_HOME": str(_SANDBOX_HOME / "prefect"),
    "GIT_CONFIG_NOSYSTEM": "1",
}.items():
    os.environ[key] = value
os.environ.pop("ANTHROPIC_API_KEY", None)
for key in [k for k in os.environ if k.startswith("CONVEYOR_")]:
    del os.environ[key]

settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@localhost",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@localhost",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Iterator[Path]:
    """A real git repository with one commit on main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# scratch\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    yield repo
