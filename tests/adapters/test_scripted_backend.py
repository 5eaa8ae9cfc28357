"""The scripted backend against real git worktrees and real script files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.adapters.agents.scripted import Script, ScriptedBackend
from conveyor.adapters.git_repo import GitRepo
from conveyor.domain.agent import AgentRequest, AgentRole, ErrorKind, Usage, WorkerStatus
from conveyor.domain.errors import InputError
from conveyor.domain.models import ModelTable
from conveyor.domain.ticket import ModelTier
from conveyor.services.scaffold import GITIGNORE_ENTRIES
from tests.conftest import git

RUN_ID = "RUN-20260105-0930"


def prepare_repo(repo: Path) -> Path:
    """What ``conveyor init`` leaves: Conveyor's local paths ignored (committed)."""
    (repo / ".gitignore").write_text("\n".join(GITIGNORE_ENTRIES) + "\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore conveyor paths")
    return repo


def add_worktree(repo: Path, ticket: str) -> Path:
    """The ticket's worktree .conveyor/worktrees/<ticket> on branch conveyor/<ticket-lowercase>."""
    path = repo / ".conveyor" / "worktrees" / ticket
    git(repo, "worktree", "add", "-q", "-b", f"conveyor/{ticket.lower()}", str(path))
    return path


def make_request(
    *,
    role: AgentRole = AgentRole.IMPLEMENTER,
    ticket: str | None = "T-1",
    stage: str = "implementing",
    attempt: int = 1,
    workdir: Path | None = None,
    base: str | None = None,
    inputs: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
    tier: ModelTier = ModelTier.NORMAL,
) -> AgentRequest:
    return AgentRequest(
        role=role,
        run_id=RUN_ID,
        ticket_id=ticket,
        stage=stage,
        attempt=attempt,
        tier=tier,
        prompt_version="implementer@1",
        base_commit=base,
        system="You are the implementer.",
        inputs=inputs if inputs is not None else {"title": "Add greeting", "description": "say hello"},
        workdir=str(workdir) if workdir is not None else None,
        output_schema=schema,
    )


def write_script(directory: Path, text: str, name: str = "script.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture
def repo(scratch_repo: Path) -> Path:
    return prepare_repo(scratch_repo)


def test_applies_edits_in_the_worktree_and_commits(repo: Path, tmp_path: Path) -> None:
    worktree = add_worktree(repo, "T-1")
    (worktree / "old.txt").write_text("obsolete\n")
    git(worktree, "add", "old.txt")
    git(worktree, "commit", "-q", "-m", "old")
    base = GitRepo(worktree).head_sha()
    script = write_script(
        tmp_path,
        """
entries:
  - role: implementer
    ticket: T-1
    steps:
      - edits:
          - write: {path: src/hello.py, content: "print('hi')\\n"}
        replace: {path: README.md, old: "# scratch", new: "# greeting"}
        delete: old.txt
        notes: added greeting
        usage: {input_tokens: 1000000, output_tokens: 100000, requests: 1}
""",
    )
    backend = ScriptedBackend(script, repo_root=repo)
    result = backend.run(make_request(workdir=worktree, base=base))
    assert result.ok, result
    assert backend.name == "scripted" and result.backend == "scripted" and result.model == "scripted"
    wt = GitRepo(worktree)
    assert result.commit_sha == wt.head_sha() and wt.is_clean()
    assert wt.branch_of() == "conveyor/t-1"
    assert wt.diff_names(base) == ["README.md", "old.txt", "src/hello.py"]
    assert (worktree / "src" / "hello.py").read_text() == "print('hi')\n"
    assert (worktree / "README.md").read_text() == "# greeting\n"
    assert (
        git(worktree, "log", "-1", "--format=%s|%an <%ae>").strip() == "T-1: Add greeting|Conveyor <conveyor@localhost>"
    )
    assert GitRepo(repo).head_sha() != result.commit_sha  # main untouched
    # cost from the model table for the request's tier: 1M input * $3 + 0.1M output * $15
    assert result.cost_usd == pytest.approx(3.0 + 1.5)
    assert result.used == "1.1M" and result.notes == "added greeting"
    transcript = backend.pop_transcript(make_request(workdir=worktree, base=base))
    assert transcript is not None and transcript[0]["role"] == "user"
    assert [c["name"] for c in transcript[1]["content"] if c["type"] == "tool_use"] == [
        "write_file",
        "edit_file",
        "delete_file",
    ]


def test_cost_follows_the_tier_and_a_custom_table(repo: Path) -> None:
    step_usage = Usage(input_tokens=1_000_000, output_tokens=0)
    script = Script.model_validate(
        {"entries": [{"role": "reviewer", "repeat_last": True, "steps": [{"usage": step_usage.model_dump()}]}]}
    )
    backend = ScriptedBackend(script, repo_root=repo)
    easy = backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", tier=ModelTier.EASY))
    complex_ = backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", tier=ModelTier.COMPLEX))
    assert easy.cost_usd == pytest.approx(ModelTable().prices().cost_usd(ModelTier.EASY, input_tokens=1_000_000))
    assert complex_.cost_usd > easy.cost_usd


def test_steps_are_consumed_per_role_ticket_and_stage(repo: Path, tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
entries:
  - role: reviewer
    ticket: "*"
    steps:
      - {text: first}
      - {text: second}
""",
    )
    backend = ScriptedBackend(script, repo_root=repo)

    def review(ticket: str | None, stage: str = "reviewing") -> str:
        result = backend.run(make_request(role=AgentRole.REVIEWER, ticket=ticket, stage=stage))
        return result.text if result.ok else f"error:{result.error_kind}"

    assert review("T-1") == "first"
    assert review("T-2") == "first"  # another ticket has its own counter
    assert review("T-1", stage="qa") == "first"  # and another stage
    assert review(None) == "first"  # "*" matches calls without a ticket
    assert review("T-1") == "second"
    assert review("T-1") == "error:script"  # past the end, no repeat_last
    assert backend.calls_for(AgentRole.REVIEWER, "T-1", "reviewing") == 3
    assert backend.calls == 6


def test_repeat_last(repo: Path, tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
entries:
  - role: planner
    repeat_last: true
    steps: [{text: one}, {text: again}]
""",
    )
    backend = ScriptedBackend(script, repo_root=repo)
    texts = [backend.run(make_request(role=AgentRole.PLANNER, ticket=None, stage="bootstrap")).text for _ in range(4)]
    assert texts == ["one", "again", "again", "again"]


def test_past_the_end_names_the_entry(repo: Path, tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """entries:
  - role: reviewer
    steps: [{text: only}]
  - role: implementer
    ticket: T-1
    steps: [{text: only}]
""",
    )
    backend = ScriptedBackend(script, repo_root=repo)
    assert backend.run(make_request()).ok
    result = backend.run(make_request())
    assert result.status is WorkerStatus.FAILED and result.error_kind is ErrorKind.SCRIPT
    assert "script.yaml:4" in result.error_detail and "no step 2" in result.error_detail
    assert "repeat_last" in result.error_detail
    missing = backend.run(make_request(ticket="T-9"))
    assert missing.error_kind is ErrorKind.SCRIPT and "no script entry" in missing.error_detail


def test_most_specific_entry_wins(repo: Path, tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
entries:
  - {role: implementer, repeat_last: true, steps: [{text: any}]}
  - {role: implementer, ticket: T-1, repeat_last: true, steps: [{text: ticket}]}
  - {role: implementer, ticket: T-1, attempt: 2, repeat_last: true, steps: [{text: attempt-2}]}
  - {role: implementer, ticket: T-1, stage: fixing, repeat_last: true, steps: [{text: stage}]}
""",
    )
    backend = ScriptedBackend(script, repo_root=repo)
    assert backend.run(make_request(ticket="T-7")).text == "any"
    assert backend.run(make_request()).text == "ticket"
    assert backend.run(make_request(attempt=2)).text == "attempt-2"
    assert backend.run(make_request(stage="fixing", attempt=2)).text == "stage"


def test_failure_injection_and_statuses(repo: Path, tmp_path: Path) -> None:
    sleeps: list[float] = []
    script = write_script(
        tmp_path,
        """
entries:
  - role: reviewer
    steps:
      - {error_kind: overloaded, error_detail: "529 overloaded", sleep_s: 1.5}
      - {error_kind: rate_limited}
      - {error_kind: timeout, status: escalate}
      - {status: escalate, notes: need a person}
      - {status: failed, notes: cannot}
""",
    )
    backend = ScriptedBackend(script, repo_root=repo, sleep=sleeps.append)
    results = [backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing")) for _ in range(5)]
    assert [r.error_kind for r in results] == [
        ErrorKind.OVERLOADED,
        ErrorKind.RATE_LIMITED,
        ErrorKind.TIMEOUT,
        None,
        None,
    ]
    assert [r.status for r in results] == [
        WorkerStatus.FAILED,
        WorkerStatus.FAILED,
        WorkerStatus.ESCALATE,
        WorkerStatus.ESCALATE,
        WorkerStatus.FAILED,
    ]
    assert results[0].error_detail == "529 overloaded"
    assert "script.yaml" in results[1].error_detail  # a default detail names the script
    assert results[3].notes == "need a person"
    assert sleeps == [1.5]
    assert not any(r.ok for r in results)


def test_output_is_validated_against_the_schema(repo: Path, tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"decision": {"enum": ["approve", "request-changes"]}},
        "required": ["decision"],
    }
    script = write_script(
        tmp_path,
        """
entries:
  - role: reviewer
    steps:
      - output: {decision: approve}
      - output: {decision: maybe}
      - text: no output at all
      - output: {anything: goes}
""",
    )
    backend = ScriptedBackend(script, repo_root=repo)
    ok = backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", schema=schema))
    assert ok.ok and ok.output == {"decision": "approve"}
    bad = backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", schema=schema))
    assert bad.error_kind is ErrorKind.MALFORMED_OUTPUT and "decision" in bad.error_detail
    assert bad.status is WorkerStatus.FAILED
    missing = backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", schema=schema))
    assert missing.error_kind is ErrorKind.MALFORMED_OUTPUT
    no_schema = backend.run(make_request(role=AgentRole.REVIEWER, stage="reviewing"))
    assert no_schema.ok and no_schema.output == {"anything": "goes"}


@pytest.mark.parametrize(
    "path",
    ["../outside.txt", "/tmp/conveyor-abs.txt", "a/../../outside.txt", ".git/config", "link/escape.txt", ""],
)
def test_edits_are_confined_to_the_workdir(repo: Path, tmp_path: Path, path: str) -> None:
    worktree = add_worktree(repo, "T-1")
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    (worktree / "link").symlink_to(outside)
    script = Script.model_validate(
        {"entries": [{"role": "implementer", "steps": [{"write": {"path": path, "content": "pwned\n"}}]}]}
    )
    result = ScriptedBackend(script, repo_root=repo).run(make_request(workdir=worktree))
    assert result.error_kind is ErrorKind.SCRIPT and "refused path" in result.error_detail
    assert not (outside / "escape.txt").exists()
    assert not (worktree.parent / "outside.txt").exists()
    assert "pwned" not in (worktree / ".git").read_text()


def test_edit_problems_are_script_errors(repo: Path, tmp_path: Path) -> None:
    worktree = add_worktree(repo, "T-1")
    script = Script.model_validate(
        {
            "entries": [
                {
                    "role": "implementer",
                    "steps": [
                        {"replace": {"path": "README.md", "old": "not there", "new": "x"}},
                        {"delete": "missing.txt"},
                        {"write": {"path": "x.txt", "content": "x"}},
                    ],
                }
            ]
        }
    )
    backend = ScriptedBackend(script, repo_root=repo)
    first = backend.run(make_request(workdir=worktree))
    assert first.error_kind is ErrorKind.SCRIPT and "occurs 0 times" in first.error_detail
    second = backend.run(make_request(workdir=worktree))
    assert second.error_kind is ErrorKind.SCRIPT and "no such file" in second.error_detail
    third = backend.run(make_request(workdir=None))
    assert third.error_kind is ErrorKind.SCRIPT and "no workdir" in third.error_detail


def test_a_step_without_changes_commits_nothing(repo: Path) -> None:
    worktree = add_worktree(repo, "T-1")
    script = Script.model_validate(
        {"entries": [{"role": "implementer", "steps": [{"write": {"path": "README.md", "content": "# scratch\n"}}]}]}
    )
    result = ScriptedBackend(script, repo_root=repo).run(make_request(workdir=worktree))
    assert result.ok and result.commit_sha is None


@pytest.mark.parametrize(
    "case",
    [
        ("bad.yaml", "entries:\n  - role: implementer\n    steps: [ {text: x}\n", 4, "invalid YAML"),
        ("typo.yaml", "entries:\n  - role: implementer\n    steps:\n      - txt: hello\n", 4, "txt"),
        (
            "kind.yaml",
            "entries:\n  - role: reviewer\n    steps:\n      - {}\n      - error_kind: melted\n",
            5,
            "error_kind",
        ),
        ("role.yaml", "entries:\n  - role: wizard\n    steps: [{}]\n", 2, "role"),
        ("empty-steps.yaml", "entries:\n  - role: planner\n    steps: []\n", 3, "steps"),
        (
            "contradiction.yaml",
            "entries:\n  - role: qa-triage\n    steps:\n      - {status: success, error_kind: timeout}\n",
            4,
            "success",
        ),
        ("bad.json", '{\n  "entries": [\n    {"role": "planner",\n  ]\n}\n', 4, "invalid JSON"),
        ("empty.yaml", "", 1, "empty script"),
    ],
)
def test_malformed_script_names_file_and_line(repo: Path, tmp_path: Path, case: tuple[str, str, int, str]) -> None:
    name, text, line, fragment = case
    path = write_script(tmp_path, text, name)
    with pytest.raises(InputError) as caught:
        ScriptedBackend(path, repo_root=repo)
    problem = caught.value.problems[0]
    assert problem.path.endswith(name)
    assert problem.line == line, str(caught.value)
    assert fragment in problem.message


def test_json_script_and_relative_path(repo: Path) -> None:
    (repo / "automations").mkdir(exist_ok=True)
    (repo / "automations" / "demo-script.json").write_text(
        json.dumps({"entries": [{"role": "research", "steps": [{"text": "from json"}]}]})
    )
    backend = ScriptedBackend(Path("automations/demo-script.json"), repo_root=repo)
    assert backend.script_display == "automations/demo-script.json"
    assert backend.run(make_request(role=AgentRole.RESEARCH, ticket=None, stage="research")).text == "from json"


def test_counters_persist_in_the_state_file(repo: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, "entries:\n  - role: reviewer\n    steps: [{text: one}, {text: two}]\n")
    state = tmp_path / "scripted-state.json"
    first = ScriptedBackend(script, repo_root=repo, state_path=state)
    assert first.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", inputs={"round": 1})).text == "one"
    second = ScriptedBackend(script, repo_root=repo, state_path=state)  # a new process, same state
    assert second.run(make_request(role=AgentRole.REVIEWER, stage="reviewing", inputs={"round": 2})).text == "two"
    assert second.run(make_request(role=AgentRole.REVIEWER, stage="reviewing")).error_kind is ErrorKind.SCRIPT


def test_a_resumed_process_gets_the_same_step_for_a_request_already_answered(repo: Path, tmp_path: Path) -> None:
    """A run killed after a call but before its result was stored makes the same call again on resume."""
    script = write_script(tmp_path, "entries:\n  - role: reviewer\n    steps: [{text: one}, {text: two}]\n")
    state = tmp_path / "scripted-state.json"
    request = make_request(role=AgentRole.REVIEWER, stage="reviewing", inputs={"round": 1})
    assert ScriptedBackend(script, repo_root=repo, state_path=state).run(request).text == "one"
    resumed = ScriptedBackend(script, repo_root=repo, state_path=state)
    assert resumed.run(request).text == "one"  # the same request: the same answer
    assert resumed.run(request).text == "two"  # within one process, a repeated request takes the next step
    state.write_text("{not json")
    with pytest.raises(InputError):
        ScriptedBackend(script, repo_root=repo, state_path=state)


def test_a_step_answered_again_after_a_kill_finds_its_edits_already_applied(repo: Path, tmp_path: Path) -> None:
    """The first process applied the step's edits and was killed before its result was stored: the resumed process
    answers the same step again, and its replace and delete are already done, not errors."""
    worktree = add_worktree(repo, "T-1")
    (worktree / "old.txt").write_text("old\n")
    git(worktree, "add", "old.txt")
    git(worktree, "commit", "-q", "-m", "old")
    script = write_script(
        tmp_path,
        """
entries:
  - role: implementer
    ticket: T-1
    steps:
      - replace: {path: README.md, old: "# scratch", new: "# greeting"}
        delete: old.txt
""",
    )
    state = tmp_path / "scripted-state.json"
    request = make_request(workdir=worktree)
    assert ScriptedBackend(script, repo_root=repo, state_path=state).run(request).ok
    again = ScriptedBackend(script, repo_root=repo, state_path=state).run(request)
    assert again.ok, again.error_detail
    assert (worktree / "README.md").read_text().startswith("# greeting") and not (worktree / "old.txt").exists()
    # A process that never answered it still refuses the same step on the edited tree.
    fresh = ScriptedBackend(script, repo_root=repo).run(request)
    assert fresh.error_kind is ErrorKind.SCRIPT and "occurs 0 times" in fresh.error_detail
