"""The repository slot (ARCHITECTURE.md §3): a flow run on a repository holds one slot of the global concurrency
limit ``slot_name(root)`` (limit 1), besides the repository lease.

The lease (.conveyor/lease) is what keeps a second writer out; the slot makes a second flow run on the repository
(a scheduled improvement loop, a deployment run) wait in Prefect for the first instead of failing on the lease,
and shows in the UI which flow run holds the repository.

Re-entrant along a call chain: the improvement loop runs the execution loop as a subflow on the same repository,
in the same process; the names held by the current context are in a ContextVar, so that nested acquisition passes
while a sibling task or thread that did not inherit the context still waits.

Leased, like the LLM limiter (tasks/limiter.py): Prefect renews the lease while the holder lives, and a
long-lived server's repossessor frees a killed holder's slot when the lease expires. An ephemeral API runs no
repossessor, so a waiter frees the slot itself (resets active_slots) when the holder recorded in .conveyor/slot
(tasks/repo_slot_holder.py) is dead or missing on two polls in a row. Not the repository lease: a flow may hold
the slot without it (the improvement loop between its steps). Two polls, not one: a new holder writes its record
a moment after it gets the slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, AsyncExitStack, ExitStack, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx
from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.asyncio import concurrency as async_concurrency
from prefect.concurrency.sync import concurrency as sync_concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists
from prefect.logging import get_run_logger

from tasks.repo_slot_holder import read_holder, record_holder, remove_holder

LEASE_S = 60.0  # the API's minimum lease
POLL_S = 1.0
_held: ContextVar[frozenset[str]] = ContextVar("conveyor_repo_slots", default=frozenset())
_log = logging.getLogger(__name__)


def slot_name(root: Path) -> str:
    """``conveyor-repo-<slug>-<hash>``: the folder's name, and a hash of its path so that two repositories with
    the same folder name on one server do not share (and reset) one slot."""
    path = root.resolve()
    slug = re.sub(r"[^a-z0-9]+", "-", path.name.lower()).strip("-") or "repo"
    return f"conveyor-repo-{slug}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def active_slots(root: Path) -> int:
    with get_client(sync_client=True) as client:
        return int(client.read_global_concurrency_limit_by_name(slot_name(root)).active_slots)


def _locked(exc: ConcurrencySlotAcquisitionError) -> bool:
    """The slot is taken (HTTP 423), as opposed to a real failure."""
    cause = exc.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == httpx.codes.LOCKED


def _holder() -> ConcurrencyLeaseHolder | None:
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None
    return ConcurrencyLeaseHolder(type="flow_run", id=context.flow_run.id)


def _flow_run_label() -> str:
    context = FlowRunContext.get()
    return context.flow_run.name if context is not None and context.flow_run is not None else "(none)"


class RepoSlot:
    """``with repo_slot(root):`` in sync flows, ``async with repo_slot(root):`` in async ones.

    ``inner``: a (sync) context manager entered once the slot is held and left before it is released; async flows
    pass the RepositoryLease this way, since ``async with`` cannot also take a sync context manager.
    """

    def __init__(self, root: Path, *, inner: AbstractContextManager[object] | None = None, poll_s: float = POLL_S):
        self.root = root.resolve()
        self.name = slot_name(self.root)
        self.inner = inner
        self.poll_s = poll_s
        self._unheld_polls = 0
        self._told = False
        self._stack = ExitStack()
        self._astack = AsyncExitStack()

    @property
    def nested(self) -> bool:
        return self.name in _held.get()

    def _prepare(self) -> None:
        # Another starter may create it between the upsert's read and its create.
        with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
            client.upsert_global_concurrency_limit_by_name(name=self.name, limit=1)

    def _looks_free(self) -> bool:
        """Try only when a slot looks free: Prefect logs each refused attempt (HTTP 423) as an error."""
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(self.name)
        return limit.active_slots < limit.limit

    def _taken(self) -> None:
        """Called after each refused attempt: say once what we wait for; free a dead holder's slot."""
        holder = read_holder(self.root)
        if holder is not None and holder.is_live():
            self._unheld_polls = 0
            if not self._told:
                self._told = _warn(f"waiting for the slot {self.name} of {self.root}: held by {holder.describe()}")
            return
        self._unheld_polls += 1
        if self._unheld_polls >= 2:
            gone = holder.describe() if holder else "a holder that left no record"
            _warn(f"freeing the slot {self.name} of {self.root}: {gone} is gone")
            with get_client(sync_client=True) as client:
                client.update_global_concurrency_limit(self.name, GlobalConcurrencyLimitUpdate(active_slots=0))
            self._unheld_polls = 0

    # max_retries=0: a taken slot raises at once, so this loop (not Prefect's) waits and can free a dead holder's
    # slot. A failed lease renewal must not cancel the run: the repository lease still guards the repository.
    def _slot_options(self) -> dict[str, Any]:
        return {
            "lease_duration": LEASE_S,
            "strict": True,
            "max_retries": 0,
            "holder": _holder(),
            "raise_on_lease_renewal_failure": False,
        }

    def _sync_slot(self) -> AbstractContextManager[None]:
        return sync_concurrency(self.name, **self._slot_options())

    def _async_slot(self) -> AbstractAsyncContextManager[None]:
        return async_concurrency(self.name, **self._slot_options())

    def _held_now(self, stack: ExitStack | AsyncExitStack, *, nested: bool) -> None:
        """The slot is held: record the holder (the outermost one), mark it for nested acquisitions, then enter
        ``inner``; each undone in reverse order, before the slot is released."""
        if not nested:
            stack.callback(remove_holder, self.root, record_holder(self.root, _flow_run_label()))
        token = _held.set(_held.get() | {self.name})
        stack.callback(_held.reset, token)
        if self.inner is not None:
            stack.enter_context(self.inner)

    def __enter__(self) -> RepoSlot:
        with ExitStack() as stack:
            nested = self.nested
            if not nested:
                self._prepare()
                while not (self._looks_free() and _acquired(stack.enter_context, self._sync_slot)):
                    self._taken()
                    time.sleep(self.poll_s)
            self._held_now(stack, nested=nested)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    async def __aenter__(self) -> RepoSlot:
        async with AsyncExitStack() as stack:
            nested = self.nested
            if not nested:
                await asyncio.to_thread(self._prepare)
                while not (
                    await asyncio.to_thread(self._looks_free) and await _acquired_async(stack, self._async_slot)
                ):
                    await asyncio.to_thread(self._taken)
                    await asyncio.sleep(self.poll_s)
            self._held_now(stack, nested=nested)
            self._astack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._astack.aclose()


def _acquired(
    enter: Callable[[AbstractContextManager[None]], None], slot: Callable[[], AbstractContextManager[None]]
) -> bool:
    try:
        enter(slot())
    except ConcurrencySlotAcquisitionError as exc:
        if not _locked(exc):
            raise
        return False
    return True


async def _acquired_async(stack: AsyncExitStack, slot: Callable[[], AbstractAsyncContextManager[None]]) -> bool:
    try:
        await stack.enter_async_context(slot())
    except ConcurrencySlotAcquisitionError as exc:
        if not _locked(exc):
            raise
        return False
    return True


def _warn(message: str) -> bool:
    try:
        get_run_logger().warning("%s", message)
    except Exception:  # outside a flow or task run
        _log.warning("%s", message)
    return True


def repo_slot(root: Path, *, inner: AbstractContextManager[object] | None = None, poll_s: float = POLL_S) -> RepoSlot:
    """Hold the repository's slot for a ``with`` / ``async with`` block (re-entrant in one call chain), and
    ``inner`` within it."""
    return RepoSlot(root, inner=inner, poll_s=poll_s)
