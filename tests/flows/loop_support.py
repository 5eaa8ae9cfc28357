"""Shared set-up of the execution-loop flow tests: the textkit example, bootstrapped in a scratch repository."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import yaml

from flows.bootstrap import bootstrap
from flows.execution_loop import execution_loop
from tests.conftest import git

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "textkit"
TICKETS = ("TK-FEAT-001", "TK-FEAT-002", "TK-FEAT-003", "TK-DOC-001")


def edit_build_spec(repo: Path, **changes: Any) -> None:
    path = repo / "automations/build-spec.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key].update(value)
        else:
            spec[key] = value
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def edit_script(repo: Path, change: Any) -> None:
    """``change(script_dict)`` edits the scripted backend's script in place."""
    path = repo / "automations/demo-script.yaml"
    script = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(script)
    path.write_text(yaml.safe_dump(script, sort_keys=False), encoding="utf-8")


def textkit(tmp_path: Path, *, sandbox: str = "none", **spec: Any) -> Path:
    """The textkit example in a fresh git repository, bootstrapped (4 tickets), clean on main."""
    repo = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, repo)
    edit_build_spec(repo, agents={"sandbox": sandbox}, **spec)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "textkit skeleton")
    bootstrap(repo=str(repo))
    return repo


def run_loop(repo: Path, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(execution_loop(repo=str(repo), **params))
    return result


def log_subjects(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()
