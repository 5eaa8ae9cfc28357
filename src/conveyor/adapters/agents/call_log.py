"""Per-call logs and replay-buffer traces (seed 000's Notes; ARCHITECTURE.md §2, §5).

Every agent call writes

- ``automations/logs/<role>/<timestamp>.json``: the whole call (request inputs, context, system prompt,
  outputs, usage, cost, model, backend, timing, error, and the transcript messages when the backend handed
  any over). The timestamp is UTC with milliseconds (``20260105T093000.123Z``); a second call in the same
  millisecond gets ``-2``, ``-3``... The name is claimed with a hard link, so concurrent writers (threads or
  processes) never overwrite each other and a reader never sees half a file.
- one line in ``automations/memory/replay/<run_id>.jsonl``: the call's identity, inputs and outputs, usage and
  the path of its log (not the context or the messages: those stay in the log). Lines are appended with
  ``O_APPEND`` in one ``write`` each; a reader should skip a torn last line after a crash.

Both are redacted (:mod:`conveyor.adapters.agents.redaction`) and gitignored by ``conveyor init``.

Backends hand their transcript (a list of message dicts) to the logger in one of two ways:

- implement :class:`TranscriptSource` (``pop_transcript(request)``; the recording wrapper calls it right after
  ``run`` returns), or
- write it to a file (a JSON list, or JSON lines) and put that path in ``AgentResult.transcript``
  (absolute, or relative to the repository root).

The recording wrapper then points ``AgentResult.transcript`` at the call's log.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from conveyor.adapters.agents.redaction import Redactor, secrets_from_environment
from conveyor.domain.agent import AgentRequest, AgentResult
from conveyor.ports import Clock, utcnow

LOGS_DIR = Path("automations") / "logs"
TRACES_DIR = Path("automations") / "memory" / "replay"
LOG_FORMAT = "conveyor.agent-call/1"
TRACE_FORMAT = "conveyor.agent-trace/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_APPEND_LOCK = threading.Lock()

Message = dict[str, Any]


@runtime_checkable
class TranscriptSource(Protocol):
    """A backend that keeps the messages of its calls for the logger to take."""

    def pop_transcript(self, request: AgentRequest) -> list[Message] | None:
        """The messages of the call that just answered ``request`` (removed from the backend), if any."""
        ...


def safe_name(text: str) -> str:
    """A file-name-safe form of a role or run id (no separators, no leading dot)."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    return cleaned or "_"


def timestamp_stem(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y%m%dT%H%M%S") + f".{utc.microsecond // 1000:03d}Z"


def load_transcript_file(path: Path) -> list[Message] | None:
    """Messages from a JSON list or a JSON-lines file; None when the file is missing or is neither."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        messages = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                return None
            messages.append(item)
        data = messages
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        data = data["messages"]
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        return None
    return data


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` atomically to ``<stem><suffix>``, or ``<stem>-N<suffix>`` if taken; never overwrites."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        n = 1
        while True:
            target = directory / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                n += 1
                continue
            except OSError:
                # No hard links on this file system: claim the name exclusively, then rename over it.
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                except FileExistsError:
                    n += 1
                    continue
                tmp.replace(target)
            break
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(directory)
    return target


def append_line(path: Path, line: str) -> None:
    """Append one line (a single ``write`` on an ``O_APPEND`` descriptor), fsync'd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    with _APPEND_LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _iso(moment: datetime) -> str:
    return (moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def call_identity(request: AgentRequest) -> dict[str, Any]:
    return {
        "run_id": request.run_id,
        "ticket_id": request.ticket_id,
        "role": request.role.value,
        "stage": request.stage,
        "attempt": request.attempt,
        "tier": request.tier.value,
        "prompt_version": request.prompt_version,
        "base_commit": request.base_commit,
        "replay_key": request.replay_key(),
        "input_hash": request.input_hash(),
    }


def log_record(
    request: AgentRequest,
    result: AgentResult | None,
    *,
    started_at: datetime,
    finished_at: datetime,
    transcript_messages: list[Message] | None = None,
    transcript_source: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The (unredacted) JSON document of one call's log. ``result`` is None when the backend raised."""
    req = request.model_dump(mode="json")
    record: dict[str, Any] = {
        "format": LOG_FORMAT,
        "call": call_identity(request),
        "backend": result.backend if result else None,
        "model": result.model if result else None,
        "timing": {
            "started_at": _iso(started_at),
            "finished_at": _iso(finished_at),
            "duration_s": result.duration_s if result else max(0.0, (finished_at - started_at).total_seconds()),
        },
        "request": {
            key: req[key] for key in ("system", "inputs", "context", "tools", "workdir", "output_schema", "limits")
        },
        "result": None,
        "usage": None,
        "cost_usd": None,
        "error": None,
        "transcript": None,
        "extra": extra or {},
    }
    if result is not None:
        res = result.model_dump(mode="json")
        record["result"] = {
            key: res[key]
            for key in ("task_id", "status", "used", "commit_sha", "notes", "output", "text", "stop_reason", "replayed")
        }
        record["usage"] = res["usage"]
        record["cost_usd"] = res["cost_usd"]
        if result.error_kind is not None:
            record["error"] = {"kind": result.error_kind.value, "detail": result.error_detail}
    if transcript_messages is not None or transcript_source is not None:
        record["transcript"] = {"source": transcript_source, "messages": transcript_messages or []}
    return record


def trace_record(request: AgentRequest, result: AgentResult | None, *, at: datetime, log: str) -> dict[str, Any]:
    """One line of the replay buffer: who was asked what, what came back, and where the full log is."""
    line: dict[str, Any] = {"format": TRACE_FORMAT, "at": _iso(at), **call_identity(request)}
    line["inputs"] = request.inputs
    if result is None:
        line.update(status=None, error_kind="exception", log=log)
        return line
    line.update(
        backend=result.backend,
        model=result.model,
        status=result.status.value,
        error_kind=result.error_kind.value if result.error_kind else None,
        commit_sha=result.commit_sha,
        used=result.used,
        usage=result.usage.model_dump(mode="json"),
        cost_usd=result.cost_usd,
        duration_s=result.duration_s,
        replayed=result.replayed,
        output=result.output,
        text=result.text,
        notes=result.notes,
        log=log,
    )
    return line


class CallLog:
    """Writes the log file and the trace line of each call under one repository, redacted."""

    def __init__(
        self,
        repo_root: Path,
        *,
        clock: Clock = utcnow,
        known_secrets: Iterable[str] | None = None,
        keep_traces: bool = True,
    ) -> None:
        """``known_secrets`` None: the values of secret-named environment variables."""
        self.repo_root = Path(repo_root)
        self.clock = clock
        self.redactor = Redactor(secrets_from_environment(os.environ) if known_secrets is None else known_secrets)
        self.keep_traces = keep_traces

    def display(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_root).as_posix()
        except ValueError:
            return str(path)

    def log_dir(self, request: AgentRequest) -> Path:
        return self.repo_root / LOGS_DIR / safe_name(request.role.value)

    def trace_file(self, run_id: str) -> Path:
        return self.repo_root / TRACES_DIR / f"{safe_name(run_id)}.jsonl"

    def write(
        self,
        request: AgentRequest,
        result: AgentResult | None,
        *,
        started_at: datetime,
        finished_at: datetime | None = None,
        transcript_messages: list[Message] | None = None,
        transcript_source: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write the call's log (and its trace line unless traces are off); returns the log's path."""
        finished = finished_at or self.clock()
        record = log_record(
            request,
            result,
            started_at=started_at,
            finished_at=finished,
            transcript_messages=transcript_messages,
            transcript_source=transcript_source,
            extra=extra,
        )
        text = json.dumps(self.redactor(record), indent=2, ensure_ascii=False) + "\n"
        path = write_new_file(self.log_dir(request), timestamp_stem(started_at), ".json", text.encode("utf-8"))
        if self.keep_traces:
            line = trace_record(request, result, at=finished, log=self.display(path))
            append_line(self.trace_file(request.run_id), json.dumps(self.redactor(line), ensure_ascii=False))
        return path
