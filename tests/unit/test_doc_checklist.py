"""The documentation checklist: the shipped file, its parser (errors with file and line), globs, diffs, checks."""

from __future__ import annotations

from importlib import resources

import pytest

from conveyor.checklists import DOCUMENTATION_CHECKLIST, default_documentation_checklist
from conveyor.domain.doc_checklist import (
    Checklist,
    DocStatus,
    TicketChange,
    added_lines_by_path,
    check_documentation,
    check_ticket,
    compile_glob,
    glob_matches,
    parse_checklist,
    waiver_from_notes,
)
from conveyor.domain.errors import InputError

SOURCE = "automations/checklists/documentation.toml"


@pytest.fixture(scope="module")
def default() -> Checklist:
    return parse_checklist(default_documentation_checklist(), "conveyor/checklists/documentation.toml")


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        parse_checklist(text, SOURCE)
    return [str(p) for p in caught.value.problems]


def diff(path: str, *added: str) -> str:
    body = "\n".join(f"+{line}" for line in added)
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,0 +1,{len(added)} @@\n{body}\n"


# -- the shipped checklist ----------------------------------------------------------------------------------


def test_the_checklist_ships_as_package_data(default: Checklist) -> None:
    resource = resources.files("conveyor.checklists").joinpath(DOCUMENTATION_CHECKLIST)
    assert resource.is_file()
    assert [rule.id for rule in default.rules] == ["cli", "public-api", "configuration"]
    assert "docs/**" in default.docs_paths
    assert "tests/**" in default.ignore
    assert all(rule.satisfy for rule in default.rules)


# -- globs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/guide/x.md", True),  # no "/": a file name at any depth
        ("docs/**", "docs/a/b.txt", True),
        ("docs/**", "src/docs/a.txt", False),  # with "/": from the root
        ("docs/", "docs/a/b.txt", True),  # a trailing / means everything below
        ("**/cli/**", "cli/app.py", True),  # ** spans zero directories too
        ("**/cli/**", "src/pkg/cli/app.py", True),
        ("**/cli/**", "src/pkg/cli.py", False),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/pkg/a.py", False),  # * stays within a segment
        ("src/**/*.py", "src/a.py", True),
        ("README*", "pkg/README.rst", True),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file10.txt", False),
        ("_[!_]*.py", "pkg/_private.py", True),
        ("_[!_]*.py", "pkg/__init__.py", False),
        ("[ab].py", "b.py", True),
        (".env*", "deploy/.env.production", True),
        ("*.toml", "./pyproject.toml", True),  # paths are normalised
        ("src/*.py", "src\\a.py", True),
    ],
)
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty glob"),
        ("/docs/**", "starts with /"),
        ("docs\\*.md", "backslash"),
        ("docs//x", "empty, '.' or '..' segment"),
        ("../x", "empty, '.' or '..' segment"),
        ("a**/b", "'**' must be a whole path segment"),
        ("[abc.py", "unclosed '['"),
        ("[!].py", "empty character class"),  # "]" always closes a class
        ("x[]y]", "empty character class"),
    ],
)
def test_bad_globs(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("*", r"\*").replace(".", r"\.")):
        compile_glob(pattern)


# -- parse errors name the file and the line ----------------------------------------------------------------


MINIMAL = """version = 1

[docs]
paths = ["docs/**"]

[[rule]]
id = "cli"
paths = ["cli.py"]
"""


def test_a_minimal_checklist() -> None:
    checklist = parse_checklist(MINIMAL, SOURCE)
    assert checklist.source == SOURCE
    assert checklist.ignore == ()
    (rule,) = checklist.rules
    assert (rule.id, rule.description, rule.paths, rule.docs_paths, rule.diff_patterns) == (
        "cli",
        "cli",
        ("cli.py",),
        None,
        (),
    )


def test_toml_syntax_error_has_the_line() -> None:
    assert problems('version = 1\n[docs]\npaths = ["docs/**"\n\n[[rule]]\n') == [
        f"{SOURCE}:5: error: not valid TOML: Unclosed array"
    ]


def test_unknown_keys_have_their_lines() -> None:
    text = MINIMAL.replace("version = 1", 'version = 1\nrules_typo = "x"') + 'docs_path = ["x/**"]\n'
    assert problems(text) == [
        f"{SOURCE}:2: error: unknown key 'rules_typo' (allowed: docs, ignore, rule, version)",
        f"{SOURCE}:10: error: unknown key 'docs_path' in [[rule]] number 1 (allowed: description, diff_paths, "
        "diff_patterns, docs_paths, exclude, id, paths, satisfy)",
    ]


def test_bad_glob_in_a_multi_line_array_has_its_own_line() -> None:
    text = MINIMAL + '\n[[rule]]\nid = "config"\npaths = [\n    "*.toml",\n    "/etc/**",\n]\n'
    assert problems(text) == [
        f"{SOURCE}:14: error: paths: glob '/etc/**' starts with /: globs are relative to the repository root"
    ]


def test_bad_regex_duplicate_ids_and_types() -> None:
    text = (
        MINIMAL
        + "\n[[rule]]\nid = \"cli\"\ndiff_patterns = ['add_argument(']\n"
        + '\n[[rule]]\nid = "Bad Id"\npaths = "cli.py"\n'
        + '\n[[rule]]\nid = "empty"\n'
    )
    found = problems(text)
    assert found[0].startswith(f"{SOURCE}:12: error: diff_patterns: bad regular expression 'add_argument(': missing )")
    assert found[1:] == [
        f"{SOURCE}:11: error: rule id 'cli' is used twice (first at line 7)",
        f"{SOURCE}:15: error: rule number 3: id must be a lower-case name such as 'cli' (got 'Bad Id')",
        f"{SOURCE}:16: error: paths must be a list of strings",
        f"{SOURCE}:18: error: rule 'empty' needs paths or diff_patterns: it could never trigger",
    ]


def test_docs_table_and_version_are_checked() -> None:
    assert problems('version = 2\n[[rule]]\nid = "cli"\npaths = ["cli.py"]\n') == [
        f"{SOURCE}:1: error: version must be 1, got 2",
        f"{SOURCE}: error: no [docs] table: its paths say what counts as a documentation change",
    ]
    assert problems("[docs]\npaths = []\n") == [f"{SOURCE}:1: error: [docs] paths must list at least one glob"]
    assert problems('docs = "docs/**"\n') == [f"{SOURCE}:1: error: docs must be a table ([docs])"]
    assert problems('rule = "x"\n[docs]\npaths = ["docs/**"]\n') == [
        f"{SOURCE}:1: error: rule must be an array of tables ([[rule]])"
    ]


# -- inputs: diffs and waivers -------------------------------------------------------------------------------


def test_added_lines_follow_hunk_lengths() -> None:
    text = (
        "diff --git a/src/a.py b/src/a.py\n"
        "--- a/src/a.py\n"
        "+++ b/src/a.py\n"
        "@@ -1,3 +1,4 @@\n"
        " keep\n"
        "-old\n"
        "+new\n"
        "+++ x = 1  # an added line that looks like a header\n"
        "\n"  # an empty context line whose space was stripped
        "\\ No newline at end of file\n"
        "diff --git a/gone.py b/gone.py\n"
        "--- a/gone.py\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-bye\n"
        "diff --git a/new.md b/new.md\n"
        "--- /dev/null\n"
        "+++ b/new.md\n"
        "@@ -0,0 +1 @@\n"
        "+# Title\n"
    )
    assert added_lines_by_path(text) == {
        "src/a.py": ["new", "++ x = 1  # an added line that looks like a header"],
        "new.md": ["# Title"],
    }
    assert added_lines_by_path("") == {}


@pytest.mark.parametrize(
    ("notes", "waiver"),
    [
        (
            "Review: approve; Docs: waived (internal refactor (no behaviour change)); QA: pass",
            "Docs: waived (internal refactor (no behaviour change))",
        ),
        ("Docs: waived (deterministic mode, no steward)", "Docs: waived (deterministic mode, no steward)"),
        ("docs: WAIVED", "docs: WAIVED"),
        ("Docs: waived (unclosed reason", "Docs: waived (unclosed reason"),
        ("Docs: updated README.md", None),
        ("Docs: no update and no waiver", None),
        ("", None),
    ],
)
def test_waiver_from_notes(notes: str, waiver: str | None) -> None:
    assert waiver_from_notes(notes) == waiver


# -- the check -------------------------------------------------------------------------------------------------


def test_a_cli_change_without_docs_is_missing_and_says_what_would_satisfy_it(default: Checklist) -> None:
    result = check_ticket(default, TicketChange("CV-CQ-001", ("src/textkit/cli.py",)))
    assert result.status is DocStatus.MISSING
    (hit,) = result.hits
    assert (hit.rule_id, hit.paths, hit.status) == ("cli", ("src/textkit/cli.py",), DocStatus.MISSING)
    (missing,) = result.missing
    assert str(missing) == (
        "CV-CQ-001: CLI options changed (src/textkit/cli.py) with neither a docs change nor a waiver (cli): "
        "document the command or option in README* or docs/ (usage), or record 'Docs: waived (reason)'"
    )


def test_a_docs_change_or_a_waiver_satisfies_the_rule(default: Checklist) -> None:
    documented = check_ticket(default, TicketChange("CV-CQ-001", ("src/textkit/cli.py", "README.md")))
    assert documented.status is DocStatus.DOCUMENTED
    assert documented.hits[0].docs == ("README.md",)
    waived = check_ticket(default, TicketChange("CV-CQ-001", ("src/textkit/cli.py",), waiver="Docs: waived (x)"))
    assert (waived.status, waived.waiver) == (DocStatus.WAIVED, "Docs: waived (x)")
    blank = check_ticket(default, TicketChange("CV-CQ-001", ("src/textkit/cli.py",), waiver="   "))
    assert blank.status is DocStatus.MISSING


def test_diff_patterns_trigger_rules(default: Checklist) -> None:
    change = TicketChange(
        "CV-CQ-002",
        ("src/textkit/core.py", "src/textkit/_util.py", "tests/test_core.py"),
        diff=diff("src/textkit/core.py", "def slugify(text: str) -> str:", "    return os.environ['SEP']")
        + diff("src/textkit/_util.py", "def helper() -> None:")  # a private module: not public API
        + diff("tests/test_core.py", "def test_x() -> None:", "    parser.add_argument('--x')"),  # ignored
    )
    result = check_ticket(default, change)
    assert [(h.rule_id, h.paths, h.evidence) for h in result.hits] == [
        ("public-api", ("src/textkit/core.py",), ("src/textkit/core.py: def slugify(text: str) -> str:",)),
        ("configuration", ("src/textkit/core.py",), ("src/textkit/core.py: return os.environ['SEP']",)),
    ]


def test_cli_options_declared_outside_cli_files(default: Checklist) -> None:
    for line in (
        "parser.add_argument('--json')",
        "@app.command()",
        "    name: str = typer.Option('x'),",
        "@click.option('--n')",
    ):
        result = check_ticket(default, TicketChange("CV-CQ-003", ("src/tool/main.py",), diff("src/tool/main.py", line)))
        assert [h.rule_id for h in result.hits] == ["cli"], line
    private_method = diff("src/tool/main.py", "    def run(self) -> None:", "def _helper() -> None:")
    assert check_ticket(default, TicketChange("CV-CQ-003", ("src/tool/main.py",), private_method)).hits == ()


@pytest.mark.parametrize(
    ("paths", "rules"),
    [
        (("pyproject.toml",), ["configuration"]),
        (("deploy/.env.example",), ["configuration"]),
        (("src/app/settings.py",), ["configuration"]),
        (("src/app/__init__.py",), ["public-api"]),
        (("src/app/_internal/__init__.py",), []),
        (("tests/fixtures/config.yaml",), []),
        ((".github/workflows/ci.yml",), []),
        (("docs/mkdocs.yml",), []),  # a docs path never triggers a rule
        (("src/app/core.py",), []),  # no diff given: only paths count
        (("docs/usage.md", "CHANGELOG.md"), []),
    ],
)
def test_path_triggers(default: Checklist, paths: tuple[str, ...], rules: list[str]) -> None:
    result = check_ticket(default, TicketChange("CV-CQ-004", paths))
    assert [h.rule_id for h in result.hits] == rules
    assert (result.status is DocStatus.NOT_APPLICABLE) is (not rules)


def test_rule_docs_paths_narrow_what_satisfies_it() -> None:
    checklist = parse_checklist(
        MINIMAL.replace('paths = ["cli.py"]', 'paths = ["cli.py"]\ndocs_paths = ["docs/cli.md"]'), SOURCE
    )
    assert check_ticket(checklist, TicketChange("CV-CQ-001", ("cli.py", "docs/other.md"))).status is DocStatus.MISSING
    assert check_ticket(checklist, TicketChange("CV-CQ-001", ("cli.py", "docs/cli.md"))).status is DocStatus.DOCUMENTED


def test_the_report_lists_every_missing_item(default: Checklist) -> None:
    report = check_documentation(
        default,
        [
            TicketChange("CV-CQ-001", ("src/cli/app.py", "pyproject.toml")),
            TicketChange("CV-CQ-002", ("docs/x.md",)),
            TicketChange("CV-CQ-003", ("setup.cfg",), waiver="Docs: waived (dev tooling only)"),
        ],
    )
    assert not report.ok
    assert [(m.ticket_id, m.rule_id, m.paths) for m in report.missing] == [
        ("CV-CQ-001", "cli", ("src/cli/app.py",)),
        ("CV-CQ-001", "configuration", ("pyproject.toml",)),
    ]
    assert [t.status for t in report.tickets] == [DocStatus.MISSING, DocStatus.NOT_APPLICABLE, DocStatus.WAIVED]
    assert check_documentation(default, []).ok


def test_an_unknown_top_level_table_has_its_header_line() -> None:
    assert problems(MINIMAL + "\n[extra]\nx = 1\n") == [
        f"{SOURCE}:10: error: unknown key 'extra' (allowed: docs, ignore, rule, version)"
    ]
