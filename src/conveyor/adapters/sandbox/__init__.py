"""Sandbox adapters: where the implementer's commands run (ARCHITECTURE.md §5).

``none`` (:class:`~conveyor.adapters.sandbox.local.LocalSandbox`) is UNSAFE: code the agent wrote runs with the
user's rights. ``bwrap`` (:class:`~conveyor.adapters.sandbox.bwrap.BwrapSandbox`) runs it under bubblewrap with
no network and only the worktree writable. :func:`~conveyor.adapters.sandbox.select.select_sandbox` picks one
from the build-spec's ``agents.sandbox`` setting.
"""
