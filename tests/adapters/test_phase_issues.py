"""Phase issues on the fake GitHub (issue 6): one per phase, linked from the tickets, updated on re-runs, closed
when the phase's verification ticket is done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.adapters.forges.github import GitHubForge
from conveyor.domain.ticket import Severity, State, Ticket, TicketKind
from conveyor.services.phase_issues import close_phase_issue, issue_number, open_phase_issues
from conveyor.settings import Settings
from tests.support.fake_github import FakeGitHub


@pytest.fixture
def forge(checkout: Path, fake: FakeGitHub) -> Iterator[GitHubForge]:
    made = GitHubForge(checkout, owner=fake.owner, name=fake.name, token="t", api_url=fake.url)
    yield made
    made.close()


def _tickets() -> list[Ticket]:
    return [
        Ticket(
            id="WG-HIGH-001", title="Fix the crash", phase=1, severity=Severity.HIGH, acceptance_criteria=("no crash",)
        ),
        Ticket(id="WG-VER-001", title="Verify phase 1", phase=1, kind=TicketKind.VERIFICATION),
        Ticket(id="WG-LOW-001", title="Tidy names", phase=2, severity=Severity.LOW),
    ]


def test_one_issue_per_phase_linked_from_its_tickets_and_updated_on_rerun(forge: GitHubForge, fake: FakeGitHub) -> None:
    settings = Settings()
    linked = open_phase_issues(forge, settings, _tickets())
    assert sorted(i.title for i in fake.issues.values()) == ["Milestone 0.0.1: phase 1", "Milestone 0.0.1: phase 2"]
    (milestone,) = fake.milestones.values()
    assert all(i.milestone == milestone.number and i.labels == ["conveyor"] for i in fake.issues.values())
    phase1 = next(i for i in fake.issues.values() if i.title.endswith("phase 1"))
    assert "- WG-HIGH-001: [high] Fix the crash" in phase1.body and "- [ ] WG-HIGH-001: no crash" in phase1.body
    assert "Closed when WG-VER-001" in phase1.body
    assert issue_number(linked[0].issue) == issue_number(linked[1].issue) == phase1.number
    assert issue_number(linked[2].issue) != phase1.number

    again = open_phase_issues(forge, settings, linked)
    assert again == linked and len(fake.issues) == 2  # found by title: updated, never duplicated


def test_the_verification_ticket_done_closes_its_phase_issue(forge: GitHubForge, fake: FakeGitHub) -> None:
    linked = open_phase_issues(forge, Settings(), _tickets())
    assert not close_phase_issue(forge, linked[0])  # not a verification ticket
    assert not close_phase_issue(forge, linked[1])  # not done yet
    assert close_phase_issue(forge, linked[1].model_copy(update={"state": State.DONE}))
    states = {i.title: i.state for i in fake.issues.values()}
    assert states == {"Milestone 0.0.1: phase 1": "closed", "Milestone 0.0.1: phase 2": "open"}
