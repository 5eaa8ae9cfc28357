"""Gate contracts and verdicts: each validation type, severities, counting rules, purity."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from conveyor.domain.gate import (
    CommandEvidence,
    Evidence,
    FileEvidence,
    GateContract,
    PathVariableError,
    count_sources,
    describe,
    expand,
    markdown_headings,
    required_evidence,
    verdict,
)

VARS = {"slug": "robot", "artifact_path": "docs/robot", "run_id": "RUN-20260119-1430"}


def contract(*validations: dict[str, Any], outputs: list[str] | None = None) -> GateContract:
    return GateContract.model_validate(
        {"gate": "G2", "name": "Research", "required_outputs": outputs or [], "validations": list(validations)}
    )


def text_file(path: str, text: str) -> FileEvidence:
    data = text.encode()
    return FileEvidence(path=path, exists=True, sha256=hashlib.sha256(data).hexdigest(), size=len(data), text=text)


def missing(path: str) -> FileEvidence:
    return FileEvidence(path=path, exists=False)


def evidence(*files: FileEvidence, commands: list[CommandEvidence] | None = None) -> Evidence:
    return Evidence(variables=VARS, files=list(files), commands=commands or [])


# --- variables -----------------------------------------------------------------------------------


def test_expand_fills_known_variables() -> None:
    assert expand("{artifact_path}/x/{slug}.md", VARS) == "docs/robot/x/robot.md"


def test_expand_unknown_variable_is_a_clear_error() -> None:
    with pytest.raises(PathVariableError, match=r"unknown path variable \{colour\}.*known: \{slug\}"):
        expand("{colour}/x.md", VARS)


def test_expand_variable_without_value_in_this_run() -> None:
    with pytest.raises(PathVariableError, match=r"\{ticket\}.*has no value"):
        expand("docs/{ticket}.md", VARS)


@pytest.mark.parametrize("template", ["/etc/passwd", "{artifact_path}/../../x", "  "])
def test_expanded_path_must_stay_in_the_repository(template: str) -> None:
    with pytest.raises(PathVariableError, match="relative to the repository"):
        expand(template, VARS)


def test_contract_rejects_unknown_variable_at_load() -> None:
    with pytest.raises(ValidationError, match=r"unknown path variable \{artefact\}"):
        contract(outputs=["{artefact}/x.md"])


def test_contract_rejects_bad_regex_and_unknown_type() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        contract({"type": "not_contains", "path": "a.md", "pattern": "(", "regex": True})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        contract({"type": "spellcheck", "path": "a.md"})


# --- file_exists and required outputs ------------------------------------------------------------


def test_required_output_present_passes_with_its_hash() -> None:
    c = contract(outputs=["{artifact_path}/BRIEF.md"])
    brief = text_file("docs/robot/BRIEF.md", "# Brief\n")
    v = verdict(c, evidence(brief))
    assert v.status == "PASS"
    assert v.required_outputs == ["docs/robot/BRIEF.md"]
    assert v.artifacts[0].sha256 == hashlib.sha256(b"# Brief\n").hexdigest()
    assert [(r.type, r.path, r.passed) for r in v.results] == [("file_exists", "docs/robot/BRIEF.md", True)]
    assert v.failure_reason is None


def test_required_output_missing_fails_with_reason() -> None:
    c = contract(outputs=["{artifact_path}/BRIEF.md"])
    v = verdict(c, evidence(missing("docs/robot/BRIEF.md")))
    assert v.status == "FAIL"
    assert v.failure_reason == "file_exists: docs/robot/BRIEF.md does not exist"
    assert v.artifacts[0].exists is False
    assert v.artifacts[0].sha256 is None


def test_explicit_file_exists_is_not_doubled_by_required_output() -> None:
    c = contract({"type": "file_exists", "path": "{artifact_path}/BRIEF.md"}, outputs=["{artifact_path}/BRIEF.md"])
    v = verdict(c, evidence(text_file("docs/robot/BRIEF.md", "x")))
    assert len(v.results) == 1


def test_evidence_not_collected_fails() -> None:
    v = verdict(contract({"type": "file_exists", "path": "a.md"}), evidence())
    assert v.status == "FAIL"
    assert "no evidence collected for a.md" in (v.failure_reason or "")


# --- min_sources -----------------------------------------------------------------------------------


def test_count_sources_counts_list_items_and_url_lines_once() -> None:
    text = "\n".join(
        [
            "# Sources",
            "- first",
            "* second https://example.org/a",  # a list item with a URL counts once
            "1. third",
            "12) fourth",
            "See https://example.org/b and http://example.org/c",  # two URLs on one line: once
            "plain prose line",
            "-not a list item",
            "- ",  # empty item
            "ftp://example.org/not-http",
        ]
    )
    assert count_sources(text) == 5


@pytest.mark.parametrize(("minimum", "status"), [(3, "PASS"), (4, "FAIL")])
def test_min_sources_threshold(minimum: int, status: str) -> None:
    c = contract({"type": "min_sources", "path": "{artifact_path}/SOURCES.md", "min": minimum})
    v = verdict(c, evidence(text_file("docs/robot/SOURCES.md", "- a\n- b\nhttps://c.example\n")))
    assert v.status == status
    assert v.results[0].detail == f"3 sources found, at least {minimum} required"


def test_min_sources_on_missing_file_fails() -> None:
    c = contract({"type": "min_sources", "path": "S.md", "min": 1})
    assert verdict(c, evidence(missing("S.md"))).failure_reason == "min_sources: S.md does not exist"


def test_min_sources_on_binary_file_fails_with_the_reason() -> None:
    c = contract({"type": "min_sources", "path": "S.md", "min": 1})
    binary = FileEvidence(path="S.md", exists=True, sha256="0" * 64, size=3, text=None, error="not UTF-8 text")
    assert verdict(c, evidence(binary)).failure_reason == "min_sources: S.md: not UTF-8 text"


# --- contains_headings -----------------------------------------------------------------------------


def test_markdown_headings_normalises_and_skips_code_fences() -> None:
    text = (
        "# Problem ##\n##   GOALS  \n   ### Non-goals #\n"
        "```bash\n# not a heading\n```\n#NoSpace\n####### seven\n## C#\n"
    )
    assert markdown_headings(text) == ["problem", "goals", "non-goals", "c#"]


def test_contains_headings_case_insensitive_and_reports_missing() -> None:
    c = contract(
        {"type": "contains_headings", "path": "B.md", "headings": ["Problem", "## goals", "Risks", "Open questions"]}
    )
    v = verdict(c, evidence(text_file("B.md", "# PROBLEM\n\n## Goals ##\n\ntext\n")))
    assert v.status == "FAIL"
    assert v.results[0].detail == "missing headings: Risks, Open questions"


def test_contains_headings_pass() -> None:
    c = contract({"type": "contains_headings", "path": "B.md", "headings": ["Problem", "Goals"]})
    v = verdict(c, evidence(text_file("B.md", "## Goals\n# problem\n")))
    assert v.status == "PASS"
    assert v.results[0].detail == "all required headings present"


# --- not_contains ----------------------------------------------------------------------------------


def test_not_contains_warn_keeps_the_gate_passing() -> None:
    c = contract({"type": "not_contains", "path": "S.md", "pattern": "TODO", "on_match": "warn"})
    v = verdict(c, evidence(text_file("S.md", "ok\nTODO: cite\nfine\nanother TODO\n")))
    assert v.status == "PASS"
    assert v.results[0].passed is False
    assert v.results[0].severity == "warning"
    assert v.warnings == ["'TODO' found on 2 line(s): 2, 4"]
    assert v.failure_reason is None


def test_not_contains_fail_fails_the_gate() -> None:
    c = contract({"type": "not_contains", "path": "S.md", "pattern": "TODO", "on_match": "fail"})
    v = verdict(c, evidence(text_file("S.md", "TODO\n")))
    assert v.status == "FAIL"
    assert v.warnings == []
    assert v.failure_reason == "not_contains: 'TODO' found on 1 line(s): 1"


def test_not_contains_literal_versus_regex() -> None:
    literal = contract({"type": "not_contains", "path": "S.md", "pattern": "a.c", "on_match": "fail"})
    regex = contract({"type": "not_contains", "path": "S.md", "pattern": "a.c", "regex": True, "on_match": "fail"})
    doc = evidence(text_file("S.md", "abc\n"))
    assert verdict(literal, doc).status == "PASS"
    assert verdict(regex, doc).status == "FAIL"


def test_not_contains_absent_pattern_passes() -> None:
    c = contract({"type": "not_contains", "path": "S.md", "pattern": "TBD", "on_match": "fail"})
    v = verdict(c, evidence(text_file("S.md", "done\n")))
    assert v.status == "PASS"
    assert v.results[0].passed is True


# --- command ---------------------------------------------------------------------------------------


def test_command_argv_is_expanded_in_the_request() -> None:
    c = contract({"type": "command", "argv": ["test", "-s", "{artifact_path}/D.md"], "timeout_s": 5, "cwd": "docs"})
    request = required_evidence(c, VARS)
    assert request.commands[0].argv == ["test", "-s", "docs/robot/D.md"]
    assert request.commands[0].cwd == "docs"
    assert request.commands[0].timeout_s == 5


def _run(exit_code: int | None, *, timed_out: bool = False, error: str | None = None) -> CommandEvidence:
    return CommandEvidence(
        argv=["make", "check"], exit_code=exit_code, timed_out=timed_out, output_tail="line 1\nboom\n", error=error
    )


@pytest.mark.parametrize(
    ("ran", "status", "detail"),
    [
        (_run(0), "PASS", "`make check` exited 0"),
        (_run(2), "FAIL", "`make check` exited 2, expected 0: boom"),
        (_run(None, timed_out=True), "FAIL", "`make check` timed out after 60s"),
        (_run(None, error="No such file or directory: make"), "FAIL", "could not run: No such file"),
    ],
)
def test_command_results(ran: CommandEvidence, status: str, detail: str) -> None:
    c = contract({"type": "command", "argv": ["make", "check"]})
    v = verdict(c, evidence(commands=[ran]))
    assert v.status == status
    assert detail in v.results[0].detail


def test_command_expect_exit() -> None:
    c = contract({"type": "command", "argv": ["make", "check"], "expect_exit": 2})
    assert verdict(c, evidence(commands=[_run(2)])).status == "PASS"


# --- purity and the whole verdict ------------------------------------------------------------------


def test_verdict_depends_only_on_the_evidence() -> None:
    c = contract(
        {"type": "min_sources", "path": "{artifact_path}/S.md", "min": 2},
        {"type": "not_contains", "path": "{artifact_path}/S.md", "pattern": "TODO"},
        outputs=["{artifact_path}/S.md"],
    )
    good = evidence(text_file("docs/robot/S.md", "- a\n- b\n"))
    bad = evidence(text_file("docs/robot/S.md", "- a\nTODO\n"))
    first, second = verdict(c, good), verdict(c, good)
    assert first == second
    assert first.model_dump() == second.model_dump()
    assert verdict(c, bad).status == "FAIL"
    assert verdict(c, good).status == "PASS"


def test_required_evidence_lists_each_file_once() -> None:
    c = contract(
        {"type": "min_sources", "path": "{artifact_path}/S.md", "min": 2},
        {"type": "contains_headings", "path": "{artifact_path}/D.md", "headings": ["A"]},
        outputs=["{artifact_path}/S.md", "{artifact_path}/D.md"],
    )
    assert required_evidence(c, VARS).files == ["docs/robot/S.md", "docs/robot/D.md"]


def test_required_evidence_raises_for_missing_variable() -> None:
    with pytest.raises(PathVariableError, match="ticket"):
        required_evidence(contract(outputs=["{ticket}.md"]), VARS)


def test_validation_result_serialises_pass_alias() -> None:
    v = verdict(contract(outputs=["a.md"]), evidence(text_file("a.md", "x")))
    data = v.results[0].model_dump(mode="json")
    assert data["pass"] is True
    assert "passed" not in data


def test_describe_in_plain_words() -> None:
    c = contract(
        {"type": "min_sources", "path": "{artifact_path}/S.md", "min": 3},
        {"type": "not_contains", "path": "{artifact_path}/S.md", "pattern": "TODO", "on_match": "warn"},
        {"type": "command", "argv": ["git", "diff", "--check"], "timeout_s": 30},
    )
    words = [describe(v, VARS) for v in c.validations]
    assert words == [
        "docs/robot/S.md lists at least 3 sources (list items or lines with a URL)",
        "docs/robot/S.md does not contain the text 'TODO' (a match is a warning)",
        "the command `git diff --check` exits with 0 within 30s",
    ]
