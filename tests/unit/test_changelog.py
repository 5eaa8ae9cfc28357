"""CHANGELOG.md in Keep a Changelog 1.1.0: creation, release, moved Unreleased entries, idempotence, errors."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.changelog import (
    HEADER,
    KAC_SECTIONS,
    SECTION_BY_TYPE,
    ChangelogEntry,
    changelog_entries,
    changelog_section,
    release_changelog,
)
from conveyor.domain.errors import InputError
from conveyor.domain.ticket import State, TaskType, Ticket, TicketKind

DAY = date(2026, 3, 1)
COMPARE = "https://github.com/acme/textkit/compare"


def ticket(ticket_id: str, task_type: TaskType | None = None, state: State = State.DONE, **extra: object) -> Ticket:
    return Ticket.model_validate(
        {"id": ticket_id, "title": f"Title of {ticket_id}", "task_type": task_type, "state": state, **extra}
    )


def entry(section: str, ticket_id: str) -> ChangelogEntry:
    return ChangelogEntry(section, f"Title of {ticket_id} ({ticket_id})", ticket_id)


# -- sections ------------------------------------------------------------------------------------------------


def test_every_task_type_has_a_section_or_none() -> None:
    assert set(SECTION_BY_TYPE) == set(TaskType)
    assert {s for s in SECTION_BY_TYPE.values() if s is not None} <= set(KAC_SECTIONS)


@pytest.mark.parametrize(
    ("made", "section"),
    [
        (ticket("CV-CQ-001", TaskType.FEATURE_ADD), "Added"),
        (ticket("CV-CQ-001", TaskType.SECURITY_FIX), "Security"),
        (ticket("CV-SEC-001", TaskType.REFACTOR), "Security"),  # SEC category wins over the type
        (ticket("CV-CQ-001", TaskType.GUARD_ADD), "Fixed"),
        (ticket("CV-CQ-001", TaskType.TEST_ADD), "Changed"),
        (ticket("CV-CQ-001", None), "Changed"),
        (ticket("CV-CQ-001", TaskType.VERIFICATION), None),
        (ticket("CV-SEC-001", None, kind=TicketKind.VERIFICATION), None),
    ],
)
def test_changelog_section(made: Ticket, section: str | None) -> None:
    assert changelog_section(made) == section


def test_entries_are_done_tickets_by_id() -> None:
    tickets = [
        ticket("CV-CQ-002", TaskType.FEATURE_ADD, title="Add   --json\n output"),
        ticket("CV-CQ-001", TaskType.REFACTOR),
        ticket("CV-CQ-003", TaskType.FEATURE_ADD, State.DEFERRED),
        ticket("CV-TEST-004", TaskType.VERIFICATION),
    ]
    assert changelog_entries(tickets) == [
        ChangelogEntry("Changed", "Title of CV-CQ-001 (CV-CQ-001)", "CV-CQ-001"),
        ChangelogEntry("Added", "Add --json output (CV-CQ-002)", "CV-CQ-002"),
    ]


# -- releases ------------------------------------------------------------------------------------------------


def test_a_missing_changelog_is_created() -> None:
    text = release_changelog(None, "0.0.1", DAY, [entry("Security", "CV-SEC-001"), entry("Added", "CV-CQ-002")])
    assert text == (
        HEADER + "\n## [Unreleased]\n\n## [0.0.1] - 2026-03-01\n\n"
        "### Added\n\n- Title of CV-CQ-002 (CV-CQ-002)\n\n"
        "### Security\n\n- Title of CV-SEC-001 (CV-SEC-001)\n"
    )


EXISTING = """# Changelog

Our own introduction, kept as written.

## [Unreleased]

### fixed
- Crash on empty input, reported by a user
  (continued on a second line)

### Notes

Some prose a person wrote.

### Added
- Colour output (CV-CQ-007)

## [0.0.1] - 2026-01-10

### Added

- First cut

```text
## not a heading: inside a code block
```

[unreleased]: https://github.com/acme/textkit/compare/v0.0.1...HEAD
[0.0.1]: https://github.com/acme/textkit/releases/tag/v0.0.1
[issue-1]: https://github.com/acme/textkit/issues/1
"""


def test_release_moves_unreleased_and_keeps_the_rest() -> None:
    entries = [entry("Added", "CV-CQ-007"), entry("Fixed", "CV-CQ-008"), entry("Security", "CV-SEC-009")]
    text = release_changelog(EXISTING, "v0.0.2", DAY, entries, compare_url=COMPARE)
    assert text == (
        "# Changelog\n\nOur own introduction, kept as written.\n\n"
        "## [Unreleased]\n\n"
        "## [0.0.2] - 2026-03-01\n\n"
        "### Added\n\n- Colour output (CV-CQ-007)\n\n"  # the person's words for CV-CQ-007 win
        "### Fixed\n\n- Crash on empty input, reported by a user\n  (continued on a second line)\n"
        "- Title of CV-CQ-008 (CV-CQ-008)\n\n"
        "### Security\n\n- Title of CV-SEC-009 (CV-SEC-009)\n\n"
        "### Notes\n\nSome prose a person wrote.\n\n"
        "## [0.0.1] - 2026-01-10\n\n### Added\n\n- First cut\n\n"
        "```text\n## not a heading: inside a code block\n```\n\n"
        "[unreleased]: https://github.com/acme/textkit/compare/v0.0.2...HEAD\n"
        "[0.0.2]: https://github.com/acme/textkit/compare/v0.0.1...v0.0.2\n"
        "[0.0.1]: https://github.com/acme/textkit/releases/tag/v0.0.1\n"
        "[issue-1]: https://github.com/acme/textkit/issues/1\n"
    )
    again = release_changelog(text, "0.0.2", date(2026, 3, 2), entries, compare_url=COMPARE)
    assert again == text.replace("## [0.0.2] - 2026-03-01", "## [0.0.2] - 2026-03-02")


def test_without_a_compare_url_the_links_stay_as_written() -> None:
    text = release_changelog(EXISTING, "0.0.2", DAY, [])
    assert text.endswith(
        "[unreleased]: https://github.com/acme/textkit/compare/v0.0.1...HEAD\n"
        "[0.0.1]: https://github.com/acme/textkit/releases/tag/v0.0.1\n"
        "[issue-1]: https://github.com/acme/textkit/issues/1\n"
    )


def test_unreleased_is_created_when_missing_and_a_release_with_nothing_is_a_bare_heading() -> None:
    text = "# Changelog\n\n## [0.0.1] - 2026-01-10\n\n- First cut\n"
    assert release_changelog(text, "0.0.2", DAY, []) == (
        "# Changelog\n\n## [Unreleased]\n\n## [0.0.2] - 2026-03-01\n\n## [0.0.1] - 2026-01-10\n\n- First cut\n"
    )


def test_re_release_keeps_a_persons_edit_and_adds_only_new_tickets() -> None:
    first = release_changelog(None, "0.0.1", DAY, [entry("Added", "CV-CQ-001")])
    edited = first.replace("- Title of CV-CQ-001 (CV-CQ-001)", "- Better words for CV-CQ-001")
    again = release_changelog(edited, "0.0.1", DAY, [entry("Added", "CV-CQ-001"), entry("Fixed", "CV-CQ-002")])
    assert "- Better words for CV-CQ-001\n" in again
    assert "(CV-CQ-001)" not in again
    assert "### Fixed\n\n- Title of CV-CQ-002 (CV-CQ-002)\n" in again
    assert again.count("## [0.0.1]") == 1


def test_a_ticket_named_in_an_older_release_still_gets_its_entry() -> None:
    first = release_changelog(None, "0.0.1", DAY, [entry("Added", "CV-CQ-001")])
    second = release_changelog(first, "0.0.2", DAY, [entry("Fixed", "CV-CQ-001-QA"), entry("Added", "CV-CQ-001")])
    assert second.count("(CV-CQ-001)") == 2
    assert "- Title of CV-CQ-001-QA (CV-CQ-001-QA)" in second


# -- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "# Changelog\n\n## [Unreleased]\n\n## Roadmap\n",
            "CHANGELOG.md:5: error: '## Roadmap' is not a release heading: expected '## [Unreleased]' or "
            "'## [X.Y.Z] - YYYY-MM-DD'",
        ),
        ("## [1.0] - 2026-01-01\n", "CHANGELOG.md:1: error: '## [1.0] - 2026-01-01' is not a release heading"),
        (
            "## [0.0.1] - 2026-01-01\n\n## [v0.0.1] - 2026-01-02\n",
            "CHANGELOG.md:3: error: a second section for version 0.0.1 (the first is at line 1)",
        ),
        (
            "## [Unreleased]\n## Unreleased\n",
            "CHANGELOG.md:2: error: a second section for Unreleased (the first is at line 1)",
        ),
        (
            "## [0.0.1] - 2026-13-01\n",
            "CHANGELOG.md:1: error: release date '2026-13-01' is not a date of the form YYYY-MM-DD",
        ),
        ("## [0.0.1] - yesterday\n", "CHANGELOG.md:1: error: release date 'yesterday' is not a date"),
    ],
)
def test_unparseable_changelogs_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        release_changelog(text, "0.0.2", DAY, [])
    assert str(caught.value).startswith(message)


def test_accepted_heading_forms() -> None:
    text = "## 0.0.3\n\n## [0.0.2] \u2013 2026-01-02 [YANKED]\n\n## [0.0.1-rc.1]\n"
    assert release_changelog(text, "0.0.4", DAY, []).startswith("## [Unreleased]\n\n## [0.0.4] - 2026-03-01\n\n")
    with pytest.raises(ValueError, match="is not a version"):
        release_changelog(None, "next", DAY, [])


# -- properties ----------------------------------------------------------------------------------------------

_ids = st.integers(1, 30).map(lambda n: f"CV-CQ-{n:03d}")
_entries = st.lists(st.builds(entry, st.sampled_from(KAC_SECTIONS), _ids), max_size=6, unique_by=lambda e: e.ticket_id)
_versions = st.integers(1, 9).map(lambda n: f"0.0.{n}")


@given(st.lists(st.tuples(_versions, _entries), max_size=4), _versions, _entries)
def test_releasing_the_same_version_again_changes_nothing(
    history: list[tuple[str, list[ChangelogEntry]]], version: str, entries: list[ChangelogEntry]
) -> None:
    text: str | None = None
    for old_version, old_entries in history:
        text = release_changelog(text, old_version, DAY, old_entries, compare_url=COMPARE)
    once = release_changelog(text, version, DAY, entries, compare_url=COMPARE)
    twice = release_changelog(once, version, DAY, entries, compare_url=COMPARE)
    assert twice == once
    assert once.count(f"## [{version}]") == 1
    assert once.count("## [Unreleased]") == 1
    for item in entries:
        assert item.text in once
