"""The milestone release flow (issue 6): a finished milestone on a repository with a bare remote is released —
tag pushed, notes, changelog, PRD marks, archive, commit — and every refusal stops with nothing written.

The milestone is built the way the execution loop leaves it: squash commits on main carrying the
``Conveyor-Ticket`` trailer, the tickets done in TASKS.md and run-queue.json, a deferred ticket documented in
docs/reports/deferred/deferred-errors.md. Git, the gates and the Prefect API are real.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from conveyor.adapters.state_files import run_queue_path, save_run_queue
from conveyor.adapters.tasks_md import new_tasks_document, write_tasks_file
from conveyor.domain.errors import ConveyorError
from conveyor.domain.run_state import RunQueue
from conveyor.domain.ticket import State, TaskType, Ticket
from conveyor.services.backlog_loader import load_backlog
from flows import milestone_release as release_module
from flows.milestone_release import milestone_release
from tasks.events import PrefectEvents
from tests.conftest import git
from tests.flows.test_loop_escalation import Answerer

PRD = """# Greeter

## Requirements

- [ ] Add a greet function that says hello
- [ ] Add the greeter command line
- [ ] Translate the greeting
"""
OK_GATE = ["python", "-c", "print('gates green')"]
RED_GATE = ["python", "-c", "raise SystemExit('red gate')"]
WAIVER = "Docs: waived (the command prints its own --help)"


def _ticket(n: int, title: str, state: State, **extra: Any) -> Ticket:
    fields: dict[str, Any] = {
        "id": f"GR-FEAT-{n:03d}",
        "title": title,
        "acceptance_criteria": (f"{title} works",),
        "task_type": TaskType.FEATURE_ADD,
        "estimate_tokens": 10_000,
        "used_tokens": 16_000 if state is State.DONE else None,
        "state": state,
        "branch": f"conveyor/gr-feat-{n:03d}",
    }
    return Ticket(**(fields | extra))


def _squash(repo: Path, ticket_id: str, title: str, files: dict[str, str]) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    message = f"{ticket_id}: {title}\n\nConveyor-Ticket: {ticket_id}\nConveyor-Run: RUN-20261122-0300\n"
    git(repo, "-c", "user.name=Conveyor", "-c", "user.email=conveyor@localhost", "commit", "-qm", message)


def _write_backlog(repo: Path, tickets: list[Ticket]) -> None:
    write_tasks_file(repo / "docs/TASKS.md", new_tasks_document().sync(tickets))
    save_run_queue(run_queue_path(repo), RunQueue.of(tickets, "GR", "0.0.1"))


def greeter(
    tmp_path: Path,
    *,
    cli_notes: str = WAIVER,
    open_ticket: bool = False,
    gate: list[str] = OK_GATE,
    spec: dict[str, Any] | None = None,
) -> Path:
    """A finished milestone: two tickets merged (one documented, one waived), one deferred; a bare remote."""
    repo = tmp_path / "greeter"
    (repo / "docs").mkdir(parents=True)
    (repo / "automations").mkdir()
    (repo / "docs/PRD.md").write_text(PRD)
    (repo / ".gitignore").write_text(".conveyor/\nautomations/runs/*/logs/\nautomations/logs/\n")
    build_spec = {
        "project": "greeter",
        "task_prefix": "GR",
        "milestone": {"name": "0.0.1", "version": "0.0.1"},
        "quality_gates": [{"name": "gates", "argv": gate, "timeout_s": 60}],
        "agents": {"backend": "deterministic", "sandbox": "none"},
        **(spec or {}),
    }
    (repo / "automations/build-spec.yaml").write_text(yaml.safe_dump(build_spec, sort_keys=False))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "greeter skeleton")
    _squash(
        repo,
        "GR-FEAT-001",
        "Add a greet function that says hello",
        {"src/greeter/core.py": "def greet(name):\n    return f'hello {name}'\n", "docs/api.md": "# greet(name)\n"},
    )
    _squash(
        repo,
        "GR-FEAT-002",
        "Add the greeter command line",
        {"src/greeter/cli.py": "import argparse\n\np = argparse.ArgumentParser()\np.add_argument('name')\n"},
    )
    tickets = [
        _ticket(1, "Add a greet function that says hello", State.DONE),
        _ticket(2, "Add the greeter command line", State.DONE, notes=cli_notes, depends_on=("GR-FEAT-001",)),
        _ticket(3, "Translate the greeting", State.QUEUED if open_ticket else State.DEFERRED),
    ]
    _write_backlog(repo, tickets)
    deferred = repo / "docs/reports/deferred/deferred-errors.md"
    deferred.parent.mkdir(parents=True)
    deferred.write_text(
        "# Deferred tickets\n\n## GR-FEAT-003: Translate the greeting\n\n- **State:** deferred\n"
        "- **Category:** budget\n- **Reason:** over the ticket cap\n- **Suggested approach:** split it\n"
    )
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "chore(orchestrator): checkpoint")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return repo


def release(repo: Path, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(milestone_release(repo=str(repo), **params))
    return result


def _release_refused(repo: Path, **params: Any) -> str:
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(ConveyorError) as refused:
        release(repo, **params)
    assert git(repo, "rev-parse", "HEAD").strip() == head  # nothing committed
    assert git(repo, "status", "--porcelain", "--untracked-files=all").strip() == ""  # nothing written
    assert git(repo, "tag", "--list").strip() == ""
    return str(refused.value)


def test_a_finished_milestone_is_released_tagged_and_pushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = greeter(tmp_path)
    tasks_before = (repo / "docs/TASKS.md").read_text()
    emitted: list[tuple[str, dict[str, Any]]] = []

    class Recording(PrefectEvents):
        def emit(self, event: str, *, resource: dict[str, str], payload: dict[str, Any]) -> None:
            super().emit(event, resource=resource, payload=payload)
            emitted.append((event, payload))

    monkeypatch.setattr(release_module, "PrefectEvents", Recording)
    result = release(repo)
    assert emitted == [
        ("conveyor.milestone.released", {"version": "0.0.1", "commit": result["commit"], "pushed": True})
    ]

    assert result["tag"] == "v0.0.1" and result["pushed"] is True
    assert git(repo, "cat-file", "-t", "v0.0.1").strip() == "tag"  # annotated
    assert git(repo, "tag", "-l", "--format=%(contents:subject)", "v0.0.1").strip() == "Release v0.0.1 - 0.0.1"
    remote = tmp_path / "remote.git"
    assert git(remote, "rev-parse", "v0.0.1^{commit}").strip() == result["commit"]
    assert git(remote, "rev-parse", "main").strip() == result["commit"]
    subject = git(repo, "log", "-1", "--format=%s").strip()
    assert subject == "chore(orchestrator): Complete 0.0.1 milestone release"

    notes = (repo / "docs/releases/v0.0.1.md").read_text()
    assert "GR-FEAT-001" in notes and "GR-FEAT-002" in notes
    assert "over the ticket cap" in notes  # the deferred ticket with its reason
    assert "Retrospective: estimate variance by task type" in notes and "FEATURE_ADD" in notes
    assert result["notes_by"].startswith("deterministic fallback")
    changelog = (repo / "CHANGELOG.md").read_text()
    assert "## [0.0.1] - " in changelog and "### Added" in changelog
    assert "- Add the greeter command line (GR-FEAT-002)" in changelog
    prd = (repo / "docs/PRD.md").read_text()
    assert "- [x] Add a greet function that says hello" in prd
    assert "- [ ] Translate the greeting" in prd  # deferred: not delivered
    assert "<!-- conveyor:delivered:start -->" in prd
    assert (repo / "docs/tasks/0.0.1-tasks.md").read_text() == tasks_before
    assert list(load_backlog(repo).backlog) == []  # a fresh backlog for the next milestone
    assert git(repo, "status", "--porcelain").strip() == ""

    async def artifacts() -> dict[str, str]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["greeter-release-report", "greeter-release"])
                )
            )
        return {str(a.key): str(a.data) for a in found}

    published = asyncio.run(artifacts())
    assert "v0.0.1" in published["greeter-release-report"]
    assert "docs/releases/v0.0.1.md" in published["greeter-release"]  # the link (Prefect renders it as markdown)


def test_release_notes_come_from_the_release_notes_agent_when_one_runs(tmp_path: Path) -> None:
    script = {
        "version": 1,
        "entries": [
            {
                "role": "release-notes",
                "steps": [
                    {
                        "output": {
                            "title": "Greeter 0.0.1",
                            "summary": "The first greeter: a greet function and its command line.",
                            "changes": ["GR-FEAT-001 greet", "GR-FEAT-002 command line"],
                        }
                    }
                ],
            }
        ],
    }
    repo = greeter(
        tmp_path, spec={"agents": {"backend": "scripted", "script": "automations/script.yaml", "sandbox": "none"}}
    )
    (repo / "automations/script.yaml").write_text(yaml.safe_dump(script))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "script")
    result = release(repo)
    notes = (repo / "docs/releases/v0.0.1.md").read_text()
    assert notes.startswith("# Greeter 0.0.1")
    assert "Retrospective: estimate variance by task type" in notes  # appended to the agent's notes
    assert result["notes_by"] == "release-notes agent (scripted)"


def test_a_second_release_is_the_next_patch_and_lists_only_new_commits(tmp_path: Path) -> None:
    repo = greeter(tmp_path, spec={"milestone": {"name": "first", "version": "0.0.1"}})
    release(repo)
    _squash(repo, "GR-FEAT-004", "Add a farewell", {"src/greeter/bye.py": "X = 1\n"})
    _write_backlog(repo, [_ticket(4, "Add a farewell", State.DONE)])
    spec = yaml.safe_load((repo / "automations/build-spec.yaml").read_text())
    spec["milestone"]["name"] = "second"
    (repo / "automations/build-spec.yaml").write_text(yaml.safe_dump(spec))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "second milestone done")
    result = release(repo)
    assert result["tag"] == "v0.0.2"  # build-spec says 0.0.1, already released: the next patch
    notes = (repo / "docs/releases/v0.0.2.md").read_text()
    assert "GR-FEAT-004" in notes and "GR-FEAT-001" not in notes
    changelog = (repo / "CHANGELOG.md").read_text()
    assert changelog.index("## [0.0.2]") < changelog.index("## [0.0.1]")
    assert (repo / "docs/tasks/first-tasks.md").exists() and (repo / "docs/tasks/second-tasks.md").exists()


def test_open_tickets_stop_the_release(tmp_path: Path) -> None:
    message = _release_refused(greeter(tmp_path, open_ticket=True))
    assert "GR-FEAT-003" in message and "queued" in message


def test_red_gates_on_main_stop_the_release(tmp_path: Path) -> None:
    message = _release_refused(greeter(tmp_path, gate=RED_GATE))
    assert "QA gates on main" in message and "failed" in message


def test_a_cli_change_without_docs_or_waiver_stops_the_release(tmp_path: Path) -> None:
    message = _release_refused(greeter(tmp_path, cli_notes="Docs: no update and no waiver"))
    assert "documentation checklist: GR-FEAT-002" in message and "src/greeter/cli.py" in message
    assert "GR-FEAT-001" not in message  # its public API change came with docs/api.md


def test_0_1_0_is_refused_before_the_mvp(tmp_path: Path) -> None:
    message = _release_refused(greeter(tmp_path), version="0.1.0")
    assert "0.1.0" in message and "mvp" in message.lower()


def test_the_mvp_milestone_releases_0_1_0(tmp_path: Path) -> None:
    repo = greeter(tmp_path, spec={"milestone": {"name": "mvp", "version": "0.1.0", "mvp": True}})
    assert release(repo)["tag"] == "v0.1.0"


def test_a_release_needing_approval_waits_for_it(tmp_path: Path) -> None:
    repo = greeter(tmp_path, spec={"approvals": {"release": True}})
    message = _release_refused(repo)  # nobody can answer a non-interactive release
    assert "needs a person's approval" in message

    answerer = Answerer("release-greeter", {"action": "approve"}, cli_repo=repo)
    answerer.start()
    result = release(repo, interactive=True, approval_timeout_s=120)
    answerer.join(timeout=5)
    assert answerer.error is None and answerer.answered_at is not None
    assert result["tag"] == "v0.0.1"


def test_a_changelog_that_does_not_parse_stops_the_release_naming_its_line(tmp_path: Path) -> None:
    repo = greeter(tmp_path)
    (repo / "CHANGELOG.md").write_text("# Changelog\n\n## [0.0.1] - 2026-01-01\n\n## [0.0.1] - 2026-01-02\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@l", "commit", "-qm", "a broken changelog")
    message = _release_refused(repo)
    assert "CHANGELOG.md:5" in message
    assert json.loads((repo / "automations/run-queue.json").read_text())["tickets"]  # the backlog is untouched


def test_a_refused_push_leaves_the_release_made_locally_and_says_so(tmp_path: Path) -> None:
    repo = greeter(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "main", str(tmp_path / "remote.git"), str(other))
    (other / "NOTES.md").write_text("a person's change\n")
    git(other, "add", "-A")
    git(other, "-c", "user.name=p", "-c", "user.email=p@l", "commit", "-qm", "a person's change")
    git(other, "push", "-q", "origin", "main")  # the remote's main moved: pushing ours is refused

    result = release(repo)
    assert result["pushed"] is False
    assert "NOT pushed" in result["report"] and "push main and the tag by hand" in result["report"]
    assert git(repo, "cat-file", "-t", "v0.0.1").strip() == "tag"  # the release itself is made
    assert git(tmp_path / "remote.git", "tag", "--list").strip() == ""
