"""The improvement loop flow on the lintkit example in deterministic mode (issue 7 §1): scanners find, mechanical
fixers fix through the execution loop (no-LLM review, real QA gates, merge queue), the finding count drops, the
tests stay green, and a second loop files nothing it filed before."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.adapters.issue_queue_file import ISSUE_QUEUE_PATH, load_queue, save_queue
from conveyor.domain.issue_queue import QueueStatus
from conveyor.ports import utcnow
from conveyor.services.backlog_loader import load_backlog
from conveyor.services.improvement import file_tickets, plan_loop, readiness
from conveyor.settings import load_settings
from flows.improvement_loop import improvement_loop
from tests.conftest import git
from tests.flows.loop_support import edit_build_spec, log_subjects

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lintkit"
pytestmark = pytest.mark.slow


def lintkit(tmp_path: Path, **spec: Any) -> Path:
    repo = tmp_path / "lintkit"
    shutil.copytree(EXAMPLE, repo)
    if spec:
        edit_build_spec(repo, **spec)
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "lintkit")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return repo


def improve(repo: Path, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(improvement_loop(repo=str(repo), **params))
    return result


def green(repo: Path) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo, capture_output=True, check=False
    )
    return done.returncode == 0


def test_deterministic_loop_lowers_the_finding_count_with_the_tests_green(tmp_path: Path) -> None:
    repo = lintkit(tmp_path)
    assert green(repo)

    result = improve(repo, loops=2)

    first, second = result["loops"]
    by_scanner = {row["scanner"]: row for row in first["by_scanner"]}
    assert first["before"] == 12 and first["after"] < first["before"]
    assert by_scanner["ruff-format"] == {"scanner": "ruff-format", "before": 1, "after": 0}
    assert by_scanner["ruff"]["after"] < by_scanner["ruff"]["before"]
    # What no mechanical fixer can fix stays (no model in deterministic mode): the type error, the shell call.
    assert by_scanner["mypy"]["after"] == 1 and by_scanner["bandit"]["after"] == 2
    assert set(first["tickets"].values()) <= {"done", "obsolete"} and "done" in first["tickets"].values()
    assert green(repo)
    words = (repo / "src/lintkit/words.py").read_text(encoding="utf-8")
    assert "import sys" not in words and "List[" not in words

    subjects = log_subjects(repo)
    assert subjects[0] == "Improvement loop 2" and "Improvement loop 1" in subjects
    assert "chore(improve): Improvement loop 1: file 5 ticket(s)" in subjects
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "main") == git(tmp_path / "origin.git", "rev-parse", "main")  # pushed

    # The second loop files nothing again: every finding left has a ticket, or no mechanical fixer.
    assert second["tickets"] == {} and second["before"] == first["after"]
    queue = load_queue(repo)
    assert queue.last_loop == 2
    statuses = {e.fingerprint: e.status for e in queue.entries}
    assert statuses["ruff-format:format:src/lintkit/words.py:<module>"] is QueueStatus.FIXED
    assert statuses["bandit:B602:src/lintkit/shell.py:run"] is QueueStatus.OPEN
    summary = (repo / "automations/memory/loop_summary.md").read_text(encoding="utf-8")
    assert "# Improvement loop 2" in summary and "| mypy | 1 | 1 |" in summary
    assert "no mechanical fixer, and no model (deterministic mode)" in summary
    review_notes = " ".join(t.notes for t in load_backlog(repo).backlog if t.state.value == "done")
    assert "no-LLM review (deterministic mode)" in review_notes


def test_a_wont_fix_finding_is_suppressed_and_never_filed(tmp_path: Path) -> None:
    repo = lintkit(tmp_path, improvement={"scanners": ["ruff-format"], "max_tickets_per_loop": 1})
    improve(repo, max_tickets=1)
    # Undo the fix by hand and mark the finding won't-fix: the next loop must not file it again.
    (repo / "src/lintkit/words.py").write_text(
        (EXAMPLE / "src/lintkit/words.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    queue = load_queue(repo)
    fingerprint = "ruff-format:format:src/lintkit/words.py:<module>"
    entry = queue.entry(fingerprint)
    assert entry is not None and entry.status is QueueStatus.FIXED
    edited = queue.model_copy(
        update={
            "entries": tuple(
                e.model_copy(update={"status": QueueStatus.WONT_FIX}) if e.fingerprint == fingerprint else e
                for e in queue.entries
            )
        }
    )
    save_queue(repo, edited)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qam", "person: keep my formatting")

    result = improve(repo)

    assert result["loops"][0]["tickets"] == {}
    queue = load_queue(repo)
    assert queue.is_suppressed(fingerprint) and queue.entry(fingerprint) is None
    assert "marked wont-fix" in (repo / ISSUE_QUEUE_PATH).read_text(encoding="utf-8")


def test_the_loop_waits_for_the_initial_backlog(tmp_path: Path) -> None:
    repo = lintkit(tmp_path)
    tasks = repo / "docs/TASKS.md"
    tasks.parent.mkdir(parents=True, exist_ok=True)
    tasks.write_text(
        "# Tasks\n\n| id | status | description | issue | repo | branch | depends_on | blocks | agent | started_at |"
        " completed_at | estimate | used | notes |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| LK-FEAT-001 | not-started | Add a feature | | | | | | | | | 5K | | |\n",
        encoding="utf-8",
    )
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "a backlog")
    head = git(repo, "rev-parse", "HEAD")

    result = improve(repo)

    assert result["loops"] == []
    assert "initial backlog is not complete" in result["stopped"] and "LK-FEAT-001" in result["stopped"]
    assert git(repo, "rev-parse", "HEAD") == head and not (repo / ISSUE_QUEUE_PATH).exists()


def test_a_malformed_issue_queue_stops_the_loop_before_any_write(tmp_path: Path) -> None:
    repo = lintkit(tmp_path)
    path = repo / ISSUE_QUEUE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    improve_text = (
        "# Improvement issue queue\n\nLast loop: 1\n\n## Findings\n\n"
        "| Fingerprint | Severity | Line | Message | Fix | Status | Ticket | Loops |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| ruff:F401:src/x.py:<module> | low | 3 | unused | yes | maybe | | 1 |\n\n"
        "## Suppressed\n\n| Fingerprint | Reason |\n| --- | --- |\n"
    )
    path.write_text(improve_text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "queue")

    with pytest.raises(
        Exception, match=r"automations/issue_queue.md:9: error: status 'maybe' is not one of open, filed"
    ):
        improve(repo)

    assert path.read_text(encoding="utf-8") == improve_text


FIXED_WORDS = '''"""Word helpers."""


def split_words(text: str) -> list[str]:
    return [w for w in text.split() if w]


def longest(words: list[str]) -> str | None:
    if not words:
        return None
    return max(words, key=len)


def count_words(text: str) -> int:
    return len(split_words(text))
'''

RESEARCH_SCRIPT = {
    "version": 1,
    "description": "improvement loop with the research agent",
    "entries": [
        {
            "role": "research",
            "stage": "improvement",
            "repeat_last": True,
            "steps": [
                {
                    "output": {
                        "issues": [
                            {
                                "rule": "return-type",
                                "title": "count_words returns a str",
                                "file": "src/lintkit/words.py",
                                "symbol": "count_words",
                                "severity": "medium",
                                "description": "It is annotated int.",
                                "suggested_fix": "Return the length itself.",
                            }
                        ]
                    }
                }
            ],
        },
        {
            "role": "implementer",
            "ticket": "LK-CQ-001",
            "stage": "implementing",
            "steps": [{"notes": "return the int", "write": [{"path": "src/lintkit/words.py", "content": FIXED_WORDS}]}],
        },
        {"role": "reviewer", "stage": "reviewing", "repeat_last": True, "steps": [{"output": {"decision": "approve"}}]},
        {
            "role": "knowledge-steward",
            "stage": "documenting",
            "repeat_last": True,
            "steps": [{"output": {"updates": [], "checklist_complete": True, "waiver": "internal fix"}}],
        },
    ],
}


def test_with_a_model_the_research_agent_files_issues_and_reads_the_last_summary(tmp_path: Path) -> None:
    repo = lintkit(
        tmp_path,
        agents={"backend": "scripted", "script": "automations/research-script.yaml", "sandbox": "none"},
        improvement={"scanners": ["ruff-format"]},
    )
    (repo / "automations/research-script.yaml").write_text(yaml.safe_dump(RESEARCH_SCRIPT), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "script")

    first, second = improve(repo, loops=2)["loops"]

    # The research issue (medium) comes before the format finding (low); the implementer's rewrite also
    # formatted the file, so the format ticket finds its finding gone and ends obsolete.
    assert first["tickets"] == {"LK-CQ-001": "done", "LK-CQ-002": "obsolete"}
    assert (repo / "src/lintkit/words.py").read_text(encoding="utf-8") == FIXED_WORDS
    assert green(repo)
    assert second["tickets"] == {}  # the same research issue is not filed twice
    entry = load_queue(repo).entry("research:return-type:src/lintkit/words.py:count_words")
    assert entry is not None and entry.ticket == "LK-CQ-001"
    # Loop 2's research call carried loop 1's summary (seed 002: the loop's memory).
    traces = "".join(p.read_text(encoding="utf-8") for p in (repo / "automations/memory/replay").rglob("*.jsonl"))
    assert "# Improvement loop 1" in traces


def test_no_ticket_is_filed_while_the_open_auto_created_tickets_reach_the_cap(tmp_path: Path) -> None:
    repo = lintkit(tmp_path, improvement={"scanners": ["ruff", "ruff-format"], "max_open_tickets": 2})
    settings = load_settings(repo)

    first = plan_loop(repo, settings, deterministic=True, max_tickets=2, research=None)
    file_tickets(repo, settings, first, utcnow)  # filed, never delivered: both stay open
    second = plan_loop(repo, settings, deterministic=True, max_tickets=5, research=None)

    assert len(first.filed) == 2 and second.filed == []
    assert "no ticket filed: 2 auto-created ticket(s) still open (cap 2)" in second.notes
    assert readiness(repo) is None  # the loops' own open tickets don't make the initial backlog incomplete
    ids = {t.id for t in load_backlog(repo).backlog}
    assert ids == {f.ticket.id for f in first.filed}
