"""The bootstrap flow from a PRD or a kickstart, end to end on scratch git repositories (issue 4, item 5).

The real flow function runs against a real Prefect API (tests/flows/conftest.py) with each agent mode:
deterministic (the PRD parser), the scripted planner, and the anthropic and claude-code backends against the local
stub (claude-code: the bundled CLI, with a proxy trap catching anything it would send elsewhere). The scripted and
stub answers are plumbing tests: the PRD text reaches the planner, the plan becomes the backlog,
the repair round carries the validation error. Planning quality needs a real model and is not claimed here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

from conveyor.adapters.agents.roles.base import REPAIR_FIELD
from conveyor.domain.errors import ConveyorError, InputError
from conveyor.domain.ticket import TaskType, Ticket, TicketKind
from conveyor.services.backlog_loader import load_backlog
from flows.bootstrap import bootstrap
from tests.adapters.test_claude_code_backend import ProxyTrap
from tests.adapters.test_prd_parser import LONG_EXPECTED
from tests.conftest import git
from tests.support.anthropic_stub import AnthropicStub, ManualClock, RecordedRequest, Reply
from tests.support.role_answers import chat_answer, todo_plan

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prd"
RUN_ID = "RUN-20260301-1000"
COMMIT_SUBJECT = "chore(orchestrator): Bootstrap tasks.md from docs/PRD.md"
OUTPUT_FILES = ("docs/TASKS.md", "automations/run-queue.json", "automations/run-state.json")
PRD_MARKER = "UNIQUE-PRD-MARKER-4711"
PRD = f"""# PRD: Todo

{PRD_MARKER}: a todo app with login.

## Must have

- [ ] Todos can be created and marked done.
- [ ] Users sign in with a password.
"""
PLAN: dict[str, Any] = {
    "tickets": [
        *todo_plan()["tickets"],
        {
            "id_hint": "TEST-001",
            "title": "Test login and todos together",
            "description": "An end-to-end test.",
            "acceptance_criteria": ["signing in then adding a todo works end to end"],
            "depends_on": ["Add login", "CORE-001"],
            "complexity": 2,
            "touch_set": ["tests/test_e2e.py"],
            "task_type": "TEST_ADD",
            "estimate_tokens": 8000,
        },
    ]
}


def _with_deps(plan: dict[str, Any], **deps: list[str]) -> dict[str, Any]:
    """``plan`` with the depends_on of the tickets named by id hint replaced."""
    tickets = [{**t, "depends_on": deps.get(t["id_hint"].replace("-", "_"), t["depends_on"])} for t in plan["tickets"]]
    return {"tickets": tickets}


CYCLIC_PLAN = _with_deps(PLAN, CORE_001=["TEST-001"])  # CORE-001 -> TEST-001 -> AUTH-001 -> CORE-001
UNKNOWN_DEP_PLAN = _with_deps(PLAN, AUTH_001=["CORE-404"])


# ── helpers ──────────────────────────────────────────────────────────────────────────────────────────────


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return head(repo)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def write_spec(repo: Path, agents: dict[str, Any]) -> None:
    spec = repo / "automations" / "build-spec.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(yaml.safe_dump({"agents": agents}, sort_keys=False))


def write_script(repo: Path, entries: list[dict[str, Any]]) -> None:
    """A scripted-backend script at automations/planner-script.yaml, selected by the build-spec."""
    path = repo / "automations" / "planner-script.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"entries": entries}, sort_keys=False))
    write_spec(repo, {"backend": "scripted", "script": "automations/planner-script.yaml"})


def planner_step(plan: dict[str, Any]) -> dict[str, Any]:
    return {"output": plan, "usage": {"input_tokens": 1200, "output_tokens": 400, "requests": 1}}


def with_prd(repo: Path, text: str = PRD) -> Path:
    (repo / "docs").mkdir(exist_ok=True)
    (repo / "docs" / "PRD.md").write_text(text, encoding="utf-8")
    return repo


def run_bootstrap(repo: Path, **kwargs: Any) -> dict[str, Any]:
    result = bootstrap(repo=str(repo), run_id=RUN_ID, **kwargs)
    assert isinstance(result, dict)
    return result


def backlog(repo: Path) -> list[Ticket]:
    return list(load_backlog(repo).backlog.tickets)


def planner_logs(repo: Path, stage: str = "bootstrap") -> list[dict[str, Any]]:
    """The call logs the recording backend wrote for the planner at ``stage``, oldest first."""
    folder = repo / "automations" / "logs" / "planner"
    logs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    return [log for log in logs if log["call"]["stage"] == stage]


def sent_user_text(log: dict[str, Any]) -> str:
    """The user text of a logged call (Anthropic-format messages built by ConveyorLM)."""
    parts: list[str] = []
    for message in log["request"]["inputs"]["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        parts.append(content if isinstance(content, str) else "\n".join(b["text"] for b in content))
    return "\n".join(parts)


def stub_user_text(request: RecordedRequest) -> str:
    texts = []
    for message in request.body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        texts.append(content if isinstance(content, str) else "\n".join(b["text"] for b in content))
    return "\n".join(texts)


def assert_untouched(repo: Path, before: str) -> None:
    """Nothing bootstrap owns was written or committed (agent call logs may exist; they are local records)."""
    assert head(repo) == before
    for path in OUTPUT_FILES:
        assert not (repo / path).exists(), path
    status = [line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()]
    assert [p for p in status if not p.startswith(("automations/logs/", "automations/memory/"))] == []


def assert_plan_backlog(repo: Path, result: dict[str, Any]) -> list[Ticket]:
    """PLAN became the backlog: titles, criteria, resolved dependencies, and the appended docs ticket."""
    tickets = backlog(repo)
    by_title = {t.title: t for t in tickets}
    assert list(by_title) == [
        "Create the todo model",
        "Add login",
        "Test login and todos together",
        "Documentation: update the docs for the planned changes",
    ]
    model, login, e2e, docs = tickets
    assert (model.id, login.id, e2e.id, docs.id) == ("CV-FEAT-001", "CV-SEC-001", "CV-TEST-001", "CV-DOC-001")
    assert model.depends_on == () and login.depends_on == (model.id,)
    assert set(e2e.depends_on) == {model.id, login.id}
    assert set(docs.depends_on) == {model.id, login.id} and docs.kind is TicketKind.DOCS
    assert login.acceptance_criteria == ("a wrong password returns 401",)
    assert (login.task_type, login.complexity, login.touch_set) == (TaskType.AUTH_ADD, 6, ("src/auth.py",))
    assert result["tickets"] == 4 and result["fallback"] is False and result["changed"] is True
    assert result["added"] == [t.id for t in tickets]
    assert result["commit"] == head(repo)
    assert "planned by the planner" in result["summary"]
    return tickets


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub(clock=ManualClock()) as server:
        yield server


@pytest.fixture
def anthropic_repo(scratch_repo: Path, stub: AnthropicStub, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose build-spec selects the anthropic backend; the SDK is pointed at the stub."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-bootstrap-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.url)
    write_spec(scratch_repo, {"backend": "anthropic", "sandbox": "none"})
    with_prd(scratch_repo)
    commit_all(scratch_repo, "spec and PRD")
    return scratch_repo


# ── 1. deterministic mode: the long PRD ──────────────────────────────────────────────────────────────────


def test_deterministic_mode_tickets_every_requirement_of_the_long_prd(scratch_repo: Path) -> None:
    repo = scratch_repo
    (repo / "docs").mkdir()
    shutil.copy(FIXTURES / "long.md", repo / "docs" / "PRD.md")
    before = commit_all(repo, "add the PRD")

    state = bootstrap(repo=str(repo), run_id=RUN_ID, return_state=True)
    result = state.result()
    assert isinstance(result, dict)

    # one ticket per checkbox / Must / Should item, as the parser test expects, plus the docs ticket (Step 6b)
    tickets = backlog(repo)
    assert len(tickets) == len(LONG_EXPECTED) + 1 == 21
    planned, docs = tickets[:-1], tickets[-1]
    assert [(t.title, list(t.acceptance_criteria)) for t in planned] == [(e[3], e[4]) for e in LONG_EXPECTED]
    assert [list(t.touch_set) for t in planned] == [e[6] for e in LONG_EXPECTED]
    id_of = {e[2]: t.id for t, e in zip(planned, LONG_EXPECTED, strict=True) if e[2]}
    assert [list(t.depends_on) for t in planned] == [[id_of[d] for d in e[5]] for e in LONG_EXPECTED]
    assert docs.kind is TicketKind.DOCS and set(docs.depends_on) == {t.id for t in planned}
    assert len({t.id for t in tickets}) == 21 and all(t.id.startswith("CV-") for t in tickets)

    # the summary says the fallback ran
    assert result["fallback"] is True and result["tickets"] == 21 and result["changed"] is True
    assert result["added"] == [t.id for t in tickets] and result["run_id"] == RUN_ID
    assert "deterministic PRD parser used: no model (deterministic mode)" in result["summary"]
    assert "Read 20 requirements; backlog of 21 tickets." in result["summary"]
    assert "not ticketed: Dark mode. (could-have)" in result["summary"]

    # the commit, by the bot, with counts and the estimated total, holding exactly the output files
    assert result["commit"] == head(repo) and git(repo, "rev-parse", "HEAD~1").strip() == before
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith(COMMIT_SUBJECT + "\n")
    assert "Parsed 20 requirements into 21 tasks." in message
    assert "Estimated total: " in message and "tokens." in message
    assert git(repo, "log", "-1", "--format=%an").strip() == "Conveyor"
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").split()) == sorted(OUTPUT_FILES)
    assert git(repo, "status", "--porcelain") == ""
    tasks_md = (repo / "docs" / "TASKS.md").read_text(encoding="utf-8")
    assert all(t.id in tasks_md and t.title in tasks_md for t in tickets)
    queue = json.loads((repo / "automations" / "run-queue.json").read_text(encoding="utf-8"))
    assert RUN_ID in (repo / "automations" / "run-state.json").read_text(encoding="utf-8")
    assert {t.id for t in tickets} <= set(json.dumps(queue).split('"'))

    # keyed Prefect artifacts of this flow run, readable through the client
    flow_run_id = state.state_details.flow_run_id
    assert isinstance(flow_run_id, UUID)
    slug = repo.resolve().name
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"{slug}-backlog", f"{slug}-bootstrap"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {f"{slug}-backlog", f"{slug}-bootstrap"}
    table = by_key[f"{slug}-backlog"]
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert isinstance(rows, list)
    assert [(r["id"], r["title"]) for r in rows] == [(t.id, t.title) for t in tickets]
    summary = by_key[f"{slug}-bootstrap"]
    assert summary.type == "markdown" and summary.data == result["summary"]


# ── 2. the scripted planner ──────────────────────────────────────────────────────────────────────────────


def test_scripted_planner_plan_becomes_the_backlog(scratch_repo: Path) -> None:
    repo = with_prd(scratch_repo)
    write_script(repo, [{"role": "planner", "stage": "bootstrap", "steps": [planner_step(PLAN)]}])
    commit_all(repo, "spec, script and PRD")

    result = run_bootstrap(repo)

    assert_plan_backlog(repo, result)
    assert "(scripted, prompt " in result["summary"] and "1 call(s)" in result["summary"]
    [call] = planner_logs(repo)
    assert call["backend"] == "scripted" and call["call"]["run_id"] == RUN_ID
    sent = sent_user_text(call)
    assert PRD.strip() in sent and PRD_MARKER in sent  # the whole PRD reaches the planner
    assert REPAIR_FIELD not in sent
    assert git(repo, "log", "-1", "--format=%s").strip() == COMMIT_SUBJECT
    assert "Parsed 3 requirements into 4 tasks." in git(repo, "log", "-1", "--format=%B")


# ── 3. the anthropic backend against the stub ────────────────────────────────────────────────────────────


def test_anthropic_planner_over_the_stub(anthropic_repo: Path, stub: AnthropicStub) -> None:
    stub.enqueue(Reply.text(chat_answer(plan=PLAN)))

    result = run_bootstrap(anthropic_repo)

    assert_plan_backlog(anthropic_repo, result)
    [sent] = stub.message_requests()
    assert PRD.strip() in stub_user_text(sent)
    assert sent.headers.get("x-api-key") != "sk-ant-bootstrap-0123456789abcdef"  # masked in the record
    assert "(anthropic, prompt " in result["summary"]
    assert (anthropic_repo / "docs" / "TASKS.md").is_file()
    assert git(anthropic_repo, "log", "-1", "--format=%s").strip() == COMMIT_SUBJECT


# ── 3b. the claude-code backend (the bundled CLI) against the stub ──────────────────────────────────────


@pytest.fixture
def claude_code_repo(scratch_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, AnthropicStub]]:
    """A repository whose build-spec selects claude-code; the CLI talks to the stub, anything else hits the trap."""
    from conveyor.adapters.agents.claude_code import sdk_available

    if not sdk_available():
        pytest.skip(
            "claude-agent-sdk (the claude-code extra, which bundles the Claude Code CLI) is not installed: "
            "run `uv sync --extra claude-code` to run bootstrap through the CLI against the stub"
        )
    trap = ProxyTrap()
    try:
        with AnthropicStub(clock=ManualClock(), hang_limit=20.0) as server:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-bootstrap-0123456789abcdef")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
            for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
                monkeypatch.setenv(name, trap.url)
            # Loopback stays direct (the stub, and this process's Prefect API); every other host goes to the trap.
            for name in ("NO_PROXY", "no_proxy"):
                monkeypatch.setenv(name, "127.0.0.1,localhost,::1")
            write_spec(scratch_repo, {"backend": "claude-code", "sandbox": "none"})
            with_prd(scratch_repo)
            commit_all(scratch_repo, "spec and PRD")
            yield scratch_repo, server
    finally:
        trap.close()
    assert trap.seen == [], f"something tried to leave loopback through the proxy: {trap.seen}"


@pytest.mark.slow  # the planner's call starts the bundled Claude Code CLI
def test_claude_code_planner_over_the_stub(claude_code_repo: tuple[Path, AnthropicStub]) -> None:
    repo, stub = claude_code_repo
    stub.set_handler(lambda body: Reply.text(chat_answer(plan=PLAN)))  # the CLI's turn, however it is worded

    result = run_bootstrap(repo)

    assert_plan_backlog(repo, result)
    assert "(claude-code, prompt " in result["summary"] and "1 call(s)" in result["summary"]
    # one tool-less CLI turn, the Messages API on loopback only, carrying the whole PRD
    assert {(r.method, r.path) for r in stub.requests} == {("POST", "/v1/messages")}
    [sent] = stub.message_requests()
    assert not sent.body.get("tools")
    user_text = stub_user_text(sent)
    assert PRD.strip() in user_text and PRD_MARKER in user_text
    assert REPAIR_FIELD not in user_text
    assert sent.headers.get("x-api-key") != "sk-ant-bootstrap-0123456789abcdef"  # masked in the record
    [call] = planner_logs(repo)
    assert call["backend"] == "claude-code" and call["call"]["run_id"] == RUN_ID
    # written and committed: exactly the output files, by the bot, nothing left behind
    assert (repo / "docs" / "TASKS.md").is_file()
    assert git(repo, "log", "-1", "--format=%s").strip() == COMMIT_SUBJECT
    assert "Parsed 3 requirements into 4 tasks." in git(repo, "log", "-1", "--format=%B")
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").split()) == sorted(OUTPUT_FILES)
    status = [line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()]
    assert [p for p in status if not p.startswith(("automations/logs/", "automations/memory/"))] == []


# ── 4. repair round, then a clear failure ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("bad", "problem"),
    [(CYCLIC_PLAN, "dependency cycle"), (UNKNOWN_DEP_PLAN, "'CORE-404', which is not a ticket of this plan")],
    ids=["cycle", "unknown-dependency"],
)
def test_one_repair_round_fixes_an_invalid_plan(scratch_repo: Path, bad: dict[str, Any], problem: str) -> None:
    repo = with_prd(scratch_repo)
    write_script(repo, [{"role": "planner", "stage": "bootstrap", "steps": [planner_step(bad), planner_step(PLAN)]}])
    commit_all(repo, "spec, script and PRD")

    result = run_bootstrap(repo)

    assert_plan_backlog(repo, result)
    assert "one repair round fixed it" in result["summary"] and "2 call(s)" in result["summary"]
    first, second = planner_logs(repo)
    assert REPAIR_FIELD not in sent_user_text(first)
    repair = sent_user_text(second).split(f"[[ ## {REPAIR_FIELD} ## ]]", 1)[1]
    assert problem in repair  # the validation error travels back with the second request
    assert PRD_MARKER in sent_user_text(second)


def test_two_invalid_plans_fail_clearly_and_write_nothing(scratch_repo: Path) -> None:
    repo = with_prd(scratch_repo)
    steps = [planner_step(CYCLIC_PLAN), planner_step(UNKNOWN_DEP_PLAN)]
    write_script(repo, [{"role": "planner", "stage": "bootstrap", "steps": steps}])
    before = commit_all(repo, "spec, script and PRD")

    with pytest.raises(ConveyorError) as raised:
        run_bootstrap(repo)

    message = str(raised.value)
    assert message.startswith("the planner could not plan docs/PRD.md: ")
    assert "CORE-404" in message  # the last validation error is named
    assert len(planner_logs(repo)) == 2  # one repair round, no more
    assert_untouched(repo, before)


def test_two_invalid_plans_over_the_stub_fail_clearly(anthropic_repo: Path, stub: AnthropicStub) -> None:
    before = head(anthropic_repo)
    stub.enqueue(Reply.text(chat_answer(plan=UNKNOWN_DEP_PLAN)), Reply.text(chat_answer(plan=CYCLIC_PLAN)))

    with pytest.raises(ConveyorError) as raised:
        run_bootstrap(anthropic_repo)

    message = str(raised.value)
    assert message.startswith("the planner could not plan docs/PRD.md: ") and "dependency cycle" in message

    first, second = stub.message_requests()
    assert REPAIR_FIELD not in stub_user_text(first)
    repair = stub_user_text(second).split(f"[[ ## {REPAIR_FIELD} ## ]]", 1)[1]
    assert "CORE-404" in repair and PRD.strip() in stub_user_text(second)
    assert_untouched(anthropic_repo, before)


# ── 5. a kickstart without a PRD ─────────────────────────────────────────────────────────────────────────

KICKSTART = "- [ ] Save a link with a title\n- [ ] Share a shelf with the team\n"


def test_deterministic_kickstart_becomes_the_prd_with_an_assumption(scratch_repo: Path) -> None:
    repo = scratch_repo
    before = head(repo)

    result = run_bootstrap(repo, kickstart=KICKSTART)

    prd = (repo / "docs" / "PRD.md").read_text(encoding="utf-8")
    assert KICKSTART in prd
    assumptions = [line for line in prd.splitlines() if line.startswith("ASSUMPTION:")]
    assert len(assumptions) == 1 and "deterministic mode" in assumptions[0]
    assert [t.title for t in backlog(repo)] == [
        "Save a link with a title",
        "Share a shelf with the team",
        "Documentation: update the docs for the planned changes",
    ]
    assert result["fallback"] is True
    assert "wrote docs/PRD.md (1 ASSUMPTION line(s))" in result["summary"]
    assert git(repo, "rev-parse", "HEAD~1").strip() == before
    assert git(repo, "log", "-1", "--format=%s").strip() == COMMIT_SUBJECT
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == sorted([*OUTPUT_FILES, "docs/PRD.md"])  # the PRD is committed with the backlog
    assert git(repo, "status", "--porcelain") == ""


DRAFTED_PRD = """# PRD: Linkshelf

## Goal
Keep a team's links in one place.

## Requirements

- [ ] Save a link with a title
- [ ] Share a shelf with the team

ASSUMPTION: links are private to the team.
ASSUMPTION: teams have fewer than 50 members.
"""


def test_scripted_planner_drafts_the_prd_from_the_kickstart(scratch_repo: Path) -> None:
    repo = scratch_repo
    kickstart = "KICKSTART-MARKER: a place for my team's links"
    write_script(
        repo,
        [
            {"role": "planner", "stage": "bootstrap-prd", "steps": [{"text": DRAFTED_PRD}]},
            {"role": "planner", "stage": "bootstrap", "steps": [planner_step(PLAN)]},
        ],
    )
    commit_all(repo, "spec and script")

    result = run_bootstrap(repo, kickstart=kickstart)

    prd = (repo / "docs" / "PRD.md").read_text(encoding="utf-8")
    assert prd == DRAFTED_PRD
    assert "wrote docs/PRD.md (2 ASSUMPTION line(s))" in result["summary"]
    [draft] = planner_logs(repo, "bootstrap-prd")
    assert kickstart in sent_user_text(draft)
    assert "ASSUMPTION:" in draft["request"]["system"]  # the drafting prompt asks for the markers
    [plan_call] = planner_logs(repo)
    assert DRAFTED_PRD.strip() in sent_user_text(plan_call)  # the drafted PRD is what gets planned
    assert_plan_backlog(repo, result)
    assert "docs/PRD.md" in git(repo, "show", "--name-only", "--format=", "HEAD").split()


# ── 6. malformed PRDs ────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("fixture", "line", "message"),
    [("empty_checkbox.md", 6, "empty checkbox"), ("cycle.md", 5, "dependency cycle: A-1 -> A-3 -> A-2 -> A-1")],
)
def test_a_malformed_prd_names_file_and_line_and_writes_nothing(
    scratch_repo: Path, fixture: str, line: int, message: str
) -> None:
    repo = with_prd(scratch_repo, (FIXTURES / fixture).read_text(encoding="utf-8"))
    before = commit_all(repo, "a malformed PRD")

    with pytest.raises(InputError) as raised:
        run_bootstrap(repo, prd="docs/PRD.md")

    (problem,) = raised.value.problems
    assert (problem.path, problem.line) == ("docs/PRD.md", line)
    assert message in problem.message
    assert f"docs/PRD.md:{line}" in str(raised.value)
    assert_untouched(repo, before)


def test_a_kickstart_without_requirement_structure_fails_and_writes_nothing(scratch_repo: Path) -> None:
    repo = scratch_repo
    before = head(repo)

    with pytest.raises(InputError) as raised:
        run_bootstrap(repo, kickstart="a todo app for my team")

    (problem,) = raised.value.problems
    assert (problem.path, problem.line) == ("docs/PRD.md", None)
    assert "no requirement structure found" in problem.message
    assert not (repo / "docs" / "PRD.md").exists()
    assert_untouched(repo, before)
