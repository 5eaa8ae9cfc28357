"""The README's first command runs the main job offline: scripts/demo (what `make demo` calls) succeeds.

It bootstraps the textkit example from its PRD, runs the execution loop on it with the scripted backend (real git,
a real pytest gate with one real failure then fixed, a review round trip, a local Prefect API whose home is kept in
the demo repository) and releases 0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_bootstraps_and_delivers_the_textkit_example_offline(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)  # the demo's Prefect home is the demo repository's own .conveyor/prefect
    done = subprocess.run(
        [str(ROOT / "scripts/demo")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "agents: scripted" in out
    assert "Tickets completed (4 of 4)" in out
    for ticket in ("TK-FEAT-001", "TK-FEAT-002", "TK-FEAT-003", "TK-DOC-001"):
        assert f"{ticket}: " in out
    assert "chore(orchestrator): Bootstrap tasks.md from docs/PRD.md" in out
    assert "checkpoint" in out
    demo = ROOT / ".demo/textkit"
    assert (demo / ".conveyor/prefect").is_dir()  # kept for `prefect server start`
    feedback = next((demo / "automations/runs").glob("RUN-*/record/feedback/TK-FEAT-002.md")).read_text()
    assert "1 failed" in feedback  # the real failing pytest run the script's first step caused
    assert "(HEAD -> main, tag: v0.0.1) chore(orchestrator): Complete 0.0.1 milestone release" in out
    notes = (demo / "docs/releases/v0.0.1.md").read_text()
    assert notes.startswith("# textkit 0.0.1")  # the scripted release-notes agent's notes
    assert "Retrospective: estimate variance by task type" in notes
    assert "## [0.0.1] - " in (demo / "CHANGELOG.md").read_text()
