"""Conveyor's automations (automations/) and `conveyor automations apply` on the session's real Prefect API, read
back after applying: the zombie-run trigger and action, the blocked-ticket notification through a named block, the
milestone release's RunDeployment with its parameter templated from the event, one automation per name after
re-applying, and what is skipped and why. (Firing on real events is tested against `prefect server start`.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.actions import ChangeFlowRunState, RunDeployment, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.settings import PREFECT_API_URL

from automations.apply import apply_automations, find_notification_block
from automations.definitions import BLOCKED, REPO_FROM_EVENT, ZOMBIE, milestone_name
from conveyor.domain.errors import ConveyorError
from deployments.apply import apply_deployments


def _read(name: str) -> list[Automation]:
    with get_client(sync_client=True) as client:
        return [Automation(**a.model_dump()) for a in client.read_automations_by_name(name)]


@pytest.fixture
def name() -> Iterator[str]:
    """A deployment name of this test; every automation applied is deleted afterwards, since the session's server
    evaluates them: the zombie automation would crash other tests' flow runs (Prefect's default heartbeat is 180 s)."""
    deployment_name = f"auto-{uuid.uuid4().hex[:8]}"
    yield deployment_name
    with get_client(sync_client=True) as client:
        for automation_name in (ZOMBIE, BLOCKED, milestone_name(deployment_name)):
            for automation in client.read_automations_by_name(automation_name):
                client.delete_automation(automation.id)


@pytest.fixture
def webhook() -> str:
    block_name = f"hook-{uuid.uuid4().hex[:8]}"
    CustomWebhookNotificationBlock(name="conveyor", url="http://127.0.0.1:9/hook").save(block_name)
    return block_name


def test_the_three_automations_read_back_as_applied(name: str, webhook: str, tmp_path: Path) -> None:
    deployments = {d.flow: d for d in apply_deployments(name=name, work_pool="conveyor", repo=str(tmp_path))}
    applied = apply_automations(name=name, notify_block=webhook, zombie_after_s=120)
    assert [(a.name, a.outcome) for a in applied] == [
        (ZOMBIE, "created"),
        (BLOCKED, "created"),
        (milestone_name(name), "created"),
    ]

    (zombie,) = _read(ZOMBIE)
    trigger = zombie.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.posture == Posture.Proactive
    assert trigger.within == timedelta(seconds=120) and trigger.threshold == 1
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert trigger.expect == {"prefect.flow-run.*"}
    assert trigger.for_each == {"prefect.resource.id"}
    (crash,) = zombie.actions
    assert isinstance(crash, ChangeFlowRunState) and crash.state == StateType.CRASHED and crash.message

    (blocked,) = _read(BLOCKED)
    assert isinstance(blocked.trigger, EventTrigger) and blocked.trigger.expect == {"conveyor.ticket.blocked"}
    (notify,) = blocked.actions
    assert isinstance(notify, SendNotification)
    assert notify.block_document_id == find_notification_block(webhook)
    assert "{{ event.resource['prefect.resource.name'] }}" in notify.subject
    assert "{{ event.resource['conveyor.repo'] }}" in notify.subject
    assert "{{ event.payload.detail }}" in notify.body

    (release,) = _read(milestone_name(name))
    assert isinstance(release.trigger, EventTrigger)
    assert release.trigger.expect == {"conveyor.milestone.ready"}
    match = ResourceSpecification.model_validate(release.trigger.match).model_dump()
    assert match["prefect.resource.id"] == "conveyor.milestone.*"
    assert match["conveyor.path"] == str(tmp_path.resolve())  # this deployment's repository only
    (run,) = release.actions
    assert isinstance(run, RunDeployment)
    assert run.source == "selected" and run.deployment_id == deployments["milestone-release"].id
    assert run.parameters == {"repo": REPO_FROM_EVENT}
    assert REPO_FROM_EVENT["template"] == "{{ event.resource['conveyor.path'] }}"


def test_reapplying_keeps_one_automation_per_name_and_a_persons_disabling(name: str, webhook: str) -> None:
    apply_deployments(name=name, work_pool="conveyor")
    first = {a.name: a.id for a in apply_automations(name=name, notify_block=webhook)}
    zombie = _read(ZOMBIE)[0]
    zombie.disable()  # a person turned it off
    Automation(**zombie.model_dump(exclude={"id"})).create()  # and someone made a copy by hand
    again = apply_automations(name=name, notify_block=webhook, zombie_after_s=300)
    assert {a.name: a.id for a in again} == first
    assert {a.outcome for a in again} == {"updated"}
    for automation_name in first:
        assert len(_read(automation_name)) == 1
    (zombie,) = _read(ZOMBIE)
    assert zombie.enabled is False
    assert isinstance(zombie.trigger, EventTrigger) and zombie.trigger.within == timedelta(seconds=300)
    (release,) = _read(milestone_name(name))
    assert "conveyor.path" not in release.trigger.model_dump()["match"]  # a deployment for any repository


def test_what_cannot_be_applied_is_skipped_with_the_reason(name: str) -> None:
    applied = {a.name: a for a in apply_automations(name=name)}
    assert applied[ZOMBIE].outcome == "created"
    assert applied[BLOCKED].outcome == "skipped" and "--notify-block" in applied[BLOCKED].reason
    release = applied[milestone_name(name)]
    assert release.outcome == "skipped" and f"milestone-release/{name}" in release.reason
    assert _read(BLOCKED) == [] and _read(milestone_name(name)) == []


def test_the_notification_block_is_found_by_name_or_type_and_name(webhook: str) -> None:
    block_id = find_notification_block(webhook)
    assert find_notification_block(f"custom-webhook/{webhook}") == block_id
    with pytest.raises(ConveyorError, match="no notification block named 'nobody'"):
        find_notification_block("nobody")
    secret = f"secret-{uuid.uuid4().hex[:8]}"
    Secret(value="x").save(secret)
    with pytest.raises(ConveyorError, match="is not a notification block"):
        find_notification_block(secret)


@pytest.mark.slow
def test_conveyor_automations_apply_prints_each_outcome(name: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    argv = [sys.executable, "-m", "conveyor", "automations", "apply", "--name", name, "--zombie-after", "120"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{ZOMBIE}: created (id " in done.stdout
    assert f"{BLOCKED}: skipped: no notification block given (--notify-block)" in done.stdout
    assert f"{milestone_name(name)}: skipped: no deployment milestone-release/{name}" in done.stdout
    assert "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in done.stdout


def test_conveyor_automations_apply_without_a_reachable_api_is_a_clear_error() -> None:
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    argv = [sys.executable, "-m", "conveyor", "automations", "apply"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "cannot reach the Prefect API at http://127.0.0.1:9/api" in done.stderr
    assert "Traceback" not in done.stderr


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def _wait_for(check: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_the_templates_render_from_the_events(name: str, tmp_path: Path) -> None:
    """The session's server evaluates automations too: the notification's text and the release's parameter are
    rendered from the triggering event (the real server and worker runs are tested elsewhere)."""
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    block = f"hook-{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    CustomWebhookNotificationBlock(name="conveyor", url=url, json_data={"text": "{{subject}}|{{body}}"}).save(block)
    release = {d.flow: d for d in apply_deployments(name=name, work_pool="conveyor", repo=str(tmp_path))}
    apply_automations(name=name, notify_block=block)
    ticket = f"T-{uuid.uuid4().hex[:6]}"
    labels = {"conveyor.repo": "shop", "conveyor.run": "RUN-20260101-0000"}
    emit_event(
        event="conveyor.ticket.blocked",
        resource={"prefect.resource.id": f"conveyor.ticket.{ticket}", "prefect.resource.name": ticket, **labels},
        payload={"state": "blocked", "detail": "three review rounds"},
    )
    for path in ("/some/other/repository", str(tmp_path.resolve())):  # only this deployment's repository counts
        emit_event(
            event="conveyor.milestone.ready",
            resource={"prefect.resource.id": "conveyor.milestone.m1", "conveyor.path": path, **labels},
            payload={},
        )

    def runs() -> list[dict[str, object]]:
        with get_client(sync_client=True) as client:
            found = client.read_flow_runs(limit=200)
        return [r.parameters for r in found if r.deployment_id == release["milestone-release"].id]

    try:
        assert _wait_for(lambda: any(ticket in text for text in _Hook.received))
        assert _wait_for(lambda: bool(runs()))
    finally:
        hook.shutdown()
    text = next(t for t in _Hook.received if ticket in t)
    assert f"Conveyor: {ticket} is blocked in shop|Ticket {ticket} of repository shop (run RUN-20260101-0000)" in text
    assert "is blocked: three review rounds" in text
    time.sleep(2)  # the other repository's event had its chance to fire too
    assert runs() == [{"repo": str(tmp_path.resolve())}]
