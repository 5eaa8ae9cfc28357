"""The judgment roles as DSPy programs: typed outputs, prompts, prompt versions, repair round, program state.

These tests check plumbing (inputs reach the prompt, typed outputs come back, the repair round carries the
validation error, overrides and saved state change what they should), not planning or review quality:
that needs a real model and is untested here. Programs run on DSPy's DummyLM, or on ConveyorLM over the
in-test ListBackend (a real AgentBackend that answers from a list and records its requests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dspy  # type: ignore[import-untyped]
import pytest
from dspy.utils.dummies import DummyLM  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError

from conveyor.adapters.agents.prompts import OVERRIDE_DIR, default_prompt, load_prompt
from conveyor.adapters.agents.roles import (
    PROGRAMS,
    planner,
    qa_triage,
    release_notes,
    research,
    reviewer,
    steward,
)
from conveyor.adapters.agents.roles.base import (
    PROGRAM_STATE_DIR,
    REPAIR_FIELD,
    RoleCall,
    RoleProgram,
    load_state,
    prompt_version,
    save_state,
)
from conveyor.domain.agent import AgentResult, AgentRole, ErrorKind, WorkerStatus
from conveyor.domain.errors import InputError
from conveyor.domain.roles import (
    AgentCallError,
    DocUpdate,
    DocUpdates,
    Plan,
    QANextAction,
    ReviewDecision,
    ReviewScope,
    ReviewVerdict,
    RoleOutputError,
    review_scope,
)
from conveyor.domain.ticket import ModelTier
from tests.adapters.test_dspy_lm import ListBackend, chat_answer, message_texts
from tests.support.role_answers import DIFF, PRD, TICKET, todo_plan

RUN_ID = "RUN-20250102-0304"

PLAN = todo_plan()
VERDICT = {
    "decision": "request-changes",
    "findings": [{"severity": "blocker", "title": "No test", "file": "src/app/health.py", "line": 1}],
    "security_findings": [{"severity": "low", "title": "Verbose header"}],
    "comments": "Add a test.",
}
TRIAGE = {
    "failure_summary": "test_health fails: 500",
    "failing_gates": ["pytest"],
    "likely_cause": "import error",
    "next_action": "fix",
}
NOTES = {"title": "Release 0.1.0", "summary": "First release.", "highlights": ["Health endpoint"], "changes": []}
DOCS = {
    "updates": [{"path": "docs/api.md", "reason": "new endpoint", "patch_summary": "add /health"}],
    "checklist_complete": True,
}
REPORT = {"issues": [{"rule": "B608", "title": "Use parameters in SQL", "file": "db.py", "severity": "high"}]}

# role → (program class, output field, a valid answer, the inputs of one program call)
CASES: dict[str, tuple[type[RoleProgram], str, dict[str, Any], dict[str, str]]] = {
    "planner": (planner.PlannerProgram, "plan", PLAN, {"spec": PRD, "context": "(none)"}),
    "reviewer": (
        reviewer.ReviewerProgram,
        "verdict",
        VERDICT,
        {"ticket": "APP-FEAT-007", "scope": "code", "diff": DIFF},
    ),
    "qa_triage": (qa_triage.QATriageProgram, "triage", TRIAGE, {"ticket": "T", "gate_logs": "## pytest\nFAILED"}),
    "release_notes": (
        release_notes.ReleaseNotesProgram,
        "release_notes",
        NOTES,
        {"version": "0.1.0", "tickets": "- APP-FEAT-007", "commits": "- add health"},
    ),
    "steward": (
        steward.StewardProgram,
        "doc_updates",
        DOCS,
        {"change_summary": "s", "diff": DIFF, "doc_files": "docs/api.md"},
    ),
    "research": (
        research.ResearchProgram,
        "report",
        REPORT,
        {"code_summary": "db.py: query()", "scanner_findings": "B608"},
    ),
}


def call(backend: ListBackend, **changes: Any) -> RoleCall:
    return RoleCall(backend=backend, run_id=RUN_ID, **changes)


def answer(field: str, value: dict[str, Any]) -> str:
    return chat_answer(**{field: json.dumps(value)})


# -- (a) plumbing on DSPy's DummyLM ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(CASES))
def test_each_program_returns_its_typed_output_on_dummy_lm(role: str) -> None:
    program_cls, field, value, inputs = CASES[role]
    lm = DummyLM([{field: value}])
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        prediction = program_cls()(**inputs)
    output = prediction[field]
    assert isinstance(output, program_cls.OUTPUT_TYPE)
    assert output == program_cls.OUTPUT_TYPE.model_validate(value)
    system, user = lm.history[-1]["messages"][0]["content"], lm.history[-1]["messages"][-1]["content"]
    assert default_prompt(program_cls.ROLE).text.strip().splitlines()[0] in system
    for text in inputs.values():
        assert text.strip() in user


def test_the_prd_and_the_diff_reach_the_prompt_on_dummy_lm() -> None:
    lm = DummyLM([{"plan": PLAN}, {"verdict": VERDICT}])
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        plan = planner.PlannerProgram()(spec=PRD, context="(none)").plan
        verdict = reviewer.ReviewerProgram()(ticket="APP-FEAT-007", scope="code", diff=DIFF).verdict
    assert isinstance(plan, Plan)
    assert [t.id_hint for t in plan.tickets] == ["CORE-001", "AUTH-001"]
    assert plan.resolve(plan.tickets[1]) == [plan.tickets[0]]
    assert isinstance(verdict, ReviewVerdict) and verdict.sends_back
    assert "UNIQUE-PRD-MARKER" in lm.history[0]["messages"][-1]["content"]
    assert "UNIQUE-DIFF-MARKER" in lm.history[1]["messages"][-1]["content"]


# -- (b) run() over ConveyorLM: one AgentRequest per call, with the role's metadata ---------------------------


def test_planner_run_sends_one_request_with_role_stage_tier_and_prompt_version() -> None:
    backend = ListBackend([answer("plan", PLAN)])
    outcome = planner.run(call(backend), spec=PRD)
    assert isinstance(outcome.output, Plan)
    assert len(outcome.output.tickets) == 2
    assert (outcome.calls, outcome.repaired, outcome.prompt_source) == (1, False, "package")
    [request] = backend.requests
    assert request.role is AgentRole.PLANNER
    assert (request.run_id, request.ticket_id, request.stage) == (RUN_ID, None, "bootstrap")
    assert request.tier is ModelTier.COMPLEX  # the planner's default tier
    assert request.prompt_version == outcome.prompt_version
    assert request.prompt_version == prompt_version(planner.PlannerProgram(default_prompt(AgentRole.PLANNER).text))
    assert default_prompt(AgentRole.PLANNER).text.splitlines()[0] in request.system
    assert "UNIQUE-PRD-MARKER" in message_texts(request)[0]
    assert outcome.usage.requests == 1 and outcome.cost_usd == pytest.approx(0.002)


def test_reviewer_run_records_ticket_stage_attempt_and_caller_tier() -> None:
    backend = ListBackend([answer("verdict", VERDICT)])
    outcome = reviewer.run(
        call(backend, attempt=2, tier=ModelTier.COMPLEX, base_commit="abc123"), ticket=TICKET, diff=DIFF
    )
    assert outcome.output.decision is ReviewDecision.REQUEST_CHANGES
    assert outcome.output.sends_back and outcome.output.blockers == 1
    [request] = backend.requests
    assert (request.role, request.ticket_id, request.stage) == (AgentRole.REVIEWER, "APP-FEAT-007", "reviewing")
    assert (request.attempt, request.tier, request.base_commit) == (2, ModelTier.COMPLEX, "abc123")
    text = message_texts(request)[0]
    assert "UNIQUE-DIFF-MARKER" in text
    assert "GET /health returns 200" in text  # the ticket's acceptance criteria
    assert "code, security" in text  # scope from the diff's files: source code


@pytest.mark.parametrize(
    ("runner", "kwargs", "stage"),
    [
        (qa_triage.run, {"gate_logs": {"pytest": "E   AssertionError: UNIQUE-LOG-MARKER"}, "ticket": TICKET}, "qa"),
        (release_notes.run, {"version": "0.1.0", "tickets": [TICKET], "commits": ["UNIQUE-COMMIT-MARKER"]}, "release"),
        (
            steward.run,
            {"change_summary": "UNIQUE-CHANGE-MARKER", "diff": DIFF, "doc_files": ["docs/api.md"]},
            "documenting",
        ),
        (research.run, {"code_summary": "db.py", "scanner_findings": [{"rule": "UNIQUE-RULE-MARKER"}]}, "improvement"),
    ],
)
def test_other_roles_run_through_the_backend(runner: Any, kwargs: dict[str, Any], stage: str) -> None:
    expected: dict[str, tuple[str, dict[str, Any]]] = {
        "qa": ("triage", TRIAGE),
        "release": ("release_notes", NOTES),
        "documenting": ("doc_updates", DOCS),
        "improvement": ("report", REPORT),
    }
    field, value = expected[stage]
    backend = ListBackend([answer(field, value)])
    outcome = runner(call(backend), **kwargs)
    assert isinstance(outcome.output, BaseModel)
    [request] = backend.requests
    assert request.stage == stage and request.tier is ModelTier.NORMAL
    assert "UNIQUE-" in message_texts(request)[0]


def test_a_docs_only_change_gets_no_review_and_no_call() -> None:
    backend = ListBackend([])
    docs_diff = "--- a/docs/guide.md\n+++ b/docs/guide.md\n@@ -1 +1 @@\n-old\n+new\n"
    outcome = reviewer.run(call(backend), ticket=TICKET, diff=docs_diff)
    assert outcome.calls == 0 and backend.requests == []
    assert outcome.output.decision is ReviewDecision.APPROVE and not outcome.output.sends_back


def test_a_security_only_review_drops_code_findings() -> None:
    backend = ListBackend([answer("verdict", VERDICT)])
    config_diff = "--- a/deploy/app.yaml\n+++ b/deploy/app.yaml\n@@ -1 +1 @@\n-a: 1\n+a: 2\n"
    outcome = reviewer.run(call(backend), ticket=TICKET, diff=config_diff)
    assert "[[ ## scope ## ]]\nsecurity\n" in message_texts(backend.requests[0])[0]
    assert outcome.output.findings == [] and len(outcome.output.security_findings) == 1


def test_a_backend_error_is_not_repaired() -> None:
    failure = AgentResult(task_id="APP-FEAT-007", status=WorkerStatus.FAILED, backend="list", error_kind=ErrorKind.AUTH)
    backend = ListBackend([failure, answer("verdict", VERDICT)])
    with pytest.raises(AgentCallError) as raised:
        reviewer.run(call(backend), ticket=TICKET, diff=DIFF)
    assert raised.value.error_kind is ErrorKind.AUTH
    assert not isinstance(raised.value, RoleOutputError)
    assert len(backend.requests) == 1


# -- (c) the repair round -------------------------------------------------------------------------------------

MISSING_FIELD = {"tickets": [{k: v for k, v in PLAN["tickets"][0].items() if k != "acceptance_criteria"}]}
WRONG_ENUM = {"tickets": [{**PLAN["tickets"][0], "task_type": "TIDY_UP"}]}


@pytest.mark.parametrize(
    ("malformed", "error_text"),
    [
        (answer("plan", MISSING_FIELD), "acceptance_criteria"),
        (answer("plan", WRONG_ENUM), "TIDY_UP"),
        ("I think the plan should have two tickets.", "plan"),  # no output field at all
    ],
)
def test_one_repair_round_carries_the_validation_error(malformed: str, error_text: str) -> None:
    backend = ListBackend([malformed, answer("plan", PLAN)])
    outcome = planner.run(call(backend), spec=PRD)
    assert outcome.repaired and outcome.calls == 2
    assert len(backend.requests) == 2
    first, second = (message_texts(r)[-1] for r in backend.requests)
    assert REPAIR_FIELD not in first
    assert f"[[ ## {REPAIR_FIELD} ## ]]" in second
    repair_section = second.split(f"[[ ## {REPAIR_FIELD} ## ]]", 1)[1]
    assert error_text in repair_section
    assert "UNIQUE-PRD-MARKER" in second  # the original inputs are sent again
    assert backend.requests[0].prompt_version == backend.requests[1].prompt_version


def test_a_semantic_validation_error_is_repaired_too() -> None:
    dangling = {"tickets": [{**PLAN["tickets"][1], "depends_on": ["NOPE-404"]}]}
    backend = ListBackend([answer("plan", dangling), answer("plan", PLAN)])
    outcome = planner.run(call(backend), spec=PRD)
    assert outcome.repaired
    assert "NOPE-404" in message_texts(backend.requests[1])[-1].split(REPAIR_FIELD, 1)[1]


def test_two_malformed_answers_fail_cleanly_with_malformed_output() -> None:
    backend = ListBackend([answer("plan", MISSING_FIELD), answer("plan", WRONG_ENUM), answer("plan", PLAN)])
    with pytest.raises(RoleOutputError) as raised:
        planner.run(call(backend, ticket_id="APP-PLAN-001"), spec=PRD)
    error = raised.value
    assert isinstance(error, AgentCallError)
    assert error.error_kind is ErrorKind.MALFORMED_OUTPUT
    assert error.result.error_kind is ErrorKind.MALFORMED_OUTPUT
    assert error.result.status is WorkerStatus.FAILED
    assert error.result.backend == "list"
    assert error.calls == 2 and len(backend.requests) == 2
    assert "TIDY_UP" in error.problem
    assert "malformed" in error.result.error_kind.value


# -- (d) prompt overrides ---------------------------------------------------------------------------------------


def test_a_repository_override_changes_the_prompt_sent_and_the_prompt_version(tmp_path: Path) -> None:
    default_backend = ListBackend([answer("verdict", VERDICT)])
    default = reviewer.run(call(default_backend, repo_root=tmp_path), ticket=TICKET, diff=DIFF)

    override = tmp_path / OVERRIDE_DIR / "reviewer.prompt.md"
    override.parent.mkdir(parents=True)
    override.write_text("UNIQUE-OVERRIDE-MARKER: review like a hawk.\n", encoding="utf-8")
    override_backend = ListBackend([answer("verdict", VERDICT)])
    overridden = reviewer.run(call(override_backend, repo_root=tmp_path), ticket=TICKET, diff=DIFF)

    assert (default.prompt_source, overridden.prompt_source) == ("package", "repository")
    assert "UNIQUE-OVERRIDE-MARKER" in override_backend.requests[0].system
    assert "UNIQUE-OVERRIDE-MARKER" not in default_backend.requests[0].system
    assert default_prompt(AgentRole.REVIEWER).text.splitlines()[0] not in override_backend.requests[0].system
    assert overridden.prompt_version != default.prompt_version
    assert override_backend.requests[0].prompt_version == overridden.prompt_version
    assert override_backend.requests[0].replay_key() != default_backend.requests[0].replay_key()


def test_an_empty_override_is_an_input_error(tmp_path: Path) -> None:
    override = tmp_path / OVERRIDE_DIR / "planner.prompt.md"
    override.parent.mkdir(parents=True)
    override.write_text("  \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"planner\.prompt\.md"):
        load_prompt(AgentRole.PLANNER, tmp_path)


def test_every_role_has_a_packaged_prompt() -> None:
    assert set(PROGRAMS) == set(AgentRole) - {AgentRole.IMPLEMENTER}
    for role, program_cls in PROGRAMS.items():
        assert program_cls.ROLE is role
        assert len(default_prompt(role).text) > 200
        assert program_cls().instructions == default_prompt(role).text


# -- (e) program state ------------------------------------------------------------------------------------------


def learned_reviewer() -> reviewer.ReviewerProgram:
    program = reviewer.ReviewerProgram()
    program.predict.demos = [dspy.Example(ticket="APP-FIX-001: x", scope="code", diff="+y", verdict=VERDICT)]
    return program


def test_save_and_load_state_keeps_the_version(tmp_path: Path) -> None:
    program = learned_reviewer()
    version = prompt_version(program)
    assert version != prompt_version(reviewer.ReviewerProgram())  # demos are part of the version
    path = tmp_path / "reviewer.json"
    assert save_state(program, path) == version

    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["conveyor"]["prompt_version"] == version
    assert saved["conveyor"]["role"] == "reviewer"

    fresh = reviewer.ReviewerProgram()
    assert load_state(fresh, path) == version
    assert prompt_version(fresh) == version
    assert len(fresh.predict.demos) == 1

    backend = ListBackend([answer("verdict", VERDICT)])
    outcome = reviewer.run(call(backend), ticket=TICKET, diff=DIFF, program=fresh)
    assert backend.requests[0].prompt_version == outcome.prompt_version == version
    assert "APP-FIX-001: x" in message_texts(backend.requests[0])[0]  # the demo is in the prompt


def test_a_repository_keeps_learned_state_under_automations_memory(tmp_path: Path) -> None:
    program = learned_reviewer()
    version = save_state(program, tmp_path / PROGRAM_STATE_DIR / "reviewer.json")
    backend = ListBackend([answer("verdict", VERDICT)])
    outcome = reviewer.run(call(backend, repo_root=tmp_path), ticket=TICKET, diff=DIFF)
    assert outcome.prompt_version == version
    assert "APP-FIX-001: x" in message_texts(backend.requests[0])[0]


def test_state_of_another_role_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reviewer.json"
    save_state(learned_reviewer(), path)
    with pytest.raises(InputError, match="reviewer"):
        load_state(planner.PlannerProgram(), path)


# -- the pure rules in conveyor.domain.roles ------------------------------------------------------------------


def test_review_decision_rules_of_architecture_section_8() -> None:
    approve = ReviewVerdict(decision=ReviewDecision.APPROVE)
    assert not approve.sends_back and approve.can_merge
    assert ReviewVerdict(decision=ReviewDecision.REQUEST_CHANGES).sends_back
    blocker = ReviewVerdict.model_validate({"decision": "approve", "findings": [{"severity": "blocker", "title": "b"}]})
    assert blocker.sends_back and blocker.blockers == 1
    high = ReviewVerdict.model_validate(
        {"decision": "approve-with-suggestions", "security_findings": [{"severity": "high", "title": "h"}]}
    )
    assert high.sends_back and not high.can_merge
    medium = ReviewVerdict.model_validate(
        {
            "decision": "approve-with-suggestions",
            "findings": [{"severity": "should-fix", "title": "s"}],
            "security_findings": [{"severity": "medium", "title": "m"}],
        }
    )
    assert not medium.sends_back and len(medium.suggestions) == 1
    assert medium.summary() == "Review: approve-with-suggestions (0 blockers, 0 critical, 0 high)"
    assert medium.model_dump()["sends_back"] is False


def test_review_scope_follows_the_timing_table() -> None:
    both = frozenset({ReviewScope.CODE, ReviewScope.SECURITY})
    assert review_scope(["README.md", "docs/guide.md", "docs/TASKS.md"]) == frozenset()
    assert review_scope(["pyproject.toml", "deploy/app.yml"]) == {ReviewScope.SECURITY}
    assert review_scope(["tests/test_app.py", "src/app.test.ts"]) == {ReviewScope.CODE}
    assert review_scope(["src/app.py"]) == both
    assert review_scope(["tests/test_app.py", "config.yaml"]) == both


def test_plan_rejects_cycles_and_unknown_dependencies() -> None:
    cyclic = {
        "tickets": [
            {**PLAN["tickets"][0], "depends_on": ["AUTH-001"]},
            PLAN["tickets"][1],
        ]
    }
    with pytest.raises(ValidationError, match="cycle"):
        Plan.model_validate(cyclic)
    with pytest.raises(ValidationError, match="not a ticket of this plan"):
        Plan.model_validate({"tickets": [{**PLAN["tickets"][0], "depends_on": ["ghost"]}]})


def test_doc_updates_stay_inside_the_repository_and_need_a_waiver_when_empty() -> None:
    with pytest.raises(ValidationError, match="inside"):
        DocUpdate(path="../etc/passwd", reason="r", content="x")
    with pytest.raises(ValidationError, match="waiver"):
        DocUpdates(checklist_complete=True)
    assert DocUpdates(checklist_complete=True, waiver="tests only").updates == []


def test_qa_triage_next_action_is_an_enum() -> None:
    backend = ListBackend([answer("triage", {**TRIAGE, "next_action": "panic"}), answer("triage", TRIAGE)])
    outcome = qa_triage.run(call(backend), gate_logs={"pytest": "boom"})
    assert outcome.output.next_action is QANextAction.FIX and outcome.repaired
