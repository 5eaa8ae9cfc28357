"""The README's first command runs the main job offline: scripts/demo (what `make demo` calls) succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_bootstraps_the_bundled_report_offline(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # the demo's own API, not the test session's
    done = subprocess.run(
        [str(ROOT / "scripts/demo")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deterministic mode" in done.stdout
    assert "Read 22 findings; backlog of 30 tickets." in done.stdout
    assert "chore(orchestrator): Bootstrap tasks.md from q1-review" in done.stdout
    assert "30 tickets" in done.stdout and "Ready (3)" in done.stdout
