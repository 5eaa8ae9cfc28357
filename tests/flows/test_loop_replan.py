"""Declining rewards re-plan the remaining tickets (issue 5 §4): a chain of six tickets, one worker, the
scripted backend. Each of the first four costs more against its estimate than the one before, so the reward
falls three completions in a row; the planner is then asked to re-plan the two remaining tickets, keeps one
(re-titled, re-estimated), drops the other and adds a new one, and the run delivers the new backlog.
With ``on_decline: halt`` the same story stops the run after the fourth ticket instead.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml

from conveyor.services.backlog_loader import load_backlog
from flows.bootstrap import bootstrap
from tests.conftest import git
from tests.flows.loop_support import EXAMPLE, run_loop

GATE = ["python", "-c", "print('gate ok')"]
# Input tokens per implementer call: 18K cost about the USD estimate of 10K tokens (a blend of input and output
# prices), so the first four overrun it more and more (x0.5, x1.2, x1.5, x1.8) and their rewards fall.
SPEND = {1: 9_000, 2: 21_600, 3: 27_000, 4: 32_400, 5: 1_000, 7: 1_000}


def _planned(n: int, *, title: str | None = None, deps: list[str] | None = None) -> dict[str, Any]:
    return {
        "id_hint": f"TK-FEAT-{n:03d}",
        "title": title or f"Add step {n}",
        "description": f"Create src/step{n}.txt.",
        "acceptance_criteria": [f"src/step{n}.txt exists"],
        "depends_on": deps if deps is not None else ([f"TK-FEAT-{n - 1:03d}"] if n > 1 else []),
        "complexity": 3,
        "touch_set": [f"src/step{n}.txt"],
        "task_type": "FEATURE_ADD",
        "estimate_tokens": 10_000,
    }


def _implementer(n: int) -> dict[str, Any]:
    step = {
        "usage": {"input_tokens": SPEND[n], "output_tokens": 0},
        "write": {"path": f"src/step{n}.txt", "content": f"step {n}\n"},
    }
    return {"role": "implementer", "ticket": f"TK-FEAT-{n:03d}", "stage": "implementing", "steps": [step]}


def _script() -> dict[str, Any]:
    replanned = [
        {**_planned(5, title="Add step 5, smaller", deps=[]), "estimate_tokens": 6_000},
        _planned(7, title="Add step 7 instead of step 6", deps=["TK-FEAT-005"]),
    ]
    replanned[1]["id_hint"] = "NEW-7"
    docs = {  # bootstrap added the documentation ticket; the brief lists it, and the planner keeps it
        **_planned(0, deps=["TK-FEAT-005", "NEW-7"]),
        "id_hint": "TK-DOC-001",
        "title": "Documentation: update the docs for the planned changes",
        "task_type": "DOCS",
        "touch_set": ["docs/steps.md"],
    }
    return {
        "version": 1,
        "entries": [
            {
                "role": "planner",
                "stage": "bootstrap",
                "steps": [{"output": {"tickets": [_planned(n) for n in range(1, 7)]}}],
            },
            {
                "role": "planner",
                "stage": "replanning",
                "steps": [
                    {"usage": {"input_tokens": 500, "output_tokens": 200}, "output": {"tickets": [*replanned, docs]}}
                ],
            },
            {
                "role": "reviewer",
                "stage": "reviewing",
                "repeat_last": True,
                "steps": [{"output": {"decision": "approve"}}],
            },
            {
                "role": "knowledge-steward",
                "stage": "documenting",
                "repeat_last": True,
                "steps": [{"output": {"updates": [], "checklist_complete": True, "waiver": "no user-facing change"}}],
            },
            *[_implementer(n) for n in (1, 2, 3, 4, 5, 7)],
            {
                "role": "implementer",
                "ticket": "TK-DOC-001",
                "steps": [{"write": {"path": "docs/steps.md", "content": "# Steps\n"}}],
            },
        ],
    }


def _chain(tmp_path: Path, on_decline: str) -> Path:
    repo = tmp_path / "chain"
    (repo / "docs").mkdir(parents=True)
    (repo / "automations").mkdir()
    (repo / "src").mkdir()
    (repo / "src/.keep").write_text("")
    (repo / "docs/PRD.md").write_text("# Chain\n\n## Requirements\n\n- Six steps, one after the other.\n")
    (repo / ".gitignore").write_text((EXAMPLE / ".gitignore").read_text())
    spec = {
        "project": "chain",
        "task_prefix": "TK",
        "workers": 1,
        "on_decline": on_decline,
        "budget": {"cap_usd": 50.0},
        "quality_gates": [{"name": "ok", "argv": GATE, "timeout_s": 60}],
        "agents": {"backend": "scripted", "script": "automations/script.yaml", "sandbox": "none"},
    }
    (repo / "automations/build-spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (repo / "automations/script.yaml").write_text(yaml.safe_dump(_script(), sort_keys=False))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "chain skeleton")
    bootstrap(repo=str(repo))
    return repo


def _rewards(repo: Path, ids: list[str]) -> list[float]:
    backlog = load_backlog(repo).backlog
    return [backlog[tid].reward["total"] for tid in ids]


def test_declining_rewards_replan_the_remaining_tickets(tmp_path: Path) -> None:
    repo = _chain(tmp_path, "replan")
    result = run_loop(repo)

    first = ["TK-FEAT-001", "TK-FEAT-002", "TK-FEAT-003", "TK-FEAT-004"]
    totals = _rewards(repo, first)
    assert all(later < earlier for earlier, later in itertools.pairwise(totals)), totals
    assert result["stopped"] == ""
    backlog = load_backlog(repo).backlog
    kept = backlog["TK-FEAT-005"]
    assert kept.title == "Add step 5, smaller"  # the planner's revision of a ticket it kept
    assert kept.estimate_tokens is not None and kept.estimate_tokens < 10_000
    assert kept.depends_on == ("TK-FEAT-004",)  # its dependency on a finished ticket is kept
    dropped = backlog["TK-FEAT-006"]
    assert dropped.state.value == "obsolete"
    assert "dropped by the re-plan" in dropped.notes
    added = backlog["TK-FEAT-007"]  # a fresh id after the highest existing one
    assert added.title == "Add step 7 instead of step 6"
    assert added.depends_on == ("TK-FEAT-005",)
    assert {"TK-FEAT-005", "TK-FEAT-007"} <= set(backlog["TK-DOC-001"].depends_on)
    assert "TK-FEAT-006" not in backlog["TK-DOC-001"].depends_on
    assert sorted(result["done"]) == ["TK-DOC-001", *first, "TK-FEAT-005", "TK-FEAT-007"]
    assert (repo / "src/step7.txt").read_text() == "step 7\n"
    assert not (repo / "src/step6.txt").exists()
    assert (
        "re-plan, planner: updated TK-FEAT-005, TK-DOC-001; added TK-FEAT-007; dropped TK-FEAT-006" in result["report"]
    )
    tasks = (repo / "docs/TASKS.md").read_text()
    assert "TK-FEAT-007" in tasks and "Add step 5, smaller" in tasks


def test_on_decline_halt_stops_after_the_third_decline(tmp_path: Path) -> None:
    repo = _chain(tmp_path, "halt")
    result = run_loop(repo)

    assert result["stopped"] == "rewards declined three completions in a row (on_decline: halt)"
    assert result["done"] == ["TK-FEAT-001", "TK-FEAT-002", "TK-FEAT-003", "TK-FEAT-004"]
    backlog = load_backlog(repo).backlog
    assert backlog["TK-FEAT-005"].title == "Add step 5"  # nothing re-planned
    assert backlog["TK-FEAT-006"].state.value == "queued"
