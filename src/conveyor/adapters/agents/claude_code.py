"""The claude-code backend: the implementer as the Claude Code CLI, driven through claude-agent-sdk (optional extra).

``uv sync --extra claude-code`` installs claude-agent-sdk, which bundles the Claude Code CLI (a ~380 MB binary).
Without the extra this module still imports, and :meth:`ClaudeCodeBackend.run` answers ``backend_unavailable``
saying how to install it: claude_agent_sdk is imported lazily, inside :func:`load_sdk`.

How a call runs (ARCHITECTURE.md §5):

- The CLI runs in the worktree (``cwd = request.workdir``) with only Claude Code's file tools that match the
  request's tools (Read, Write, Edit, Glob, Grep; Bash only when commands are allowed), ``max_turns`` from the
  limits, ``max_budget_usd`` from ``limits.max_usd`` (and a stop on Conveyor's own cost figure too), permission
  mode ``dontAsk`` (nothing ever prompts: what is not approved is denied), no filesystem settings, CLAUDE.md or
  MCP servers from the target repository (they could run hooks), and the system prompt
  :data:`IMPLEMENTER_SYSTEM` plus a note on Claude Code's tool names and the context; the task message is
  :func:`task_message`.
- Every tool call passes a ``PreToolUse`` hook (:class:`ToolPolicy`) with the same rules as Conveyor's own
  dispatcher: paths resolve inside the worktree (absolute paths outside it, ``..``, ``~``, symlinks leading
  out, device files and anything in ``.git`` are refused), and a Bash command is split into an argv (shlex),
  checked against the allow-list like ``run_command`` and handed back re-quoted (``shlex.join``), so ``;``,
  ``&&``, ``|`` and ``$(...)`` reach the program as plain arguments instead of the shell.
- The CLI's environment is scrubbed: every inherited variable is blanked except locale, PATH, proxies and CA
  settings; it gets the API key and base URL, ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``,
  ``DISABLE_TELEMETRY=1``, ``DISABLE_AUTOUPDATER=1``, ``DISABLE_ERROR_REPORTING=1`` and a HOME and
  CLAUDE_CONFIG_DIR in a temporary directory (never the user's ~/.claude), removed after the call. With
  ``isolate_commands`` (the default) a session whose tools include Bash gets ``CLAUDE_CODE_SUBPROCESS_ENV_SCRUB=1``,
  which strips the API key from the commands the agent runs and makes Claude Code run Bash in its own sandbox:
  that needs ``bwrap`` and ``socat`` (Debian ``bubblewrap`` and ``socat``); without them a call that allows
  commands is refused as ``backend_unavailable`` before the CLI starts. That sandbox leaves empty placeholder
  files in the worktree (``package.json``, ``.env``, lock files, ...: its mount points); the backend removes the
  ones it created before committing (:mod:`claude_code_stubs` says why and how carefully). Sessions without Bash
  run no command, so they do not use it at all.
- The result: the ResultMessage's usage (cache writes and reads included), turns and subtype become the
  AgentResult; the cost is Conveyor's (the model table's prices), the CLI's own figure goes in the transcript.
  The model ends with a result JSON line (``{"status": ..., "notes": ..., "commit_message": ...}``; there is no
  finish tool) and the worktree's changes are committed with :meth:`GitRepo.commit_all` as Conveyor.
- Errors never raise out of :meth:`ClaudeCodeBackend.run`: extra or CLI missing → ``backend_unavailable``; max
  turns → ``turn_limit``; budget → ``budget``; token limit → ``token_limit``; the same tool call repeated →
  ``stuck``; API errors after the CLI's retries → ``rate_limited``, ``overloaded``, ``server_error``, ``auth``,
  ``bad_request``, ``timeout`` or ``connection``; the whole call is bounded by the wall clock
  (``limits.wall_clock_s``, default 600 s) → ``wall_clock``. Closing a cancelled CLI takes at most a few more
  seconds (the SDK waits 5 s for a clean exit, then terminates it).

Judgment roles (calls without tools) are one tool-less CLI turn, plus one repair round when a typed output does
not validate, like the anthropic backend.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from conveyor.adapters.agents.claude_code_call import CallState, StopError, totals
from conveyor.adapters.agents.claude_code_env import (
    INSTALL_HINT,
    KEEP_ENV,
    SANDBOX_HINT,
    SDK_MODULE,
    SdkUnavailableError,
    cli_environment,
    command_sandbox_missing,
    load_sdk,
    sdk_available,
)
from conveyor.adapters.agents.claude_code_policy import TOOL_MAP, TOOL_ORDER, ToolPolicy, claude_tools
from conveyor.adapters.agents.claude_code_prompts import (
    BASH_NOTE,
    CLAUDE_CODE_NOTE,
    flatten_messages,
    implementer_system,
)
from conveyor.adapters.agents.claude_code_results import (
    describe,
    error_kind_of_api,
    error_kind_of_exception,
    error_kind_of_result,
    implementer_outcome,
    parse_finish,
)
from conveyor.adapters.agents.claude_code_session import run_coroutine, run_session, session_options
from conveyor.adapters.agents.claude_code_stubs import existing_stubs, remove_stubs, scrub_mode
from conveyor.adapters.agents.implementer_prompt import task_message
from conveyor.adapters.git_repo import DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME, GitRepo, GitRepoError
from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole, ErrorKind, WorkerStatus, used_tokens_text
from conveyor.domain.models import ModelTable

# The names this module exported before it was split into claude_code_*.py; they keep importing from here.
__all__ = [
    "BACKEND",
    "BASH_NOTE",
    "CLAUDE_CODE_NOTE",
    "DEFAULT_WALL_CLOCK_S",
    "INSTALL_HINT",
    "KEEP_ENV",
    "SANDBOX_HINT",
    "SDK_MODULE",
    "TOOL_MAP",
    "TOOL_ORDER",
    "ClaudeCodeBackend",
    "SdkUnavailableError",
    "ToolPolicy",
    "claude_tools",
    "cli_environment",
    "command_sandbox_missing",
    "error_kind_of_api",
    "error_kind_of_result",
    "load_sdk",
    "parse_finish",
    "sdk_available",
]

BACKEND = "claude-code"
DEFAULT_WALL_CLOCK_S = 600.0


class ClaudeCodeBackend:
    """AgentBackend over the Claude Code CLI (claude-agent-sdk). See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        models: ModelTable | None = None,
        allowed_commands: Sequence[Sequence[str]] = (),
        command_timeout_s: float = 300.0,
        max_retries: int = 4,
        timeout_s: float = 600.0,
        wall_clock_s: float = DEFAULT_WALL_CLOCK_S,
        isolate_commands: bool = True,
        cli_path: str | Path | None = None,
        repo_map_tokens: int = 2000,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
        stderr: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.models = models or ModelTable()
        self.allowed_commands = [list(prefix) for prefix in allowed_commands]
        self.command_timeout_s = command_timeout_s
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.wall_clock_s = wall_clock_s
        self.isolate_commands = isolate_commands
        self.cli_path = cli_path
        self.repo_map_tokens = repo_map_tokens
        self.author = (author_name, author_email)
        self.stderr = stderr
        self.monotonic = monotonic
        self._transcripts: dict[str, list[dict[str, Any]]] = {}

    @property
    def name(self) -> str:
        return BACKEND

    def pop_transcript(self, request: AgentRequest) -> list[dict[str, Any]] | None:
        """The messages of the call that answered ``request``, handed once to the call log."""
        return self._transcripts.pop(request.replay_key(), None)

    # -- the port ---------------------------------------------------------------------------------------------

    def run(self, request: AgentRequest) -> AgentResult:
        state = CallState(started=self.monotonic())
        try:
            sdk = load_sdk()
        except SdkUnavailableError as exc:
            return self._result(request, state, error=ErrorKind.BACKEND_UNAVAILABLE, detail=str(exc))
        try:
            if request.role is AgentRole.IMPLEMENTER and request.tools:
                return self._implement(sdk, request, state)
            return self._complete(sdk, request, state)
        except Exception as exc:  # never raise out of run(): anything unexpected is a failed call
            return self._result(request, state, error=error_kind_of_exception(sdk, exc, state), detail=describe(exc))

    # -- implementer ------------------------------------------------------------------------------------------

    def _implement(self, sdk: ModuleType, request: AgentRequest, state: CallState) -> AgentResult:
        if request.workdir is None or request.ticket_id is None:
            return self._result(
                request, state, error=ErrorKind.BAD_REQUEST, detail="the implementer needs a workdir and a ticket id"
            )
        workdir = Path(request.workdir)
        tools = claude_tools(request, commands_allowed=bool(self.allowed_commands))
        scrubbed = scrub_mode(tools, isolate_commands=self.isolate_commands)
        if scrubbed and (missing := command_sandbox_missing()):
            detail = f"{', '.join(missing)} not found: {SANDBOX_HINT}, or pass isolate_commands=False (unsafe)"
            return self._result(request, state, error=ErrorKind.BACKEND_UNAVAILABLE, detail=detail)
        policy = ToolPolicy(
            workdir, tools=tools, allowed_commands=self.allowed_commands, command_timeout_s=self.command_timeout_s
        )
        system = implementer_system(
            request, workdir, tools, allowed_commands=self.allowed_commands, repo_map_tokens=self.repo_map_tokens
        )
        prompt = task_message(request.ticket_id, request.inputs)
        state.transcript = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        # In scrub mode the CLI leaves empty placeholder files in the worktree (its sandbox's mount points, see
        # claude_code_stubs): note which were there before, and remove the new ones before anything is committed.
        existed = existing_stubs(workdir) if scrubbed else None
        try:
            outcome = self._drive(sdk, request, state, system=system, prompt=prompt, tools=tools, policy=policy)
        finally:
            if existed is not None and (removed := remove_stubs(workdir, existed=existed, written=policy.written)):
                state.transcript.append({"role": "conveyor", "removed_sandbox_stubs": removed})
        if outcome is not None:
            return outcome
        text = str(getattr(state.result, "result", None) or state.last_text)
        status, notes, message = implementer_outcome(request, text)
        try:
            repo = GitRepo(workdir)
            sha = repo.commit_all(message, author_name=self.author[0], author_email=self.author[1]) or repo.head_sha()
        except GitRepoError as exc:
            return self._result(request, state, error=ErrorKind.BAD_REQUEST, detail=f"commit failed: {exc}", text=text)
        return self._result(request, state, status=status, notes=notes, commit_sha=sha, text=text)

    # -- judgment roles ---------------------------------------------------------------------------------------

    def _complete(self, sdk: ModuleType, request: AgentRequest, state: CallState) -> AgentResult:
        messages: list[dict[str, Any]] = [dict(m) for m in request.inputs.get("messages", [])]
        prompt = flatten_messages(messages) if messages else json.dumps(request.inputs, sort_keys=True)
        state.transcript = [{"role": "system", "content": request.system}, {"role": "user", "content": prompt}]
        outcome = self._drive(sdk, request, state, system=request.system, prompt=prompt, tools=[], policy=None)
        if outcome is not None:
            return outcome
        text = str(getattr(state.result, "result", None) or state.last_text)
        if request.output_schema is None:
            return self._result(request, state, status=WorkerStatus.SUCCESS, text=text)
        from conveyor.adapters.agents.anthropic_backend import parse_json_output

        try:
            output = parse_json_output(text, request.output_schema)
        except ValueError as first:
            # One repair round that carries the validation error, then a clean failure (ARCHITECTURE.md §5).
            repair = (
                f"{prompt}\n\n[assistant]\n{text or '(empty)'}\n\n[user]\nYour answer could not be used: {first}. "
                "Reply with the corrected JSON object only."
            )
            state.transcript.append({"role": "user", "content": repair})
            outcome = self._drive(sdk, request, state, system=request.system, prompt=repair, tools=[], policy=None)
            if outcome is not None:
                return outcome
            text = str(getattr(state.result, "result", None) or state.last_text)
            try:
                output = parse_json_output(text, request.output_schema)
            except ValueError as second:
                return self._result(request, state, error=ErrorKind.MALFORMED_OUTPUT, detail=str(second), text=text)
        return self._result(request, state, status=WorkerStatus.SUCCESS, text=text, output=output)

    # -- driving the CLI --------------------------------------------------------------------------------------

    def _drive(
        self,
        sdk: ModuleType,
        request: AgentRequest,
        state: CallState,
        *,
        system: str,
        prompt: str,
        tools: list[str],
        policy: ToolPolicy | None,
    ) -> AgentResult | None:
        """Run one CLI session; None when it ended well (``state.result`` holds its ResultMessage)."""
        wall = request.limits.wall_clock_s or self.wall_clock_s
        remaining = max(0.1, wall - (self.monotonic() - state.started))
        home = Path(tempfile.mkdtemp(prefix="conveyor-claude-code-"))
        try:
            (home / "tmp").mkdir()
            env = cli_environment(
                api_key=self.api_key,
                base_url=self.base_url,
                home=home,
                max_retries=self.max_retries,
                timeout_s=self.timeout_s,
                isolate_commands=scrub_mode(tools, isolate_commands=self.isolate_commands),
            )
            options = session_options(
                sdk,
                request,
                state,
                home=home,
                system=system,
                tools=tools,
                policy=policy,
                model=self.models.spec(request.tier).model,
                cli_path=self.cli_path,
                env=env,
                stderr=self.stderr,
            )
            state.result = None
            try:
                run_coroutine(
                    lambda: run_session(sdk, self.models, request, state, options, prompt=prompt, timeout=remaining)
                )
            except TimeoutError:
                detail = f"the call passed its wall clock of {wall:g} s"
                return self._result(request, state, error=ErrorKind.WALL_CLOCK, detail=detail)
            except StopError as stop:
                return self._result(request, state, error=stop.kind, detail=stop.detail)
            except Exception as exc:
                if state.result is not None and getattr(state.result, "is_error", False):
                    pass  # the ResultMessage says why; the SDK's ResultError after it repeats it
                else:
                    detail = describe(exc)
                    if state.stderr_tail:
                        detail += "\nCLI stderr (last lines):\n" + "\n".join(state.stderr_tail)
                    return self._result(request, state, error=error_kind_of_exception(sdk, exc, state), detail=detail)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        result = state.result
        if result is None:
            return self._result(
                request, state, error=ErrorKind.SERVER_ERROR, detail="the CLI ended without a result message"
            )
        if getattr(result, "is_error", False):
            errors = "; ".join(getattr(result, "errors", None) or [])
            detail = errors or str(getattr(result, "result", None) or result.subtype)
            return self._result(
                request,
                state,
                error=error_kind_of_result(result, state.last_error),
                detail=detail,
                text=state.last_text,
            )
        return None

    def _result(
        self,
        request: AgentRequest,
        state: CallState,
        *,
        status: WorkerStatus = WorkerStatus.FAILED,
        error: ErrorKind | None = None,
        detail: str = "",
        notes: str = "",
        text: str = "",
        output: dict[str, Any] | None = None,
        commit_sha: str | None = None,
    ) -> AgentResult:
        if state.transcript:
            self._transcripts[request.replay_key()] = state.transcript
        usage, cost = totals(self.models, request, state)
        refused = "; ".join(state.refused[-5:])
        notes = "\n".join(part for part in (notes, f"refused tool calls: {refused}" if refused else "") if part)
        return AgentResult(
            task_id=request.ticket_id or request.role.value,
            status=status if error is None else WorkerStatus.FAILED,
            used=used_tokens_text(usage),
            commit_sha=commit_sha,
            notes=notes,
            output=output,
            text=text,
            usage=usage,
            cost_usd=cost,
            model=state.model or self.models.spec(request.tier).model,
            backend=BACKEND,
            stop_reason=state.stop_reason,
            error_kind=error,
            error_detail=detail,
            duration_s=max(0.0, self.monotonic() - state.started),
        )
