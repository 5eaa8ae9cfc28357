"""One xdist worker for every test of tests/server, so that a test session starts one Prefect server, not two.

A session fixture runs once per xdist worker that runs a test needing it. xdist's own ``--dist loadgroup`` with
``xdist_group`` marks does not group under pytest 9.2: it renames node ids through a field pytest no longer reads
(pytest-dev/pytest-xdist#1386, open), so the tests are spread as if unmarked. This plugin is that scheduler with
the group given by path instead: the tests under tests/server are one work unit; every other test is a unit of
its own, as with ``--dist load``. xdist sends the largest units first, so the server tests start at once and
the rest of the suite runs beside them on the other worker.

scripts/check loads it: ``pytest -n 2 -p tests.server.xdist_scheduling``. A plain ``pytest -n 2 tests/server``
without it still passes, with a server per worker.
"""

from __future__ import annotations

import pytest

# pytest-xdist ships no type information.
from xdist.remote import Producer  # type: ignore[import-untyped]
from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

SERVER_TESTS = "tests/server/"


class ServerGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]
    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith(SERVER_TESTS):
            return SERVER_TESTS
        return str(super()._split_scope(nodeid))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadGroupScheduling | None:
    # Only in place of the default distribution (-n N alone is --dist load): an explicit other mode wins.
    if config.getvalue("dist") in {"load", "loadgroup"}:
        return ServerGroupScheduling(config, log)
    return None
