"""The bootstrap flow on a review report, in deterministic mode, against a real Prefect API and real git."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from conveyor.adapters.tasks_md import read_tasks_file
from conveyor.domain.errors import ConveyorError, InputError
from flows.bootstrap import bootstrap
from tests.conftest import git

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"

# (id, finding, phase, kind, depends_on) — the backlog of q1-review: 22 findings in tables, bullets and headings
# across 5 files → 4 phases, each with a documentation ticket and a verification ticket depending on all of it.
P1 = ["CV-SEC-001", "CV-SEC-002", "CV-SEC-003"]
P2 = ["CV-HIGH-001", "CV-TEST-001", "CV-TEST-002", "CV-PERF-001", "CV-SEC-005", "CV-SEC-006", "CV-SEC-007"]
P3 = ["CV-CQ-001", "CV-CQ-002", "CV-CQ-003", "CV-TEST-003", "CV-TEST-004", "CV-PERF-002", "CV-PERF-003", "CV-SEC-008"]
P4 = ["CV-DOC-004", "CV-DOC-005", "CV-CQ-005", "CV-TEST-005"]
EXPECTED = [
    ("CV-SEC-001", "SEC-API-1", 1, "change", []),
    ("CV-SEC-002", "SEC-AUTH-2", 1, "change", []),
    ("CV-SEC-003", "SEC-INFRA-3", 1, "change", []),
    ("CV-DOC-001", None, 1, "docs", P1),
    ("CV-SEC-004", None, 1, "verification", [*P1, "CV-DOC-001"]),
    ("CV-HIGH-001", "CQ-API-1", 2, "change", ["CV-SEC-004"]),
    ("CV-TEST-001", "TEST-001", 2, "change", ["CV-SEC-004"]),
    ("CV-TEST-002", "TEST-002", 2, "change", ["CV-SEC-004"]),
    ("CV-PERF-001", "PERF-DB-1", 2, "change", ["CV-SEC-004"]),
    ("CV-SEC-005", "SEC-WEB-4", 2, "change", ["CV-SEC-004"]),
    ("CV-SEC-006", "SEC-API-5", 2, "change", ["CV-SEC-004"]),
    ("CV-SEC-007", "CQ-API-6", 2, "change", ["CV-SEC-004"]),  # a security finding outside SEC-*: still SEC (§8)
    ("CV-DOC-002", None, 2, "docs", ["CV-SEC-004", *P2]),
    ("CV-HIGH-002", None, 2, "verification", ["CV-SEC-004", *P2, "CV-DOC-002"]),
    ("CV-CQ-001", "CQ-WEB-2", 3, "change", ["CV-HIGH-002"]),
    ("CV-CQ-002", "CQ-WEB-3", 3, "change", ["CV-HIGH-002"]),
    ("CV-CQ-003", "CQ-WEB-5", 3, "change", ["CV-HIGH-002"]),
    ("CV-TEST-003", "TEST-003", 3, "change", ["CV-HIGH-002"]),
    ("CV-TEST-004", "TEST-004", 3, "change", ["CV-HIGH-002"]),
    ("CV-PERF-002", "PERF-WEB-2", 3, "change", ["CV-HIGH-002"]),
    ("CV-PERF-003", "PERF-API-3", 3, "change", ["CV-HIGH-002"]),
    ("CV-SEC-008", "DEP-1", 3, "change", ["CV-HIGH-002"]),
    ("CV-DOC-003", None, 3, "docs", ["CV-HIGH-002", *P3]),
    ("CV-CQ-004", None, 3, "verification", ["CV-HIGH-002", *P3, "CV-DOC-003"]),
    ("CV-DOC-004", "DOC-1", 4, "docs", ["CV-CQ-004"]),
    ("CV-DOC-005", "DOC-2", 4, "docs", ["CV-CQ-004"]),
    ("CV-CQ-005", "CQ-API-4", 4, "change", ["CV-CQ-004"]),
    ("CV-TEST-005", "TEST-005", 4, "change", ["CV-CQ-004"]),
    ("CV-DOC-006", None, 4, "docs", ["CV-CQ-004", *P4]),
    ("CV-TEST-006", None, 4, "verification", ["CV-CQ-004", *P4, "CV-DOC-006"]),
]


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    shutil.copytree(FIXTURES / "q1-review", scratch_repo / "docs/reports/q1-review")
    git(scratch_repo, "add", "-A")
    git(scratch_repo, "commit", "-q", "-m", "review report")
    return scratch_repo


def queue(repo: Path) -> list[dict[str, object]]:
    tickets: list[dict[str, object]] = json.loads((repo / "automations/run-queue.json").read_text())["tickets"]
    return tickets


def tracked_bytes(repo: Path) -> dict[str, bytes]:
    return {p: (repo / p).read_bytes() for p in git(repo, "ls-files").split()}


def test_report_to_the_exact_backlog_files_commit_and_artifacts(repo: Path) -> None:
    result = bootstrap(repo=str(repo), report="q1-review")
    got = [(t["id"], t["finding_id"], t["phase"], t["kind"], t["depends_on"]) for t in queue(repo)]
    assert got == EXPECTED
    assert result["commit"] and result["tickets"] == 30 and not result["fallback"]

    document = read_tasks_file(repo / "docs/TASKS.md")
    rows = document.tickets()
    assert [t.id for t in rows] == [e[0] for e in EXPECTED]
    assert document.status_text("CV-SEC-001") == "not-started"
    assert {t.issue for t in rows if t.id in P2} == {"TASKS:P2"}
    assert rows[0].title == "SQL injection in the search endpoint" and rows[0].finding_id == "SEC-API-1"

    state = json.loads((repo / "automations/run-state.json").read_text())
    assert state["run_id"] == result["run_id"] and len(state["tickets"]) == 30
    assert {t["status"] for t in state["tickets"].values()} == {"pending"}
    assert state["budget"]["cap_source"] == "derived" and state["budget"]["mode"] == "normal"

    prd = (repo / "docs/PRD.md").read_text()
    assert "remediate the findings of q1-review" in prd and "ASSUMPTION:" in prd

    message = git(repo, "log", "-1", "--format=%an%n%B")
    assert message.splitlines()[0] == "Conveyor"
    assert "chore(orchestrator): Bootstrap tasks.md from q1-review" in message
    assert "Parsed 22 findings into 30 tasks across 4 phases." in message and "Estimated total: " in message
    changed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(changed) == [
        "automations/run-queue.json",
        "automations/run-state.json",
        "docs/PRD.md",
        "docs/TASKS.md",
    ]
    assert git(repo, "status", "--porcelain") == ""

    from prefect.client.orchestration import get_client

    async def artifacts() -> dict[str, str]:
        async with get_client() as client:
            found = await client.read_artifacts()
            # Artifact keys are shared by every flow run in the session: keep this run's.
            return {a.key: str(a.data) for a in found if a.key and str(a.flow_run_id) == result["flow_run_id"]}

    keys = asyncio.run(artifacts())
    slug = repo.name
    assert "CV-SEC-001" in keys[f"{slug}-backlog"]
    assert "Bootstrap from `q1-review`" in keys[f"{slug}-bootstrap"]


def test_rerun_with_no_change_writes_and_commits_nothing(repo: Path) -> None:
    bootstrap(repo=str(repo), report="q1-review")
    head, files = git(repo, "rev-parse", "HEAD"), tracked_bytes(repo)
    again = bootstrap(repo=str(repo), report="q1-review")
    assert not again["changed"] and again["commit"] is None
    assert git(repo, "rev-parse", "HEAD") == head and tracked_bytes(repo) == files


def test_rerun_upserts_findings_and_keeps_progress(repo: Path) -> None:
    bootstrap(repo=str(repo), report="q1-review")
    tasks = repo / "docs/TASKS.md"
    text = tasks.read_text()
    text = text.replace("| CV-SEC-001 | not-started |", "| CV-SEC-001 | in-progress |")
    tasks.write_text(text.replace("| CV-SEC-002 | not-started |", "| CV-SEC-002 | done |"))
    git(repo, "commit", "-qam", "work happened")

    report = repo / "docs/reports/q1-review/01-security-review.md"
    body = report.read_text()
    start = body.index("### SEC-INFRA-3")
    end = body.index("## High")
    body = body[:start] + body[end:]  # SEC-INFRA-3 is fixed upstream: gone from the report
    body = body.replace("### SEC-API-1: SQL injection in the search endpoint", "### SEC-API-1: SQL injection in search")
    body = body.replace(
        "## High",
        "### SEC-API-9: Session fixation after login\n\n**Severity:** Critical\n"
        "**File:** api/src/auth/session.ts:10\n\nThe session id survives login.\n\n## High",
        1,
    )
    report.write_text(body)
    summary = repo / "docs/reports/q1-review/00-executive-summary.md"
    summary.write_text(summary.read_text())  # counts unchanged: 3 critical still (one gone, one new)

    result = bootstrap(repo=str(repo), report="q1-review")
    assert result["added"] == ["CV-SEC-009"] and result["obsoleted"] == ["CV-SEC-003"]
    document = read_tasks_file(tasks)
    assert document.status_text("CV-SEC-001") == "in-progress"  # kept, and its title kept while started
    assert document.status_text("CV-SEC-002") == "done"
    assert document.status_text("CV-SEC-003") == "obsolete"  # never deleted
    by_id = {t.id: t for t in document.tickets()}
    assert by_id["CV-SEC-001"].title == "SQL injection in the search endpoint"
    assert by_id["CV-SEC-009"].finding_id == "SEC-API-9"
    assert git(repo, "log", "-1", "--format=%s").strip() == "chore(orchestrator): Bootstrap tasks.md from q1-review"


def test_summary_counts_that_disagree_stop_bootstrap(scratch_repo: Path) -> None:
    shutil.copytree(FIXTURES / "count-mismatch", scratch_repo / "docs/reports/mismatch")
    head = git(scratch_repo, "rev-parse", "HEAD")
    with pytest.raises(InputError) as info:
        bootstrap(repo=str(scratch_repo), report="mismatch")
    assert "docs/reports/mismatch/00-executive-summary.md" in str(info.value) and "disagree" in str(info.value)
    assert not (scratch_repo / "docs/TASKS.md").exists() and not (scratch_repo / "docs/PRD.md").exists()
    assert git(scratch_repo, "rev-parse", "HEAD") == head


def test_a_budget_cap_cuts_the_lowest_severity_phases(repo: Path) -> None:
    (repo / "automations").mkdir(exist_ok=True)
    (repo / "automations/build-spec.yaml").write_text("budget:\n  cap_usd: 1.5\n")
    result = bootstrap(repo=str(repo), report="q1-review")
    document = read_tasks_file(repo / "docs/TASKS.md")
    statuses = {t.id: document.status_text(t.id) for t in document.tickets()}
    assert result["cut"] and all(statuses[tid] == "deferred" for tid in result["cut"])
    assert statuses["CV-TEST-006"] == "deferred" and statuses["CV-SEC-001"] == "not-started"
    assert "Scope cut" in result["summary"]


def test_a_cap_too_small_even_for_phase_one_stops(repo: Path) -> None:
    (repo / "automations").mkdir(exist_ok=True)
    (repo / "automations/build-spec.yaml").write_text("budget:\n  cap_usd: 0.05\n")
    with pytest.raises(ConveyorError, match="over the cap"):
        bootstrap(repo=str(repo), report="q1-review")
    assert not (repo / "docs/TASKS.md").exists()


def test_recovery_from_an_archived_backlog(repo: Path) -> None:
    bootstrap(repo=str(repo), report="q1-review")
    archive = repo / "docs/tasks/0.0.1-tasks.md"
    archive.parent.mkdir(parents=True, exist_ok=True)
    (repo / "docs/TASKS.md").rename(archive)
    with pytest.raises(ConveyorError, match="--resume-archive"):
        bootstrap(repo=str(repo), report="q1-review")
    result = bootstrap(repo=str(repo), report="q1-review", archive="resume")
    assert (repo / "docs/TASKS.md").exists() and "recovery: resumed from docs/tasks/0.0.1-tasks.md" in result["summary"]


def test_malformed_report_exits_2_naming_file_and_line(scratch_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conveyor.cli.app import main

    shutil.copytree(FIXTURES / "malformed", scratch_repo / "docs/reports/bad")
    code = main(["bootstrap", "--repo", str(scratch_repo), "--report", "bad"])
    err = capsys.readouterr().err
    assert code == 2 and "docs/reports/bad/" in err and ".md:" in err
    assert not (scratch_repo / "docs/TASKS.md").exists()


def test_learnings_correct_the_estimates_of_their_task_type(repo: Path) -> None:
    bootstrap(repo=str(repo), report="q1-review")
    before = {t["id"]: t["estimate_tokens"] for t in queue(repo)}
    learnings = repo / "docs/tasks/orchestrator-learnings.json"
    learnings.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "task_id": "OLD-SEC-001",
        "task_type": "SECURITY_FIX",
        "estimate_k": 30,
        "actual_k": 60,
        "variance_pct": 100,
        "captured_at": "2026-01-01T00:00:00Z",
    }
    learnings.write_text(json.dumps([record]))
    (repo / "docs/TASKS.md").unlink()
    (repo / "automations/run-queue.json").unlink()
    bootstrap(repo=str(repo), report="q1-review", archive="fresh")
    after = {t["id"]: t["estimate_tokens"] for t in queue(repo)}
    assert after["CV-SEC-001"] == 2 * int(str(before["CV-SEC-001"]))  # security fixes took twice their estimate
    assert after["CV-HIGH-001"] == before["CV-HIGH-001"]  # other task types are unchanged


def test_resuming_an_archive_without_run_queue_adds_no_duplicate_phase_tickets(repo: Path) -> None:
    bootstrap(repo=str(repo), report="q1-review")
    archive = repo / "docs/tasks/0.0.1-tasks.md"
    archive.parent.mkdir(parents=True, exist_ok=True)
    (repo / "docs/TASKS.md").rename(archive)
    (repo / "automations/run-queue.json").unlink()  # an archive holds only the table
    result = bootstrap(repo=str(repo), report="q1-review", archive="resume")
    assert result["added"] == [] and result["obsoleted"] == []
    assert [t.id for t in read_tasks_file(repo / "docs/TASKS.md").tickets()] == [e[0] for e in EXPECTED]


def test_a_failed_resume_leaves_no_copy_of_the_archive(repo: Path) -> None:
    bootstrap(repo=str(repo), report="q1-review")
    archive = repo / "docs/tasks/0.0.1-tasks.md"
    archive.parent.mkdir(parents=True, exist_ok=True)
    (repo / "docs/TASKS.md").rename(archive)
    with pytest.raises(InputError):
        bootstrap(repo=str(repo), report="no-such-report", archive="resume")
    assert not (repo / "docs/TASKS.md").exists() and archive.exists()
