"""The EventSink port over Prefect events: ``conveyor.ticket.*`` and ``conveyor.milestone.*`` for automations.

The resource is ``conveyor.<kind>.<id>`` (a ticket id, or a milestone name) with the run and repository as labels.
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event


class PrefectEvents:
    def emit(self, event: str, *, resource: dict[str, str], payload: dict[str, Any]) -> None:
        ident = resource.get("id", "unknown")
        kind = event.split(".")[1] if event.count(".") >= 2 else "ticket"  # conveyor.<kind>.<what>
        labels = {f"conveyor.{k}": v for k, v in resource.items() if k != "id"}
        emit_event(
            event=event,
            resource={"prefect.resource.id": f"conveyor.{kind}.{ident}", "prefect.resource.name": ident, **labels},
            payload=payload,
        )
