"""The EventSink port over Prefect events: ``conveyor.ticket.*`` and ``conveyor.milestone.*`` for automations."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event


class PrefectEvents:
    def emit(self, event: str, *, resource: dict[str, str], payload: dict[str, Any]) -> None:
        ident = resource.get("id", "unknown")
        labels = {f"conveyor.{k}": v for k, v in resource.items() if k != "id"}
        emit_event(
            event=event,
            resource={"prefect.resource.id": f"conveyor.ticket.{ident}", "prefect.resource.name": ident, **labels},
            payload=payload,
        )
