"""The Limiter port over a Prefect global concurrency limit with leased slots (ARCHITECTURE.md §6).

Every agent call of a run holds one slot of ``conveyor-llm-<repo-slug>``, so concurrent LLM calls on a
repository are capped (at ``workers``). Slots are leased: Prefect renews the lease while a call runs. A process
killed mid-call stops renewing; a long-lived Prefect server's repossessor service frees its slot when the lease
expires. An ephemeral API does not run that service, so a new run, which holds the repository lease and therefore
knows that no live process of this repository holds a slot, frees what dead runs left (``reclaim``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency

DEFAULT_LEASE_S = 60.0  # the API's minimum


def limit_name(repo_slug: str) -> str:
    return f"conveyor-llm-{repo_slug}".lower()


class PrefectLimiter:
    def __init__(self, limit: int, *, name: str, lease_s: float = DEFAULT_LEASE_S, reclaim: bool = True) -> None:
        self.name = name
        self.lease_s = lease_s
        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(name=name, limit=limit)
            if reclaim:
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))

    def slot(self) -> AbstractContextManager[Any]:
        return concurrency(self.name, occupy=1, lease_duration=self.lease_s, strict=True)
