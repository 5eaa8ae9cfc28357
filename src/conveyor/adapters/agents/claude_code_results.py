"""The claude-code backend's reading of results: the implementer's result JSON, and the CLI's failures (its
ResultMessage, API errors after its own retries, the SDK's exceptions) as Conveyor's error kinds."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

from conveyor.adapters.agents.claude_code_call import CallState
from conveyor.domain.agent import AgentRequest, ErrorKind, WorkerStatus

_JSON_FENCE = re.compile(r"```(?:json)?\s*(?P<body>\{.*?\})\s*```", re.DOTALL)


def parse_finish(text: str) -> dict[str, Any] | None:
    """The result JSON at the end of the model's final message (a line or a ```json fence), if any."""
    candidates = [m["body"] for m in _JSON_FENCE.finditer(text)]
    candidates += [line.strip() for line in text.splitlines() if line.strip().startswith("{")]
    for body in reversed(candidates):
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if isinstance(data, dict) and "status" in data:
            return data
    return None


def implementer_outcome(request: AgentRequest, text: str) -> tuple[WorkerStatus, str, str]:
    """The implementer's status, notes and commit message, from the result JSON in its final message ``text``."""
    finish = parse_finish(text) or {}
    try:
        status = WorkerStatus(finish.get("status", WorkerStatus.SUCCESS.value))
    except ValueError:
        status = WorkerStatus.FAILED
    notes = str(finish.get("notes") or ("" if finish else text[-2000:]))
    if not finish:
        notes = f"{notes}\n(no result JSON in the final message; treated as success)".strip()
    title = request.inputs.get("ticket", {}).get("title", "")
    message = str(finish.get("commit_message") or f"{request.ticket_id}: {title}".strip())
    return status, notes, message


def error_kind_of_api(status: int | None, error: str | None, text: str) -> ErrorKind:
    """An API failure the CLI reported (after its own retries) as one of Conveyor's error kinds."""
    if status == 429 or error == "rate_limit":
        return ErrorKind.RATE_LIMITED
    if status == 529 or "overloaded" in text.lower():
        return ErrorKind.OVERLOADED
    if status in (401, 403) or error in ("authentication_failed", "billing_error"):
        return ErrorKind.AUTH
    if status is not None and status >= 500:
        return ErrorKind.SERVER_ERROR
    if (status is not None and status >= 400) or error == "invalid_request":
        return ErrorKind.BAD_REQUEST
    if "timed out" in text.lower() or "timeout" in text.lower():
        return ErrorKind.TIMEOUT
    if error == "server_error":
        return ErrorKind.SERVER_ERROR
    return ErrorKind.CONNECTION


def error_kind_of_result(result: Any, last_error: str | None) -> ErrorKind:
    """The error kind of a ResultMessage with ``is_error`` (or a ResultError carrying the same fields)."""
    subtype = getattr(result, "subtype", None)
    reason = getattr(result, "terminal_reason", None)
    if subtype == "error_max_turns" or reason == "max_turns":
        return ErrorKind.TURN_LIMIT
    if subtype == "error_max_budget_usd" or reason == "budget_exhausted":
        return ErrorKind.BUDGET
    status = getattr(result, "api_error_status", None)
    text = str(getattr(result, "result", None) or "")
    if reason == "api_error" or status is not None or last_error is not None:
        return error_kind_of_api(status, last_error, text)
    return ErrorKind.SERVER_ERROR  # error_during_execution: the CLI failed on its side


def error_kind_of_exception(sdk: ModuleType, exc: BaseException, state: CallState) -> ErrorKind:
    """An exception out of the SDK (or the session around it) as one of Conveyor's error kinds."""
    if isinstance(exc, sdk.CLINotFoundError | sdk.CLIConnectionError):
        return ErrorKind.BACKEND_UNAVAILABLE
    if isinstance(exc, TimeoutError):
        return ErrorKind.WALL_CLOCK
    if hasattr(sdk, "ResultError") and isinstance(exc, sdk.ResultError):
        return error_kind_of_result(exc, state.last_error)
    return ErrorKind.SERVER_ERROR


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
