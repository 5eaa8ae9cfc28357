"""Apply Conveyor's automations (automations/definitions.py) to the configured Prefect server.

Upsert by name: the first automation of that name is updated in place (same id), any other of the same name is
deleted, none is created; so re-applying leaves exactly one per name. A person's disabling of an automation is
kept (``enabled`` is carried over).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.objects import BlockDocument
from prefect.client.schemas.sorting import AutomationSort
from prefect.events.filters import AutomationFilter, AutomationFilterName
from prefect.events.schemas.automations import AutomationCore
from prefect.exceptions import ObjectNotFound

from automations import definitions
from conveyor.domain.errors import ConveyorError


@dataclass(frozen=True)
class AppliedAutomation:
    name: str
    outcome: str  # created | updated | skipped
    id: UUID | None = None
    reason: str = ""


def upsert_automation(automation: AutomationCore) -> AppliedAutomation:
    with get_client(sync_client=True) as client:
        # Oldest first: the one kept is the one people have known the longest (its id is in their links).
        by_name = AutomationFilter(name=AutomationFilterName(any_=[automation.name]))
        found = client.read_automations(automations=by_name, sort=AutomationSort.CREATED_DESC)[::-1]
        if not found:
            return AppliedAutomation(automation.name, "created", client.create_automation(automation))
        keep, *extra = found
        automation = automation.model_copy(update={"enabled": keep.enabled})
        client.update_automation(keep.id, automation)
        for duplicate in extra:
            client.delete_automation(duplicate.id)
        return AppliedAutomation(automation.name, "updated", keep.id)


def _is_notifier(document: BlockDocument) -> bool:
    return bool(document.block_schema and "notify" in document.block_schema.capabilities)


def find_notification_block(ref: str) -> UUID:
    """The id of the notification block document ``ref``: ``<block-type-slug>/<name>`` or a name alone."""
    with get_client(sync_client=True) as client:
        if "/" in ref:
            slug, name = ref.split("/", 1)
            try:
                candidates = [client.read_block_document_by_name(name, slug, include_secrets=False)]
            except ObjectNotFound:
                candidates = []
        else:
            candidates = [d for d in client.read_block_documents(include_secrets=False) if d.name == ref]
    notifiers = [d for d in candidates if _is_notifier(d)]
    if len(notifiers) == 1:
        return notifiers[0].id
    if not notifiers:
        other = f" ({candidates[0].block_type_name} is not a notification block)" if candidates else ""
        raise ConveyorError(f"no notification block named {ref!r}{other}: create one in the UI (Blocks) first")
    kinds = ", ".join(f"{d.block_type.slug if d.block_type else '?'}/{ref}" for d in notifiers)
    raise ConveyorError(f"several notification blocks are named {ref!r}: name one as <type>/<name> ({kinds})")


def _deployment(full_name: str) -> tuple[UUID, str | None] | None:
    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return None
    repo = found.parameters.get("repo")
    return found.id, str(repo) if repo else None


def apply_automations(
    *,
    name: str = "conveyor",
    notify_block: str | None = None,
    zombie_after_s: float = definitions.DEFAULT_ZOMBIE_AFTER_S,
) -> list[AppliedAutomation]:
    """Upsert the zombie-run, blocked-ticket and milestone-release automations; ``name``: the deployments' name
    (``conveyor deploy --name``). Without ``notify_block``, or without a ``milestone-release/<name>`` deployment,
    that automation is skipped (with the reason)."""
    block_id = find_notification_block(notify_block) if notify_block else None  # before anything changes
    applied = [upsert_automation(definitions.zombie_runs(zombie_after_s))]
    if block_id is None:
        reason = "no notification block given (--notify-block)"
        applied.append(AppliedAutomation(definitions.BLOCKED, "skipped", reason=reason))
    else:
        applied.append(upsert_automation(definitions.ticket_blocked(block_id)))
    target = _deployment(f"milestone-release/{name}")
    if target is None:
        reason = f"no deployment milestone-release/{name}: run `conveyor deploy` (with --name {name}) first"
        applied.append(AppliedAutomation(definitions.milestone_name(name), "skipped", reason=reason))
    else:
        applied.append(upsert_automation(definitions.milestone_release(name, *target)))
    return applied
