"""The deterministic PRD parser: explicit requirement structure → the same Plan the LLM planner returns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.adapters.prd_parser import (
    ACCEPTED_STRUCTURES,
    IgnoreReason,
    ItemKind,
    PrdParse,
    Priority,
    parse_prd,
    parse_prd_text,
)
from conveyor.adapters.prd_parser_text import complexity, imperative, story, story_title, touch_set
from conveyor.domain.errors import InputError
from conveyor.domain.learning import base_estimate_tokens
from conveyor.domain.roles import Plan
from conveyor.domain.ticket import TaskType

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prd"


def _fixture(name: str, path: str = "docs/PRD.md") -> PrdParse:
    return parse_prd_text((FIXTURES / name).read_text(encoding="utf-8"), path)


def _md(text: str) -> PrdParse:
    return parse_prd_text(text, "docs/PRD.md")


def _error(text: str, path: str = "docs/PRD.md") -> InputError:
    with pytest.raises(InputError) as caught:
        parse_prd_text(text, path)
    return caught.value


def _titles(parsed: PrdParse) -> list[str]:
    return [t.title for t in parsed.plan.tickets]


# ── the long, realistic PRD ──────────────────────────────────────────────────────────────────────────────

# (line, kind, id hint, title, acceptance criteria, depends on, touch set)
LONG_EXPECTED: list[tuple[int, ItemKind, str | None, str, list[str], list[str], list[str]]] = [
    (40, ItemKind.LIST_ITEM, "FR-1", "Allow users to sign in with an emailed magic link",
     ["Users can sign in with an emailed magic link."], [], []),
    (41, ItemKind.LIST_ITEM, "FR-2", "Allow users to save a link with a title and optional tags",
     ["Users can save a link with a title and optional tags.", "The title defaults to the page title when left empty."],
     [], []),
    (43, ItemKind.CHECKBOX, None, "Ensure saved links are stored in `src/shelfie/storage/links.py` with a…",
     ["Saved links are stored in `src/shelfie/storage/links.py` with a created-at timestamp."], [],
     ["src/shelfie/storage/links.py"]),
    (44, ItemKind.LIST_ITEM, "FR-4", "Make sessions expire after 30 days of inactivity",
     ["Sessions must expire after 30 days of inactivity"], ["FR-1"], []),
    (45, ItemKind.LIST_ITEM, None, "Do not let the API return links that belong to another team",
     ["The API must not return links that belong to another team."], [], []),
    (49, ItemKind.LIST_ITEM, None, "Allow links to be sorted by date saved or by title",
     ["Links can be sorted by date saved or by title."], [], []),
    (51, ItemKind.LIST_ITEM, None, "Ensure duplicate links are detected when saving",
     ["Duplicate links are detected when saving"], ["FR-2"], []),
    (68, ItemKind.LIST_ITEM, None, "Ensure search matches words in titles, tags and URLs",
     ["Search matches words in titles, tags and URLs."], [], []),
    (69, ItemKind.LIST_ITEM, None, "Ensure results appear in under 200 ms for 10,000 links",
     ["Results appear in under 200 ms for 10,000 links."], [], []),
    (70, ItemKind.LIST_ITEM, None, "Highlight the search terms in results",
     ["Highlight the search terms in results."], [], []),
    (72, ItemKind.SECTION, None, "Implement shelves",
     ["A shelf is a named collection of links.", "Each team member can create shelves.",
      "Shelves can be shared with the whole team or kept private."], ["FR-2"], []),
    (79, ItemKind.LIST_ITEM, None, "Export all links of a shelf as CSV via `src/shelfie/export/csv.py`",
     ["Export all links of a shelf as CSV via `src/shelfie/export/csv.py`."], [], ["src/shelfie/export/csv.py"]),
    (80, ItemKind.LIST_ITEM, None, "Export all links of the team as one JSON file",
     ["Export all links of the team as one JSON file."], [], []),
    (82, ItemKind.SECTION, None, "Implement notifications",
     ["A member who follows a shelf gets a daily digest email when links were added to it.",
      "No digest is sent on days without new links."], [], []),
    (99, ItemKind.USER_STORY, "US-1", "Let a team member tag links",
     ["A link can have up to 10 tags.", "Tags are case-insensitive.", "Renaming a tag renames it on every link."],
     [], []),
    (109, ItemKind.USER_STORY, "US-2", "Let a team admin remove a member",
     ["The removed member's sessions are revoked within one minute.",
      "Links the member saved stay on the team's shelves."], ["FR-1"], []),
    (119, ItemKind.USER_STORY, None, "Give a new member an onboarding checklist",
     ["The checklist shows three steps: save a link, create a shelf, invite a teammate.",
      "The checklist can be dismissed."], [], []),
    (128, ItemKind.CHECKBOX, None, "Ensure all endpoints require authentication except `GET /healthz`",
     ["All endpoints require authentication except `GET /healthz`."], [], []),
    (129, ItemKind.CHECKBOX, None, "Ensure error responses never include stack traces",
     ["Error responses never include stack traces."], [], []),
    (143, ItemKind.CHECKBOX, None, "Link the privacy policy page from the footer",
     ["Link the privacy policy page from the footer."], [], []),
]  # fmt: skip


def test_the_long_prd_gives_exactly_the_expected_plan() -> None:
    parsed = _fixture("long.md")
    assert isinstance(parsed.plan, Plan)
    assert len(parsed.plan.tickets) == len(LONG_EXPECTED) == 20
    actual = [
        (item.line, item.kind, t.id_hint, t.title, t.acceptance_criteria, t.depends_on, t.touch_set)
        for t, item in zip(parsed.plan.tickets, parsed.items, strict=True)
    ]
    assert actual == LONG_EXPECTED
    assert all(len(t.title) <= 80 for t in parsed.plan.tickets)
    assert parsed.title == "PRD: Shelfie — shared bookmarks for small teams"
    assert parsed.format == "markdown"


def test_the_long_prd_reports_what_it_did_not_ticket_and_its_assumptions() -> None:
    parsed = _fixture("long.md")
    assert [(i.line, i.reason, i.text) for i in parsed.ignored] == [
        (29, IgnoreReason.OUT_OF_SCOPE, "Native mobile apps."),
        (50, IgnoreReason.DELIVERED, "A health endpoint `GET /healthz` returns 200."),
        (55, IgnoreReason.COULD_HAVE, "Dark mode."),
        (56, IgnoreReason.COULD_HAVE, "Import bookmarks from a browser export file."),
        (60, IgnoreReason.WONT_HAVE, "A browser extension."),
        (139, IgnoreReason.DELIVERED, "Which email provider? (decided: Postmark)"),
    ]
    assert [(d.line, d.text) for d in parsed.delivered] == [
        (50, "A health endpoint `GET /healthz` returns 200."),
        (139, "Which email provider? (decided: Postmark)"),
    ]
    assert [(a.line, a.text) for a in parsed.assumptions] == [
        (10, "Teams have at most 50 members in the first release."),
        (126, "a single hosting region is enough for the MVP."),
    ]
    summary = parsed.summary()
    assert "20 tickets from docs/PRD.md (deterministic PRD parser" in summary
    assert "2 could-have" in summary and "2 delivered" in summary and "2 assumptions" in summary


def test_the_long_prd_items_carry_provenance_and_derived_fields() -> None:
    parsed = _fixture("long.md")
    by_title = {t.title: (t, parsed.item_for(t)) for t in parsed.plan.tickets}
    ticket, item = by_title["Allow users to sign in with an emailed magic link"]
    assert (item.path, item.priority, item.section, str(item)) == (
        "docs/PRD.md",
        Priority.MUST,
        "5. Requirements",
        "docs/PRD.md:40",
    )
    assert ticket.description == (
        "Users can sign in with an emailed magic link.\n\n"
        'From docs/PRD.md:40, must-have list item FR-1 in section "5. Requirements".'
    )
    shelves, shelves_item = by_title["Implement shelves"]
    assert shelves_item.section == "6.2 Shelves"
    assert shelves.description.startswith("A shelf is a named collection of links.")
    assert 'feature section "6.2 Shelves"' in shelves.description
    story_ticket, story_item = by_title["Let a team admin remove a member"]
    assert story_item.text.startswith("As a team admin, I want to remove a member")
    assert story_ticket.description.startswith("As a team admin, I want to remove a member so that")
    auth, _ = by_title["Ensure all endpoints require authentication except `GET /healthz`"]
    assert auth.task_type is TaskType.AUTH_ADD
    assert auth.estimate_tokens == base_estimate_tokens(TaskType.AUTH_ADD)
    assert auth.complexity == 4  # 2 + complex keyword "authentication"
    for ticket in parsed.plan.tickets:
        assert 1 <= ticket.complexity <= 10
        assert ticket.estimate_tokens > 0


def test_parse_prd_reads_the_repository_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(FIXTURES / "long.md", tmp_path / "docs" / "PRD.md")
    assert parse_prd(tmp_path) == _fixture("long.md")
    shutil.copy(FIXTURES / "prd.json", tmp_path / "docs" / "PRD.json")
    assert parse_prd(tmp_path, "docs/PRD.json").format == "json"


def test_a_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        parse_prd(tmp_path)
    problem = caught.value.problems[0]
    assert (problem.path, problem.line, problem.message) == ("docs/PRD.md", None, "file not found")


def test_crlf_and_a_byte_order_mark_change_nothing() -> None:
    text = (FIXTURES / "long.md").read_text(encoding="utf-8")
    assert parse_prd_text("\ufeff" + text.replace("\n", "\r\n")) == parse_prd_text(text)


# ── one item, one ticket ─────────────────────────────────────────────────────────────────────────────────

_WORDS = ["ledger", "widget", "quota", "banner", "sprocket", "archive", "tariff", "parcel", "beacon", "cobalt"]
_texts = st.lists(
    st.lists(st.sampled_from(_WORDS), min_size=2, max_size=4).map(lambda ws: "The " + " ".join(ws)),
    min_size=1,
    max_size=40,
    unique=True,
)
_kinds = st.sampled_from(["bullet", "open", "checked"])
_sections = st.sampled_from(["checkboxes", "must", "should", "could", "wont", "feature"])


@given(_texts, st.data())
def test_each_checkbox_must_and_should_item_is_exactly_one_ticket(texts: list[str], data: st.DataObject) -> None:
    lines = ["# Generated PRD", ""]
    expected: list[str] = []
    ignored: dict[str, IgnoreReason] = {}
    pending = list(texts)
    number = 0
    while pending:
        section = data.draw(_sections)
        count = data.draw(st.integers(1, 4))
        chunk, pending = pending[:count], pending[count:]
        number += 1
        heading = {
            "checkboxes": "Tasks",
            "must": "Must have",
            "should": "Should have",
            "could": "Could have",
            "wont": "Won't have",
            "feature": f"{number}. Feature {number}",
        }[section]
        lines += [f"## {heading}", ""]
        for text in chunk:
            kind = "open" if section == "checkboxes" else data.draw(_kinds)
            if section == "checkboxes":
                kind = data.draw(st.sampled_from(["open", "checked"]))
            box = {"bullet": "", "open": "[ ] ", "checked": "[x] "}[kind]
            lines.append(f"- {box}{text}")
            if kind == "checked":
                ignored[text] = IgnoreReason.DELIVERED
            elif section == "could":
                ignored[text] = IgnoreReason.COULD_HAVE
            elif section == "wont":
                ignored[text] = IgnoreReason.WONT_HAVE
            elif kind == "open" or section != "checkboxes":
                expected.append(text)
        lines.append("")
    document = "\n".join(lines)
    if not expected:
        assert "nothing to ticket" in str(_error(document))
        return
    parsed = _md(document)
    criteria = [c for t in parsed.plan.tickets for c in t.acceptance_criteria]
    assert len(parsed.plan.tickets) == len(expected)
    assert sorted(criteria) == sorted(expected)  # each item's text is the criterion of exactly one ticket
    assert {i.text: i.reason for i in parsed.ignored} == ignored


def test_a_checkbox_inside_a_must_have_list_is_one_ticket() -> None:
    parsed = _md("# P\n\n## Must have\n\n- [ ] Export the ledger as CSV\n- Import a ledger\n")
    assert _titles(parsed) == ["Export the ledger as CSV", "Import a ledger"]
    assert [(i.kind, i.priority) for i in parsed.items] == [
        (ItemKind.CHECKBOX, Priority.MUST),
        (ItemKind.LIST_ITEM, Priority.MUST),
    ]


def test_items_nested_under_a_requirement_are_criteria_of_its_one_ticket() -> None:
    parsed = _md(
        "# P\n\n**Must have:**\n\n- Export the ledger\n  - [ ] Columns follow the on-screen order\n"
        "  - Dates are ISO 8601\n\n  The export is streamed.\n"
    )
    (ticket,) = parsed.plan.tickets
    assert ticket.acceptance_criteria == [
        "Export the ledger",
        "Columns follow the on-screen order",
        "Dates are ISO 8601",
    ]
    assert "The export is streamed." in ticket.description


def test_checkboxes_in_a_storys_acceptance_criteria_belong_to_the_story() -> None:
    parsed = _md(
        "# P\n\nAs a clerk, I want to export the ledger so that I can audit it.\n\n"
        "Acceptance criteria:\n- [ ] CSV has a header row\n- [ ] Totals match the screen\n"
    )
    (ticket,) = parsed.plan.tickets
    assert ticket.title == "Let a clerk export the ledger"
    assert ticket.acceptance_criteria == ["CSV has a header row", "Totals match the screen"]
    assert parsed.items[0].kind is ItemKind.USER_STORY


def test_checkboxes_nested_under_a_plain_bullet_still_count() -> None:
    parsed = _md("# P\n\n## Background\n\n- Some context\n  - [ ] Archive old ledgers\n")
    assert _titles(parsed) == ["Archive old ledgers"]


def test_story_with_every_criterion_checked_is_delivered() -> None:
    parsed = _md("# P\n\n- [ ] Keep this\n\nAs a clerk, I want a ledger.\n\nAcceptance criteria:\n- [x] It exists\n")
    assert _titles(parsed) == ["Keep this"]
    assert [(i.reason, i.line) for i in parsed.ignored] == [(IgnoreReason.DELIVERED, 5)]


def test_story_forms_heading_bullet_and_acceptance_criteria_heading() -> None:
    parsed = _md(
        "# P\n\n### As an admin, I want to archive a ledger\n\n#### Acceptance criteria\n\n"
        "- Archived ledgers are read-only\n\n"
        "### Notes\n\n- As a clerk I want ledger exports\n  - AC:\n    - Exports are CSV\n"
    )
    assert _titles(parsed) == ["Let an admin archive a ledger", "Give a clerk ledger exports"]
    assert [t.acceptance_criteria for t in parsed.plan.tickets] == [
        ["Archived ledgers are read-only"],
        ["Exports are CSV"],
    ]


# ── MoSCoW and scope ─────────────────────────────────────────────────────────────────────────────────────


def test_could_and_wont_items_are_ignored_in_every_form() -> None:
    parsed = _md(
        "# P\n\n## Could have\n\n- Dark mode\n\n## 1. Ledger\n\n**Nice to have:**\n- Emoji reactions\n\n"
        "Plain prose ends the label.\n\n- Export the ledger\n- [Could] Print the ledger\n- Won't: Fax the ledger\n"
    )
    assert _titles(parsed) == ["Export the ledger"]
    assert [(i.text, i.reason) for i in parsed.ignored] == [
        ("Dark mode", IgnoreReason.COULD_HAVE),
        ("Emoji reactions", IgnoreReason.COULD_HAVE),
        ("Print the ledger", IgnoreReason.COULD_HAVE),
        ("Fax the ledger", IgnoreReason.WONT_HAVE),
    ]


def test_inline_priorities_tag_items() -> None:
    parsed = _md("# P\n\n## 1. Ledger\n\n- Must: Export the ledger\n- **Should:** Print the ledger\n")
    assert [(i.priority, i.text) for i in parsed.items] == [
        (Priority.MUST, "Export the ledger"),
        (Priority.SHOULD, "Print the ledger"),
    ]


def test_out_of_scope_sections_are_reported_not_ticketed() -> None:
    parsed = _md("# P\n\n- [ ] Keep\n\n## Out of scope (v1)\n\n- [ ] Mobile app\n- Must: Fax support\n")
    assert _titles(parsed) == ["Keep"]
    assert [(i.text, i.reason, i.detail) for i in parsed.ignored] == [
        ("Mobile app", IgnoreReason.OUT_OF_SCOPE, 'in section "Out of scope (v1)"'),
        ("Fax support", IgnoreReason.OUT_OF_SCOPE, 'in section "Out of scope (v1)"'),
    ]


def test_everything_ignored_is_refused() -> None:
    error = _error("# P\n\n- [x] Done already\n\n## Could have\n\n- Later maybe\n")
    assert error.problems[0].line is None
    assert "nothing to ticket: all 2 requirement-shaped items are not ticketed (could-have, delivered)" in str(error)


# ── feature sections ─────────────────────────────────────────────────────────────────────────────────────


def test_feature_headings_and_informational_headings() -> None:
    parsed = _md(
        "# P\n\n## 1. Overview\n\n- Context bullet\n\n## 2) Ledger\n\n- Export the ledger\n\n### Open questions\n\n"
        "- Which format?\n\n## Feature 3: Archive\n\n- Archive old ledgers\n\n## Epic 4 - Quotas\n\n- Show the quota\n"
    )
    assert _titles(parsed) == ["Export the ledger", "Archive old ledgers", "Show the quota"]
    assert [i.section for i in parsed.items] == ["2) Ledger", "Feature 3: Archive", "Epic 4 - Quotas"]


def test_prose_only_section_becomes_one_ticket_with_its_sentences() -> None:
    parsed = _md(
        "# P\n\n## 1. Quotas\n\nEach team has a quota of 100 links, e.g. for trials. Admins raise it.\n"
        "No one else can!\n"
    )
    (ticket,) = parsed.plan.tickets
    assert ticket.title == "Implement quotas"
    assert ticket.acceptance_criteria == [
        "Each team has a quota of 100 links, e.g. for trials.",
        "Admins raise it.",
        "No one else can!",
    ]
    assert parsed.items[0].kind is ItemKind.SECTION


def test_section_acceptance_criteria_make_one_section_ticket_and_empty_sections_are_reported() -> None:
    parsed = _md(
        "# P\n\n## 1. Export data\n\nUsers take their data with them.\n\n**Acceptance criteria**\n\n"
        "- A ZIP holds every ledger\n- The ZIP is ready within a minute\n\n## 2. Later thing\n"
    )
    (ticket,) = parsed.plan.tickets
    assert ticket.title == "Export data"
    assert ticket.acceptance_criteria == ["A ZIP holds every ledger", "The ZIP is ready within a minute"]
    assert ticket.description.startswith("Users take their data with them.")
    assert [(i.reason, i.line) for i in parsed.ignored] == [(IgnoreReason.EMPTY_SECTION, 12)]


def test_nested_numbered_sections_ticket_their_leaves_only() -> None:
    parsed = _md(
        "# P\n\n## 1. Ledger\n\nIntro prose.\n\n### 1.1 Export\n\n- Export as CSV\n\n"
        "### 1.2 Archive\n\nArchive yearly.\n"
    )
    assert _titles(parsed) == ["Export as CSV", "Implement archive"]


def test_fenced_code_comments_and_tables_hold_no_requirements() -> None:
    parsed = _md(
        "# P\n\n<!-- - [ ] commented out -->\n<!--\n- [ ] also commented\n-->\n```\n- [ ] in code\n```\n"
        "| - [ ] in a table |\n\n- [ ] Keep the real one\n"
    )
    assert _titles(parsed) == ["Keep the real one"]
    assert parsed.items[0].line == 12


# ── dependencies ─────────────────────────────────────────────────────────────────────────────────────────


def test_dependency_markers_by_id_title_text_and_section() -> None:
    parsed = _md(
        "# P\n\n## 1. Ledger\n\n- L-1: Export the ledger\n- Print the ledger (depends on: L-1)\n\n"
        "## 2. Archive\n\nDepends on: 1. Ledger\n\n- Archive ledgers\n- Compress archives (after: Archive ledgers)\n"
        "- Purge archives — depends on Print the ledger and Export the ledger\n"
    )
    deps = {t.title: t.depends_on for t in parsed.plan.tickets}
    assert deps == {
        "Export the ledger": [],
        "Print the ledger": ["L-1"],
        "Archive ledgers": ["L-1", "Print the ledger"],
        "Compress archives": ["Archive ledgers", "L-1", "Print the ledger"],
        "Purge archives": ["Print the ledger", "L-1"],
    }


def test_after_needs_a_colon_so_prose_is_not_a_marker() -> None:
    (ticket,) = _md("# P\n\n- [ ] Redirect to the dashboard (after login)\n").plan.tickets
    assert ticket.depends_on == []
    assert ticket.acceptance_criteria == ["Redirect to the dashboard (after login)"]


def test_dependency_on_a_delivered_item_is_met_and_on_a_could_item_is_an_error() -> None:
    parsed = _md("# P\n\n- [x] Export the ledger\n- [ ] Print the ledger (after: Export the ledger)\n")
    assert parsed.plan.tickets[0].depends_on == []
    error = _error("# P\n\n## Could have\n\n- Dark mode\n\n## Must have\n\n- Night theme (depends on Dark mode)\n")
    assert error.problems[0].line == 9
    assert "which is not ticketed (could-have: not ticketed)" in error.problems[0].message


def test_self_dependency_ambiguity_duplicate_ids_and_heading_markers_are_errors() -> None:
    assert _error("# P\n\n- [ ] Export it (after: Export it)\n").problems[0].line == 3
    ambiguous = _error("# P\n\n## 1. A\n\n- Same\n\n## 2. B\n\n- Same\n- [ ] Other (after: Same)\n")
    assert "ambiguous" in ambiguous.problems[0].message
    duplicate = _error("# P\n\n- [ ] X-1: One\n- [ ] X-1: Two\n")
    assert (duplicate.problems[0].line, "used twice" in duplicate.problems[0].message) == (4, True)
    heading = _error("# P\n\n## Background (after: One)\n\n- [ ] One\n")
    assert heading.problems[0].line == 3


# ── errors on the malformed fixtures ─────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("name", "path", "line", "message"),
    [
        ("empty_checkbox.md", "docs/PRD.md", 6, "empty checkbox"),
        ("story_without_criteria.md", "docs/PRD.md", 10, "user story without acceptance criteria"),
        ("unknown_dependency.md", "docs/PRD.md", 5, "dependency 'Import links' names no requirement id"),
        ("cycle.md", "docs/PRD.md", 5, "dependency cycle: A-1 -> A-3 -> A-2 -> A-1"),
        ("no_structure.md", "docs/PRD.md", None, f"no requirement structure found; accepted structures: "
                                                 f"{ACCEPTED_STRUCTURES}"),
        ("bad_schema.json", "docs/PRD.json", 8, "requirements.1.acceptance_critera: Extra inputs are not permitted"),
        ("invalid.json", "docs/PRD.json", 5, "invalid JSON"),
        ("unknown_dependency.json", "docs/PRD.json", 10, "dependency 'R-9' names no requirement id"),
    ],
)  # fmt: skip
def test_malformed_prds_name_file_and_line(name: str, path: str, line: int | None, message: str) -> None:
    with pytest.raises(InputError) as caught:
        _fixture(name, path)
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == (path, line)
    assert message in problem.message


def test_a_stray_dependency_line_is_an_error() -> None:
    error = _error("# P\n\n## Must have\n\n- Export it\n\nDepends on: Import it\n")
    assert error.problems[0].line == 7
    assert "belongs nested under its item" in error.problems[0].message


_FRAGMENTS = [
    "# T", "## 1. Search", "### Must have", "## Could have", "- [ ] Do it", "- [x] Done", "- [ ]", "  - nested",
    "As a user, I want to x so that y.", "Acceptance criteria:", "- AC:", "Depends on: Do it", "- Must: a", "",
    "```", "<!--", "-->", "| a |", "1. one", "#### Acceptance criteria", "## Out of scope", "## Overview",
    "Some prose. More prose!", "- FR-1: x", "- FR-1: y", "- (after: 1. Search) Do z", "ASSUMPTION: z", "> quote",
]  # fmt: skip


@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=25))
def test_any_mix_of_structures_parses_or_fails_with_lines(lines: list[str]) -> None:
    try:
        parsed = _md("\n".join(lines))
    except InputError as error:
        assert all(p.path == "docs/PRD.md" and (p.line is None or 1 <= p.line <= len(lines)) for p in error.problems)
    else:
        assert len(parsed.items) == len(parsed.plan.tickets)
        assert all(len(t.title) <= 80 and t.acceptance_criteria for t in parsed.plan.tickets)


def test_every_problem_is_reported_at_once() -> None:
    error = _error("# P\n\n- [ ]\n- [ ] ok\n\nAs a clerk, I want a ledger.\n\n- [ ]\n")
    assert [(p.line, p.message.split(":")[0]) for p in error.problems] == [
        (3, "empty checkbox"),
        (6, "user story without acceptance criteria"),
        (8, "empty checkbox"),
    ]


# ── PRD.json ─────────────────────────────────────────────────────────────────────────────────────────────


def test_the_json_prd_gives_the_expected_plan() -> None:
    parsed = _fixture("prd.json", "docs/PRD.json")
    assert (parsed.title, parsed.format) == ("Shelfie API", "json")
    actual = [
        (i.line, t.id_hint, t.title, t.acceptance_criteria, t.depends_on, t.touch_set, t.complexity)
        for t, i in zip(parsed.plan.tickets, parsed.items, strict=True)
    ]
    assert actual == [
        (6, "API-1", "Sign in with a magic link", ["A link signs the user in once", "A link expires after 15 minutes"],
         [], ["src/shelfie/auth/magic.py"], 4),
        (13, "API-2", "Save a link", ["POST /links stores the link for the caller's team"], ["API-1"],
         ["src/shelfie/api/links.py"], 5),
        (33, "API-5", "List saved links", ["GET /links pages by 50"], ["API-2"], [], 2),
    ]  # fmt: skip
    assert [i.priority for i in parsed.items] == [Priority.MUST, Priority.SHOULD, Priority.MUST]
    assert [(i.line, i.reason) for i in parsed.ignored] == [
        (22, IgnoreReason.COULD_HAVE),
        (27, IgnoreReason.DELIVERED),
    ]
    assert [(a.line, a.text) for a in parsed.assumptions] == [(4, "one region is enough for the MVP")]
    assert parsed.plan.tickets[0].description == (
        "Sign in with a magic link\n\nPasswordless sign-in through `src/shelfie/auth/magic.py`.\n\n"
        "From docs/PRD.json:6, must-have requirement API-1."
    )


def _json_error(document: object | str) -> InputError:
    text = document if isinstance(document, str) else json.dumps(document, indent=2)
    return _error(text, "docs/PRD.json")


def test_json_validation_errors_name_their_lines() -> None:
    not_object = _json_error([1, 2])
    assert (not_object.problems[0].line, "must be an object" in str(not_object)) == (1, True)
    no_requirements = _json_error({"title": "x", "requirements": []})
    assert no_requirements.problems[0].line == 3
    missing_criteria = _json_error({"requirements": [{"id": "R-1", "title": "A"}, {"id": "R-2", "title": "B"}]})
    assert [p.line for p in missing_criteria.problems] == [3, 7]
    assert "R-1: a must requirement needs at least one acceptance criterion" in str(missing_criteria)
    duplicate = _json_error(
        {"requirements": [{"id": "R-1", "title": "A", "priority": "could"}, {"id": "r-1", "title": "B", "done": True}]}
    )
    assert "used twice" in str(duplicate) and duplicate.problems[0].line == 8
    bad_priority = _json_error({"requirements": [{"id": "R-1", "title": "A", "priority": "urgent"}]})
    assert bad_priority.problems[0].line == 6
    tabs = _json_error('{\n\t"requirements": [\n\t\t{"id": "R-1",\n\t\t "title": "A",\n\t\t "bogus": 1}\n\t]\n}\n')
    assert tabs.problems[0].line == 5  # the "bogus" key, tabs notwithstanding
    cycle = _json_error(
        {
            "requirements": [
                {"id": "R-1", "title": "A", "acceptance_criteria": ["a"], "depends_on": ["R-2"]},
                {"id": "R-2", "title": "B", "acceptance_criteria": ["b"], "depends_on": ["A"]},
            ]
        }
    )
    assert "dependency cycle" in str(cycle)


def test_json_priorities_accept_moscow_spellings() -> None:
    entries = [
        {"id": f"R-{n}", "title": f"T{n}", "priority": p, "acceptance_criteria": ["x"]}
        for n, p in enumerate(["MUST", "should-have", "Won't have", "could have"])
    ]
    parsed = parse_prd_text(json.dumps({"requirements": entries}), "docs/PRD.json")
    assert [i.priority for i in parsed.items] == [Priority.MUST, Priority.SHOULD]
    assert [i.reason for i in parsed.ignored] == [IgnoreReason.WONT_HAVE, IgnoreReason.COULD_HAVE]


# ── derived fields ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Export links as CSV.", "Export links as CSV"),
        ("Users can reset their password", "Allow users to reset their password"),
        ("Admins should be able to ban users", "Allow admins to ban users"),
        ("The API must not leak stack traces", "Do not let the API leak stack traces"),
        ("Passwords must be hashed with bcrypt", "Ensure passwords are hashed with bcrypt"),
        ("The export must be streamed", "Ensure the export is streamed"),
        ("The system shall log every sign-in", "Make the system log every sign-in"),
        ("Search returns results in 200 ms", "Ensure search returns results in 200 ms"),
        ("Search results are paginated", "Ensure search results are paginated"),
        ("Compress archives older than a year", "Compress archives older than a year"),
        ("Sessions expire after 30 days", "Ensure sessions expire after 30 days"),
        ("ASSUMPTION: Dark mode follows the OS", "Ensure dark mode follows the OS"),
        ("**Fast** [search](https://x.example)", "Ensure fast search"),
        ("  Show   the   totals  ", "Show the totals"),
    ],
)
def test_titles_are_imperative(text: str, title: str) -> None:
    assert imperative(text) == title


def test_titles_are_cut_at_80_characters_on_a_word() -> None:
    title = imperative("Export " + "very long words " * 10)
    assert len(title) <= 80 and title.endswith("…") and "  " not in title
    assert title == "Export very long words very long words very long words very long words very…"


def test_story_titles_use_the_role_and_the_want() -> None:
    found = story("As a team lead, I want to review my team's shelves so that nothing stale stays")
    assert found is not None
    assert story_title(found) == "Let a team lead review their team's shelves"
    noun = story("As an auditor I need an export of every change.")
    assert noun is not None and story_title(noun) == "Give an auditor an export of every change"
    assert story("As a result, the team wants links") is None


def test_repeated_titles_get_their_section_then_their_line() -> None:
    parsed = _md("# P\n\n## 1. Ledger\n\n- Export it\n\n## 2. Archive\n\n- Export it\n- [ ] Export it\n")
    assert _titles(parsed) == ["Export it", "Export it (Archive)", "Export it (line 10)"]


def test_touch_set_takes_relative_paths_and_backticked_file_names() -> None:
    assert touch_set(
        [
            "Change src/app/search.py and `tests/test_search.py`, see https://x.example/a/b.py, "
            "`README.md`, `Dockerfile`, /etc/passwd.conf, and/or `GET /healthz`; version 1.2/3.4.",
            "Again src/app/search.py.",
        ]
    ) == ["src/app/search.py", "tests/test_search.py", "README.md", "Dockerfile"]


def test_complexity_heuristic() -> None:
    assert complexity("Fix the typo in the footer label", ["Fix the typo in the footer label"], []) == 1
    assert complexity("Show totals", ["Show totals"], []) == 2
    long_secure = " ".join(["word"] * 90) + " with payments"
    many = [f"criterion {n}" for n in range(9)]
    assert complexity(long_secure, many, ["a.py", "b.py", "c.py"]) == 10
    assert complexity("Handle payments", ["Handle payments"], []) == 4


def test_task_type_and_estimate_come_from_the_learning_table() -> None:
    parsed = _md("# P\n\n- [ ] Add unit tests for the exporter\n- [ ] Sanitise HTML input against XSS\n")
    assert [(t.task_type, t.estimate_tokens) for t in parsed.plan.tickets] == [
        (TaskType.TEST_ADD, base_estimate_tokens(TaskType.TEST_ADD)),
        (TaskType.SECURITY_FIX, base_estimate_tokens(TaskType.SECURITY_FIX)),
    ]


def test_a_planner_drafted_prd_with_assumptions() -> None:
    parsed = _md(
        "# PRD: link keeper\n\n## Goal\nKeep team links.\n\n## Requirements\n\n- [ ] Save a link with a title\n"
        "- [ ] ASSUMPTION: Links are private to the team\n\nASSUMPTION: no mobile app.\n"
    )
    assert _titles(parsed) == ["Save a link with a title", "Ensure links are private to the team"]
    assert parsed.plan.tickets[1].acceptance_criteria == ["ASSUMPTION: Links are private to the team"]
    assert "(marked ASSUMPTION in the PRD)" in parsed.plan.tickets[1].description
    assert [(a.line, a.text) for a in parsed.assumptions] == [
        (9, "Links are private to the team"),
        (11, "no mobile app."),
    ]


def test_short_checkbox_prd() -> None:
    parsed = _fixture("checkboxes.md")
    assert [(t.title, t.acceptance_criteria, t.depends_on) for t in parsed.plan.tickets] == [
        ("Add a task with a title", ["Add a task with a title"], []),
        ("Mark a task as done", ["Mark a task as done"], []),
        ("Delete a task", ["Delete a task"], ["Add a task with a title"]),
    ]
    assert [(i.text, i.reason, i.line) for i in parsed.ignored] == [("Show the task list", IgnoreReason.DELIVERED, 5)]
