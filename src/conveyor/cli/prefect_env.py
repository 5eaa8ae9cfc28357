"""Where flows report: PREFECT_API_URL when set, else a local API whose home is the repository's .conveyor/prefect.

``prefect server start`` with that PREFECT_HOME shows the runs afterwards (ARCHITECTURE.md §6). Must run
before prefect is imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

API_FILE = ".conveyor/prefect/api.json"


def configure_prefect(repo: Path) -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # A server with Conveyor's zombie automation crashes a run silent for 90 s; Prefect's default beat is 180 s.
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    if not os.environ.get("PREFECT_API_URL"):
        home = repo.resolve() / ".conveyor" / "prefect"
        home.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("PREFECT_HOME", str(home))


def record_api(repo: Path) -> None:
    """Write where this run's Prefect API listens, so `conveyor answer` from another shell can reach it."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start()
        url = server.api_url
    path = repo / API_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"api_url": url, "pid": os.getpid()}) + "\n", encoding="utf-8")
