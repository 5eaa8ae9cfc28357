"""The agent port's values: what a call asks for and what it returns (ARCHITECTURE.md §5).

Every LLM call in Conveyor is an :class:`AgentRequest` answered by an :class:`AgentResult`, whatever the
backend (anthropic, claude-code, scripted) and whoever asks (the implementer loop or a DSPy program), so
budget, usage, logs, redaction and replay apply to all of them.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.projections import format_tokens
from conveyor.domain.ticket import ModelTier


class AgentRole(StrEnum):
    PLANNER = "planner"
    IMPLEMENTER = "implementer"
    REVIEWER = "reviewer"
    QA_TRIAGE = "qa-triage"
    RELEASE_NOTES = "release-notes"
    STEWARD = "knowledge-steward"
    RESEARCH = "research"


class WorkerStatus(StrEnum):
    """Seed 001's worker result status."""

    SUCCESS = "success"
    FAILED = "failed"
    ESCALATE = "escalate"


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"  # 429 after the SDK's retries
    OVERLOADED = "overloaded"  # 529 after retries
    SERVER_ERROR = "server_error"  # 5xx after retries
    TIMEOUT = "timeout"  # the HTTP request timed out after retries
    CONNECTION = "connection"
    AUTH = "auth"  # 401/403: a bad or missing key
    BAD_REQUEST = "bad_request"  # 400: Conveyor sent something the API refused
    MALFORMED_OUTPUT = "malformed_output"  # output failed validation after the repair round
    STUCK = "stuck"  # the same tool call repeated, or turns without progress
    EMPTY_DIFF = "empty_diff"  # success claimed with no change (seed 004's placeholder lesson)
    TURN_LIMIT = "turn_limit"
    TOKEN_LIMIT = "token_limit"
    BUDGET = "budget"  # the request's USD limit would be passed
    WALL_CLOCK = "wall_clock"
    MAX_TOKENS = "max_tokens"  # a response was truncated and could not be continued
    SCRIPT = "script"  # the scripted backend has no entry for this call, or the entry injects a failure
    BACKEND_UNAVAILABLE = "backend_unavailable"


class ToolName(StrEnum):
    LIST_FILES = "list_files"
    READ_FILE = "read_file"
    SEARCH = "search"
    WRITE_FILE = "write_file"
    EDIT_FILE = "edit_file"
    RUN_COMMAND = "run_command"
    UPDATE_SCRATCHPAD = "update_scratchpad"
    FINISH = "finish"


IMPLEMENTER_TOOLS: tuple[ToolName, ...] = tuple(ToolName)


class Usage(BaseModel):
    """Normalised token usage of one call (all requests of a tool loop added up)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = Field(0, ge=0, description="uncached input (after the last cache breakpoint)")
    cache_write_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    requests: int = Field(0, ge=0, description="HTTP requests that returned a response")

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            requests=self.requests + other.requests,
        )

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    @property
    def total(self) -> int:
        return self.total_input + self.output_tokens

    @property
    def cache_read_share(self) -> float:
        return self.cache_read_tokens / self.total_input if self.total_input else 0.0


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_turns: int = Field(40, ge=1, description="model responses in one call (tool loop turns)")
    max_tokens: int | None = Field(None, ge=1, description="total tokens (input + output) of the call")
    max_usd: float | None = Field(None, gt=0)
    wall_clock_s: float | None = Field(None, gt=0)
    max_output_tokens: int = Field(8192, ge=1, description="max_tokens of each response")
    stuck_repeats: int = Field(3, ge=2, description="identical tool calls in a row that count as stuck")
    idle_turns: int = Field(8, ge=2, description="turns without a file change or new read that count as stuck")


class ContextItem(BaseModel):
    """Something given to the agent as context; stored with the call so a run shows what the agent knew."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description="memory | playbook | skill | repo_map | scratchpad | other")
    name: str
    text: str


class AgentRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: AgentRole
    run_id: str
    ticket_id: str | None = None
    stage: str = Field(description="the ticket stage (or flow step) asking, e.g. implementing, reviewing, bootstrap")
    attempt: int = Field(1, ge=1)
    tier: ModelTier = ModelTier.NORMAL
    prompt_version: str = Field(description="version of the prompt or DSPy program state")
    base_commit: str | None = None
    system: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict, description="JSON-serialisable inputs")
    context: tuple[ContextItem, ...] = ()
    tools: tuple[ToolName, ...] = ()
    workdir: str | None = Field(None, description="the worktree the tools are confined to")
    output_schema: dict[str, Any] | None = Field(None, description="JSON Schema of the typed output, if any")
    limits: Limits = Field(default_factory=Limits)

    def input_hash(self) -> str:
        """What the agent is given: a change to any of it makes a new call instead of a replay."""
        payload = self.model_dump(
            mode="json",
            include={"role", "tier", "system", "inputs", "context", "tools", "output_schema"},
        )
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def replay_key(self) -> str:
        """(run, ticket, stage, attempt, prompt/program version, base commit, input hash) — ARCHITECTURE.md §5."""
        parts = [
            self.run_id,
            self.ticket_id or "-",
            self.stage,
            str(self.attempt),
            self.prompt_version,
            self.base_commit or "-",
            self.input_hash(),
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class AgentResult(BaseModel):
    """Seed 001's worker result fields, plus the typed output, usage, cost and what ran."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str = Field(description="the ticket id, or the role for calls without a ticket")
    status: WorkerStatus
    used: str = Field("", description="seed 001's used tokens, e.g. 5.2K")
    commit_sha: str | None = None
    notes: str = ""
    output: dict[str, Any] | None = Field(None, description="the typed output (validated against output_schema)")
    text: str = Field("", description="the final text answer, for calls without a schema")
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = Field(0.0, ge=0)
    model: str = ""
    backend: str
    stop_reason: str | None = None
    error_kind: ErrorKind | None = None
    error_detail: str = ""
    transcript: str | None = Field(None, description="path of the call's log, relative to the repository")
    replayed: bool = False
    duration_s: float = Field(0.0, ge=0)

    @property
    def ok(self) -> bool:
        return self.status is WorkerStatus.SUCCESS and self.error_kind is None


def used_tokens_text(usage: Usage) -> str:
    return format_tokens(usage.total) if usage.total else ""
