"""Review report folders → findings, deterministically (seed 001 Steps 1-2; issue 4 behaviour 2)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conveyor.adapters.review_report import parse_report, parse_report_texts
from conveyor.domain.errors import InputError
from conveyor.domain.findings import Finding, ParsedReport
from conveyor.domain.ticket import Severity

FIXTURES = Path(__file__).parent.parent / "fixtures" / "reports"
C, H, M, L, INFO = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO
Q1 = "docs/reports/q1-review"
Q1_FILES = {
    "00": "00-executive-summary.md",
    "01": "01-security-review.md",
    "02": "02-code-quality-review.md",
    "03": "03-qa-test-coverage.md",
    "04": "04-performance-and-docs.md",
}


def _install(repo: Path, name: str) -> str:
    """Copy fixture report ``name`` to ``repo``/docs/reports/``name``; the folder as parse_report takes it."""
    shutil.copytree(FIXTURES / name, repo / "docs" / "reports" / name)
    return f"docs/reports/{name}"


def _problems(exc: pytest.ExceptionInfo[InputError]) -> list[tuple[str, int | None, str]]:
    return [(p.path, p.line, p.message) for p in exc.value.problems]


def _f(
    finding_id: str,
    severity: Severity,
    title: str,
    *,
    at: tuple[str, int],
    description: str = "",
    component: str | None = None,
    file: str | None = None,
    lines: str | None = None,
    security: bool = False,
) -> Finding:
    return Finding(
        id=finding_id,
        severity=severity,
        title=title,
        description=description,
        component=component,
        file=file,
        lines=lines,
        security=security,
        source=f"{Q1}/{Q1_FILES[at[0]]}",
        line=at[1],
    )


SEC_API_1_DESCRIPTION = """**CWE:** CWE-89

The `q` parameter is concatenated into the SQL string.

```ts
const rows = await db.query(`SELECT * FROM items WHERE name LIKE '%${q}%'`);
```

**Recommendation:** use parameterised queries."""

Q1_EXPECTED = [
    # 01: headings with field lines, a key-value table, severity section headings, an inline (Critical) tag
    _f(
        "SEC-API-1",
        C,
        "SQL injection in the search endpoint",
        description=SEC_API_1_DESCRIPTION,
        component="api",
        file="api/src/routes/search.ts",
        lines="45-67",
        security=True,
        at=("01", 7),
    ),
    _f(
        "SEC-AUTH-2",
        C,
        "JWT signing secret committed to the repository",
        description="The secret is a string literal; anyone with read access can forge tokens.",
        component="api",
        file="api/src/auth/jwt.ts",
        lines="12-14",
        security=True,
        at=("01", 23),
    ),
    _f(
        "SEC-INFRA-3",
        C,
        "Database port open to the internet",
        description="The security group allows 0.0.0.0/0 on port 5432.",
        component="infra",
        file="infra/terraform/network.tf",
        lines="88-102",
        security=True,
        at=("01", 33),
    ),
    _f(
        "SEC-WEB-4",
        H,
        "Stored XSS in comment rendering",
        description="`dangerouslySetInnerHTML` renders user input without sanitising it.",
        component="web",
        file="web/src/components/Comment.tsx",
        lines="30-41",
        security=True,
        at=("01", 42),
    ),
    _f(
        "SEC-API-5",
        H,
        "No rate limiting on login",
        component="api",
        file="api/src/routes/auth.ts",
        security=True,
        at=("01", 49),
    ),
    _f(
        "DEP-1",
        M,
        "Vulnerable lodash version",
        description="lodash 4.17.15 is affected by prototype pollution.",
        file="package.json",
        security=True,  # read in a security review file
        at=("01", 59),
    ),
    # 02: tables, columns in any order, file:lines in one cell, P-levels, a Security category
    _f(
        "CQ-API-1",
        H,
        "Unbounded retry loop in the sync worker",
        component="api",
        file="api/src/services/sync.ts",
        lines="120-188",
        at=("02", 5),
    ),
    _f("CQ-WEB-2", M, "`App` component is 900 lines long", component="web", file="web/src/App.tsx", at=("02", 6)),
    _f(
        "CQ-WEB-3",
        M,
        "Fetch hook ignores aborts",
        component="web",
        file="web/src/hooks/useFetch.ts",
        lines="10-20",
        at=("02", 7),
    ),
    _f("CQ-API-4", L, "Pool size is a magic number", component="api", file="api/src/db/pool.ts", at=("02", 8)),
    _f(
        "CQ-WEB-5",
        M,
        "Two date formatters do the same thing",
        file="web/src/utils/date.ts",
        lines="5-30",
        at=("02", 14),
    ),
    _f(
        "CQ-API-6",
        H,
        "Error responses leak stack traces",
        file="api/src/routes/users.ts",
        lines="14",
        security=True,  # Category: Security
        at=("02", 15),
    ),
    # 03: bullets under severity headings, tags before/after the id, a checkbox, indented field lines
    _f("TEST-001", H, "No tests for the payment webhook", file="api/src/routes/webhook.ts", at=("03", 7)),
    _f(
        "TEST-002",
        H,
        "Auth middleware has no negative tests",
        description="- Add tests for expired, malformed and missing tokens.",
        component="api",
        file="api/src/middleware/auth.ts",
        lines="1-40",
        at=("03", 8),
    ),
    _f("TEST-003", M, "Flaky end-to-end checkout test", file="web/e2e/checkout.spec.ts", lines="22", at=("03", 14)),
    _f("TEST-004", M, "Snapshot tests assert nothing useful", component="web", at=("03", 15)),
    _f("TEST-005", L, "No coverage report in CI", file=".github/workflows/ci.yml", at=("03", 20)),
    # 04: numbered and tagged headings, a numbered list with a linked id, P2, Info
    _f(
        "PERF-DB-1",
        H,
        "N+1 queries on the orders page",
        description="Each order loads its customer separately: 200 orders cost 201 queries.",
        component="api",
        file="api/src/repositories/orders.ts",
        lines="77-95",
        at=("04", 5),
    ),
    _f(
        "PERF-WEB-2",
        M,
        "Bundle ships every moment.js locale",
        description="The production bundle includes all 160 moment locales (~330 KB).",
        component="web",
        at=("04", 12),
    ),
    _f("PERF-API-3", M, "Responses are not compressed", file="api/src/server.ts", lines="12", at=("04", 20)),
    _f("DOC-1", L, "README setup steps are outdated", file="README.md", at=("04", 21)),
    _f("DOC-2", INFO, "Architecture diagram is missing the queue", at=("04", 22)),
]


# -- the mixed-format fixture ----------------------------------------------------------------------------


def test_mixed_report_gives_exactly_the_expected_findings(tmp_path: Path) -> None:
    report = parse_report(tmp_path, _install(tmp_path, "q1-review"))
    assert report.name == "q1-review"
    assert list(report.findings) == Q1_EXPECTED
    assert report.summary is not None
    assert report.summary.source == f"{Q1}/00-executive-summary.md"
    assert report.summary.line == 12
    assert report.summary.counts == {C: 3, H: 7, M: 8, L: 3, INFO: 1}
    assert report.summary_mismatches() == {}
    assert len({f.severity for f in report.findings} - {INFO}) >= 3  # 3+ phases' worth


def test_an_id_in_the_summary_and_in_a_detailed_section_is_one_finding(tmp_path: Path) -> None:
    report = parse_report(tmp_path, _install(tmp_path, "q1-review"))
    ids = [f.id for f in report.findings]
    assert len(ids) == len(set(ids)) == 22
    sec = next(f for f in report.findings if f.id == "SEC-API-1")
    # the summary row said "SQL injection in search"; the detailed heading's title and place win
    assert (sec.title, sec.source, sec.line) == (
        "SQL injection in the search endpoint",
        f"{Q1}/01-security-review.md",
        7,
    )


def test_a_report_is_found_by_name_under_docs_reports(tmp_path: Path) -> None:
    _install(tmp_path, "q1-review")
    assert parse_report(tmp_path, "q1-review") == parse_report(tmp_path, Q1)


def test_parsing_is_deterministic_whatever_the_file_order(tmp_path: Path) -> None:
    folder = _install(tmp_path, "q1-review")
    first = parse_report(tmp_path, folder)
    files = [(f"{Q1}/{p.name}", p.read_text(encoding="utf-8")) for p in (tmp_path / folder).iterdir()]
    assert parse_report_texts("q1-review", sorted(files)) == first
    assert parse_report_texts("q1-review", sorted(files, reverse=True)) == first
    order = [(Path(f.source).name, f.line) for f in first.findings]
    assert order == sorted(order)
    assert parse_report(tmp_path, folder).model_dump_json() == first.model_dump_json()


# -- executive summary counts ----------------------------------------------------------------------------


def test_counts_that_disagree_are_parsed_and_reported_exactly(tmp_path: Path) -> None:
    report = parse_report(tmp_path, _install(tmp_path, "count-mismatch"))
    assert [(f.id, f.severity) for f in report.findings] == [
        ("SEC-API-1", C),
        ("CQ-API-2", H),
        ("CQ-API-3", H),
        ("CQ-WEB-4", M),
        ("DOC-5", L),
    ]
    assert report.summary is not None
    # the first block (lines 5-9, a blank line inside it) is the summary; "Critical: 9" per area is not read
    assert (report.summary.source, report.summary.line) == ("docs/reports/count-mismatch/00-executive-summary.md", 5)
    assert report.summary.counts == {C: 1, H: 3, M: 1, L: 0}
    assert report.summary_mismatches() == {H: (3, 2), L: (0, 1)}


def _summary(text: str) -> ParsedReport:
    finding = "# Findings\n\n- **CQ-1** (Low): something — a.ts\n"
    return parse_report_texts("r", [("r/00-summary.md", text), ("r/01-findings.md", finding)])


@pytest.mark.parametrize(
    ("text", "line", "counts"),
    [
        ("| Severity | Count |\n|---|---|\n| Critical | 2 |\n| High | 5 |\n| Total | 7 |\n", 3, {C: 2, H: 5}),
        ("| Count | Risk level |\n|---|---|\n| 1 | P0 |\n| 4 | p2 |\n", 3, {C: 1, M: 4}),
        ("Intro.\n\nCritical: 2\nHigh: 5\nmedium = 1\n", 3, {C: 2, H: 5, M: 1}),
        (
            "- **Critical:** 2\n- **High**: 5\n- 🟡 Medium findings — 3\n* Informational: 4\n",
            1,
            {C: 2, H: 5, M: 3, INFO: 4},
        ),
        (
            "| Area | Critical | High | Low |\n|--|--|--|--|\n| api | 1 | 2 | - |\n| web | 0 | 1 | 4 |\n",
            1,
            {C: 1, H: 3, L: 4},
        ),
        ("| Area | Critical | High |\n|--|--|--|\n| api | 1 | 2 |\n| **Total** | 3 | 9 |\n", 1, {C: 3, H: 9}),
        ("High: 5\n\n| Severity | Count |\n|---|---|\n| High | 4 |\n", 1, {H: 5}),
    ],
)
def test_summary_count_formats(text: str, line: int, counts: dict[Severity, int]) -> None:
    report = _summary(text)
    assert report.summary is not None
    assert (report.summary.source, report.summary.line, report.summary.counts) == ("r/00-summary.md", line, counts)


def test_no_counts_and_counts_outside_a_summary_file_are_not_a_summary() -> None:
    assert _summary("# Summary\n\nNothing to count.\n").summary is None
    text = "# Findings\n\nHigh: 3\n\n- **CQ-1** (Low): something\n"
    assert parse_report_texts("r", [("r/01-findings.md", text)]).summary is None


def test_one_severity_counted_twice_in_a_block_must_agree() -> None:
    with pytest.raises(InputError) as exc:
        _summary("- High: 5\n- Critical: 1\n- High: 4\n")
    assert _problems(exc) == [("r/00-summary.md", 3, "high count 4 here conflicts with 5 at r/00-summary.md:1")]


# -- errors ----------------------------------------------------------------------------------------------


def test_malformed_report_names_every_problem_with_file_and_line(tmp_path: Path) -> None:
    folder = _install(tmp_path, "malformed")
    with pytest.raises(InputError) as exc:
        parse_report(tmp_path, folder)
    sec = f"{folder}/01-security-review.md"
    malformed = "malformed finding id {!r} (expected upper-case words and a number: SEC-API-1)"
    no_severity = (
        "{}: the finding has no severity (give a Severity column, a (High) tag, a **Severity:** line, or list it "
        "under a severity heading)"
    )
    assert _problems(exc) == [
        (f"{folder}/00-summary.md", 5, "count 'two' is not a number"),
        (sec, 6, malformed.format("SEC-API")),
        (sec, 7, malformed.format("sec-api-3")),
        (sec, 8, "table row has 5 cells, the header has 4"),
        (sec, 9, "table row has no finding id"),
        (sec, 10, no_severity.format("SEC-API-6")),
        (sec, 11, "SEC-API-7: unknown severity 'Urgent' (expected Critical, High, Medium, Low, Info or P0-P3)"),
        (sec, 13, malformed.format("SEC_WEB_8")),  # a heading with a **Severity:** line
        (sec, 17, malformed.format("SEC-WEB")),  # a bullet with a [High] tag
        (sec, 18, no_severity.format("SEC-WEB-9")),
    ]
    assert f"{sec}:8: error: table row has 5 cells" in str(exc.value)


def test_merge_conflicts_name_both_places(tmp_path: Path) -> None:
    folder = _install(tmp_path, "conflict")
    with pytest.raises(InputError) as exc:
        parse_report(tmp_path, folder)
    assert _problems(exc) == [
        (
            f"{folder}/01-security-review.md",
            5,
            f"SEC-1: severity high here (from the section heading at line 3) conflicts with critical at "
            f"{folder}/00-executive-summary.md:5",
        ),
        (
            f"{folder}/02-code-quality.md",
            3,
            f"CQ-2: file api/y.ts here conflicts with api/x.ts at {folder}/00-executive-summary.md:6",
        ),
    ]  # CQ-3's ./api/n.ts and api/n.ts are the same path


def test_conflicts_inside_one_place() -> None:
    text = (
        "# Review\n\n### CQ-1: Title (High)\n\n**Severity:** Low\n**File:** a.ts:10\n**Lines:** 12-20\n"
        "**Component:** api\n- Component: web\n"
    )
    with pytest.raises(InputError) as exc:
        parse_report_texts("r", [("r/01.md", text)])
    assert _problems(exc) == [
        ("r/01.md", 5, "CQ-1: severity low here conflicts with high at r/01.md:3"),
        ("r/01.md", 7, "CQ-1: lines 12-20 here conflicts with 10 at r/01.md:6"),
        ("r/01.md", 9, "CQ-1: component web here conflicts with api at r/01.md:8"),
    ]


def test_a_lines_field_may_refine_a_single_line_location() -> None:
    text = "### CQ-1: Title\n\n**Severity:** High\n**File:** a.ts:45\n**Lines:** 45-67\n"
    (finding,) = parse_report_texts("r", [("r/01.md", text)]).findings
    assert (finding.file, finding.lines) == ("a.ts", "45-67")


def test_a_missing_folder_or_one_without_markdown_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        parse_report(tmp_path, "nope")
    assert _problems(exc) == [("nope", None, "report folder not found (looked for nope and docs/reports/nope)")]
    (tmp_path / "docs/reports/empty").mkdir(parents=True)
    (tmp_path / "docs/reports/empty/notes.txt").write_text("not markdown\n")
    with pytest.raises(InputError) as exc:
        parse_report(tmp_path, "empty")
    assert _problems(exc) == [("docs/reports/empty", None, "the report folder holds no .md file")]


def test_an_unreadable_file_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    folder = _install(tmp_path, "q1-review")
    (tmp_path / folder / "05-binary.md").write_bytes(b"# Broken\n\xff\xfe\n")
    (tmp_path / folder / "06-more.md").write_text("- **CQ-9**: no severity here\n")
    with pytest.raises(InputError) as exc:
        parse_report(tmp_path, folder)
    problems = _problems(exc)
    assert [(p, line) for p, line, _ in problems] == [(f"{folder}/05-binary.md", None), (f"{folder}/06-more.md", 1)]
    assert problems[0][2].startswith("not UTF-8 text")


@pytest.mark.skipif(os.name != "posix", reason="needs symbolic links")
def test_a_file_that_cannot_be_opened_is_an_error(tmp_path: Path) -> None:
    folder = _install(tmp_path, "count-mismatch")
    loop = tmp_path / folder / "02-loop.md"
    loop.symlink_to(loop)
    gone = tmp_path / folder / "03-gone.md"
    gone.symlink_to(tmp_path / "missing.md")
    with pytest.raises(InputError) as exc:
        parse_report(tmp_path, folder)
    assert _problems(exc) == [
        (f"{folder}/02-loop.md", None, "cannot read the file: Too many levels of symbolic links"),
        (f"{folder}/03-gone.md", None, "file not found"),
    ]


# -- accepted formats, one place at a time ---------------------------------------------------------------


def _one(text: str, name: str = "r/01-review.md") -> Finding:
    (finding,) = parse_report_texts("r", [(name, text)]).findings
    return finding


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # bullets
        ("- **SEC-API-1** (Critical): Title — path/file.ts:45-67", ("SEC-API-1", C, "Title", "path/file.ts", "45-67")),
        ("* [High] CQ-WEB-3: title (web/src/x.tsx L10-20)", ("CQ-WEB-3", H, "title", "web/src/x.tsx", "10-20")),
        ("- CQ-1: Title (P3)", ("CQ-1", L, "Title", None, None)),
        ("- CQ-1 (Severity: medium): Title in `a/b.py:7`", ("CQ-1", M, "Title", "a/b.py", "7")),
        ("- `CQ-1` — High — Title — a.ts#L3-L9", ("CQ-1", H, "Title", "a.ts", "3-9")),
        ("1. [CQ-1](#cq-1) [moderate] Title at lib/x.rb:3", ("CQ-1", M, "Title", "lib/x.rb", "3")),
        ("- [ ] **[Low]** CQ-1: Unchecked box", ("CQ-1", L, "Unchecked box", None, None)),
        ("- **CQ-1** Title without separator (Info)", ("CQ-1", INFO, "Title without separator", None, None)),
        ("- **CQ-1: Bold around everything** (High)", ("CQ-1", H, "Bold around everything", None, None)),
        ("- CQ-1: Uses `eval` on input (High)", ("CQ-1", H, "Uses `eval` on input", None, None)),
        ("- High: CQ-1 - Bare severity word first", ("CQ-1", H, "Bare severity word first", None, None)),
        ("- 🟠 **High** — CQ-1: Emoji badge and bold tag", ("CQ-1", H, "Emoji badge and bold tag", None, None)),
        ("- **CQ-1** — **Critical** — Title", ("CQ-1", C, "Title", None, None)),
        # headings
        ("### 🔴 CRITICAL: CQ-1 — Word tag after a badge", ("CQ-1", C, "Word tag after a badge", None, None)),
        ("### SEC-API-1: Title\n\n**Severity:** Critical\n**File:** path:45", ("SEC-API-1", C, "Title", "path", "45")),
        ("## 2.1 CQ-1 — Title [HIGH]", ("CQ-1", H, "Title", None, None)),
        ("#### Finding CQ-1: Title (Low) — src/a.go:1-2 ####", ("CQ-1", L, "Title", "src/a.go", "1-2")),
        ("### [P0] CQ-1 Title", ("CQ-1", C, "Title", None, None)),
        # tables
        ("| ID | Severity | Title |\n|---|---|---|\n| CQ-1 | Low | Title |", ("CQ-1", L, "Title", None, None)),
        (
            "| Location | Ref | Risk | Issue |\n|-|-|-|-|\n| `a/b.ts:3-4` | CQ-1 | HIGH | Title |",
            ("CQ-1", H, "Title", "a/b.ts", "3-4"),
        ),
        ("| Finding | Severity |\n|---|---|\n| **CQ-1**: Title | Medium |", ("CQ-1", M, "Title", None, None)),
        ("| ID | Severity | Title |\n|-|-|-|\n| [CQ-1](#cq-1) | 🔴 **CRITICAL** | T |", ("CQ-1", C, "T", None, None)),
        (
            "| ID | Sev | Title | File |\n|-|-|-|-|\n| CQ-1 | Low | T | Dockerfile:3 |",
            ("CQ-1", L, "T", "Dockerfile", "3"),
        ),
        (
            "| Issue ID | Priority | Summary | Path | Line(s) |\n|-|-|-|-|-|\n| CQ-1 | P1 | Title | x/y.py | L5 |",
            ("CQ-1", H, "Title", "x/y.py", "5"),
        ),
    ],
)
def test_accepted_finding_formats(text: str, expected: tuple[str, Severity, str, str | None, str | None]) -> None:
    finding = _one(text)
    assert (finding.id, finding.severity, finding.title, finding.file, finding.lines) == expected


def test_section_headings_give_severity_to_what_stands_under_them() -> None:
    text = (
        "# Review\n\n## 🔴 Critical Issues (1)\n\n- CQ-1: one\n\n### CQ-2: two\n\n## High severity\n\n"
        "| ID | Title |\n|---|---|\n| CQ-3 | three |\n\n## Critical and High\n\n- CQ-4 (Low): four\n"
    )
    report = parse_report_texts("r", [("r/01.md", text)])
    assert [(f.id, f.severity) for f in report.findings] == [("CQ-1", C), ("CQ-2", C), ("CQ-3", H), ("CQ-4", L)]


def test_text_that_is_not_a_finding() -> None:
    text = """# Notes

- SHA-256 should replace MD5 in the token store
- UTF-8: names are handled
- CWE-79: Improper neutralization of input
- See CQ-1 for details
- [x] HTTP-2 upgrade done
- API-level rate limiting is out of scope (High)
- **Note:** nothing here

```
### CQ-7: inside a fence
- CQ-8 (High): also inside the fence
| ID | Severity |
|----|----------|
| CQ-9 | High |
```

| Metric | Value |
|--------|-------|
| Coverage | 41% |

- **CQ-1** (Low): the only finding
"""
    assert [f.id for f in parse_report_texts("r", [("r/01.md", text)]).findings] == ["CQ-1"]


def test_a_heading_section_collects_fields_and_description_and_leaves_nested_findings_alone() -> None:
    text = """# Review

### CQ-1: Parent finding

| Attribute | Detail |
|-----------|--------|
| Severity  | Medium |
| Files     | a/one.ts:3; b/two.ts:4 |

Explains the problem.

#### Remediation

Do the thing.

- **CQ-2** (Low): nested finding — c/three.ts
  - Component: web
---

## Next section

Not part of CQ-1.
"""
    report = parse_report_texts("r", [("r/01.md", text)])
    parent, nested = report.findings
    assert parent.model_dump(exclude={"source"}) == {
        "id": "CQ-1",
        "severity": M,
        "title": "Parent finding",
        "description": "Explains the problem.\n\n#### Remediation\n\nDo the thing.\n\nOther locations: b/two.ts:4",
        "component": None,
        "file": "a/one.ts",
        "lines": "3",
        "security": False,
        "line": 3,
    }
    assert (nested.id, nested.severity, nested.file, nested.component, nested.line) == (
        "CQ-2",
        L,
        "c/three.ts",
        "web",
        16,
    )


def test_a_finding_without_title_takes_the_first_line_of_its_description() -> None:
    finding = _one("### CQ-1\n\n**Severity:** Low\n\nThe cache never expires entries.\nMore detail.\n")
    assert (finding.title, finding.description) == (
        "The cache never expires entries.",
        "The cache never expires entries.\nMore detail.",
    )
    with pytest.raises(InputError) as exc:
        _one("- CQ-1 (Low)\n")
    assert _problems(exc) == [("r/01-review.md", 1, "CQ-1: the finding has no title")]


@pytest.mark.parametrize(
    ("name", "text", "security"),
    [
        ("r/01-review.md", "- SEC-1 (Low): id starts with SEC", True),
        ("r/01-review.md", "- SECRETS-1 (Low): id starts with SEC", True),
        ("r/02-Security-Review.md", "- CQ-1 (Low): in a security review file", True),
        ("r/01-review.md", "| ID | Sev | Title | Type |\n|-|-|-|-|\n| CQ-1 | Low | t | Vulnerability |", True),
        ("r/01-review.md", "### CQ-1: t\n\n**Severity:** Low\n**OWASP:** A03", True),
        ("r/01-review.md", "- CQ-1 (Low): Unsanitised HTML (CWE-79)", True),
        ("r/01-review.md", "- CQ-1 (Low): plain quality finding", False),
        ("r/01-review.md", "| ID | Sev | Title | Category |\n|-|-|-|-|\n| CQ-1 | Low | t | Performance |", False),
    ],
)
def test_security_rule(name: str, text: str, security: bool) -> None:
    assert _one(text, name).security is security


def test_the_detailed_place_wins_and_fills_from_the_others() -> None:
    summary = "| ID | Severity | Title | Component |\n|---|---|---|---|\n| CQ-1 | High | Short | API |\n"
    bullet = "- CQ-1: cross-reference from a later file (see the detail)\n"
    detail = "# Quality\n\n### CQ-1: The long title\n\n**File:** a.ts\n\nDetails.\n"
    files = [("r/00-summary.md", summary), ("r/01-quality.md", detail), ("r/02-plan.md", bullet)]
    (finding,) = parse_report_texts("r", files).findings
    assert finding.model_dump() == {
        "id": "CQ-1",
        "severity": H,  # from the summary
        "title": "The long title",
        "description": "Details.",
        "component": "API",  # from the summary
        "file": "a.ts",
        "lines": None,
        "security": False,
        "source": "r/01-quality.md",
        "line": 3,
    }


def test_crlf_and_a_byte_order_mark_are_read() -> None:
    text = "\ufeff# Review\r\n\r\n### CQ-1: Title\r\n\r\n**Severity:** High\r\n\r\nBody.\r\n"
    finding = _one(text)
    assert (finding.title, finding.severity, finding.description, finding.line) == ("Title", H, "Body.", 3)
