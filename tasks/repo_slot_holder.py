"""Who holds a repository's slot (.conveyor/slot): written by the holder, read by a waiter.

A waiter must tell a live holder from a dead one before it frees a slot on an API that runs no repossessor. The
repository lease cannot tell it: a flow may hold the slot for a while without the lease (the improvement loop holds
the slot across its loops and takes the lease only for its steps). So the holder records itself here: host, pid and
the pid's start time (a reused pid is another process). A holder on another host counts as live: there the API is
a lasting server, whose repossessor frees a dead holder's slot when its lease expires.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from conveyor.adapters.atomic import write_json, write_text

HOLDER_FILE = ".conveyor/slot"


def _pid_start(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class SlotHolder(BaseModel):
    flow_run: str
    host: str
    pid: int
    pid_start: str | None
    since: datetime
    token: str

    def is_live(self) -> bool:
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        start = _pid_start(self.pid)
        return self.pid_start is None or start is None or start == self.pid_start

    def describe(self) -> str:
        return f"flow run {self.flow_run} (pid {self.pid} on {self.host}, since {self.since:%Y-%m-%d %H:%M:%S} UTC)"


def read_holder(root: Path) -> SlotHolder | None:
    try:
        return SlotHolder.model_validate(json.loads((root / HOLDER_FILE).read_text()))
    except (OSError, ValueError, ValidationError):
        return None


def record_holder(root: Path, flow_run: str) -> SlotHolder:
    folder = (root / HOLDER_FILE).parent
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".gitignore").exists():  # .conveyor/ is local state, as the repository lease keeps it
        write_text(folder / ".gitignore", "*\n")
    pid = os.getpid()
    holder = SlotHolder(
        flow_run=flow_run,
        host=socket.gethostname(),
        pid=pid,
        pid_start=_pid_start(pid),
        since=datetime.now(UTC),
        token=uuid.uuid4().hex,
    )
    write_json(root / HOLDER_FILE, holder.model_dump(mode="json"))
    return holder


def remove_holder(root: Path, holder: SlotHolder) -> None:
    """Remove the record if it is still this holder's (a reclaimer may have replaced it)."""
    current = read_holder(root)
    if current is not None and current.token == holder.token:
        (root / HOLDER_FILE).unlink(missing_ok=True)
