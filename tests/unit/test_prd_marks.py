"""Delivered requirements marked in docs/PRD.md; and the names of the release's archives, tag and commit."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.errors import ConveyorError, InputError
from conveyor.domain.milestone_archive import (
    ArchiveNameError,
    ArchivePaths,
    archive_paths,
    milestone_slug,
    release_commit_message,
    release_notes_path,
    tag_message,
)
from conveyor.domain.prd_marks import END_MARKER, START_MARKER, mark_delivered, normalise
from conveyor.domain.ticket import State, Ticket


def ticket(ticket_id: str, title: str, state: State = State.DONE, criteria: tuple[str, ...] = ()) -> Ticket:
    return Ticket(id=ticket_id, title=title, state=state, acceptance_criteria=criteria)


TICKETS = [
    ticket("TK-CQ-002", "Add a --json flag", criteria=("`textkit --json` prints JSON.",)),
    ticket("TK-CQ-001", "Slugify text"),
    ticket("TK-CQ-003", "Word count", State.DEFERRED),
]

PRD = """# textkit

## Requirements

- [ ] slugify TEXT
- [ ] textkit --json prints JSON
* [ ] Word count
1. [ ] Colour output (TK-CQ-001 covers it)
- [x] Already done by hand
- [ ] Slugify text, but faster

```markdown
- [ ] Slugify text
```
"""


def test_normalise() -> None:
    assert normalise("  `Textkit --JSON` prints\tJSON. ") == "textkit json prints json"
    assert normalise("snake_case, kebab-case!") == "snake case kebab case"
    assert normalise("...") == ""


def test_first_release_appends_the_section_and_ticks_delivered_boxes() -> None:
    marks = mark_delivered(PRD, "0.0.1", TICKETS, released_on=date(2026, 3, 1))
    assert marks.checked == (
        (5, "slugify TEXT"),
        (6, "textkit --json prints JSON"),  # an acceptance criterion, normalised
        (8, "Colour output (TK-CQ-001 covers it)"),  # names a delivered ticket
    )
    assert marks.text == (
        "# textkit\n\n## Requirements\n\n"
        "- [x] slugify TEXT\n"
        "- [x] textkit --json prints JSON\n"
        "* [ ] Word count\n"  # deferred: not delivered
        "1. [x] Colour output (TK-CQ-001 covers it)\n"
        "- [x] Already done by hand\n"
        "- [ ] Slugify text, but faster\n\n"  # not the same requirement
        "```markdown\n- [ ] Slugify text\n```\n\n"  # code stays as written
        f"{START_MARKER}\n"
        "## Delivered requirements\n\n"
        "Written by Conveyor at each milestone release; edits between these markers are replaced.\n\n"
        "### v0.0.1 (2026-03-01)\n\n"
        "- TK-CQ-001 — Slugify text\n"
        "- TK-CQ-002 — Add a --json flag\n"
        f"{END_MARKER}\n"
    )


def test_marking_again_is_idempotent_and_later_releases_come_first() -> None:
    first = mark_delivered(PRD, "0.0.1", TICKETS).text
    again = mark_delivered(first, "0.0.1", TICKETS)
    assert (again.text, again.checked) == (first, ())
    later = [ticket("TK-CQ-003", "Word count"), ticket("TK-CQ-004", "Reverse words")]
    second = mark_delivered(first + "\n## Appendix\n\nkept\n", "0.0.2", later).text
    assert "* [x] Word count\n" in second
    section = second[second.index(START_MARKER) : second.index(END_MARKER)]
    assert section.index("### v0.0.2") < section.index("### v0.0.1")
    assert "- TK-CQ-004 — Reverse words\n" in section
    assert "- TK-CQ-001 — Slugify text\n" in section  # the earlier release's list is kept
    assert second.endswith(f"{END_MARKER}\n\n## Appendix\n\nkept\n")  # the section stays where it is
    # Re-marking 0.0.1 replaces its list; a person's text inside the markers does not survive.
    edited = second.replace("Written by Conveyor", "Someone's edit. Written by Conveyor")
    redone = mark_delivered(edited, "0.0.1", [ticket("TK-CQ-001", "Slugify text")]).text
    assert "Someone's edit" not in redone
    assert "- TK-CQ-002" not in redone
    assert "- TK-CQ-004 — Reverse words" in redone


def test_a_release_without_delivered_tickets_says_so() -> None:
    text = mark_delivered("", "0.0.1", [ticket("TK-CQ-003", "Word count", State.SKIPPED)]).text
    assert text.startswith(START_MARKER)
    assert "### v0.0.1\n\n- No ticket was delivered.\n" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"# PRD\n{START_MARKER}\nlist\n", f"docs/PRD.md:2: error: {START_MARKER} without a {END_MARKER} after it"),
        (f"# PRD\n\n{END_MARKER}\n", f"docs/PRD.md:3: error: {END_MARKER} without a {START_MARKER} before it"),
        (
            f"{START_MARKER}\n{START_MARKER}\n{END_MARKER}\n",
            f"docs/PRD.md:2: error: a second {START_MARKER} (the first is at line 1)",
        ),
        (
            f"{START_MARKER}\n{END_MARKER}\n\n{START_MARKER}\n{END_MARKER}\n",
            f"docs/PRD.md:4: error: a second {START_MARKER} (the first is at line 1)",
        ),
        (
            f"{START_MARKER}\n{END_MARKER}\n{END_MARKER}\n",
            f"docs/PRD.md:3: error: a second {END_MARKER} (the first is at line 2)",
        ),
    ],
)
def test_malformed_markers_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        mark_delivered(text, "0.0.1", TICKETS)
    assert str(caught.value) == message


def test_markers_inside_code_blocks_are_text() -> None:
    text = f"```\n{START_MARKER}\n```\n"
    marked = mark_delivered(text, "0.0.1", TICKETS).text
    assert marked.startswith(text + "\n" + START_MARKER)


@given(st.text(alphabet=st.sampled_from("-[] x\nabcSlugify#`"), max_size=80))
def test_marking_is_idempotent_on_any_text(text: str) -> None:
    try:
        once = mark_delivered(text, "0.0.1", TICKETS).text
    except InputError:
        return
    assert mark_delivered(once, "0.0.1", TICKETS).text == once


# -- archive names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("M6-AgentOrchestration-Fixes", "M6-AgentOrchestration-Fixes"),  # seed 001's example, case kept
        ("0.0.1", "0.0.1"),
        ("Milestone 2: CLI / JSON output", "Milestone-2-CLI-JSON-output"),
        ("  Café déjà vu  ", "Cafe-deja-vu"),
        ("../../etc/passwd", "etc-passwd"),
        (".hidden_", "hidden"),
        ("a" * 100, "a" * 80),
    ],
)
def test_milestone_slug(name: str, slug: str) -> None:
    assert milestone_slug(name) == slug


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("  ", "no letters or digits"),
        ("///", "no letters or digits"),
        ("Orchestrator", "over the live docs/tasks/orchestrator-learnings"),
    ],
)
def test_unusable_milestone_names(name: str, message: str) -> None:
    with pytest.raises(ArchiveNameError, match=message) as caught:
        milestone_slug(name)
    assert isinstance(caught.value, ConveyorError)


@given(st.text(max_size=40))
def test_slugs_are_single_safe_file_names(name: str) -> None:
    try:
        slug = milestone_slug(name)
    except ArchiveNameError:
        return
    assert 0 < len(slug) <= 80
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in slug)
    assert not slug.startswith(("-", ".", "_")) and not slug.endswith(("-", ".", "_"))


def test_release_names() -> None:
    assert archive_paths("M1 Text tools") == ArchivePaths(
        "docs/tasks/M1-Text-tools-tasks.md", "docs/tasks/M1-Text-tools-learnings.json"
    )
    assert release_notes_path("v0.0.2") == "docs/releases/v0.0.2.md"
    assert tag_message("0.0.2", "M1\nText tools") == "Release v0.0.2 - M1 Text tools"
    assert release_commit_message("M1 Text tools", "v0.0.2") == (
        "chore(orchestrator): Complete M1 Text tools milestone release\n\n"
        "- Tagged: v0.0.2\n"
        "- Release notes: docs/releases/v0.0.2.md\n"
        "- Artifacts archived to docs/tasks/\n"
    )
