"""One Claude Code CLI session: its SDK options (Conveyor's PreToolUse hook on every tool call, no settings,
CLAUDE.md or MCP servers from the repository, nothing ever prompts), and the streamed messages it yields,
recorded into the call's state with its limits checked as they arrive."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from conveyor.adapters.agents.claude_code_call import CallState, check_limits, close_session, count_repeat
from conveyor.adapters.agents.claude_code_policy import ToolPolicy
from conveyor.adapters.agents.tools_paths import RefusedError
from conveyor.domain.agent import AgentRequest
from conveyor.domain.models import ModelTable


def session_options(
    sdk: ModuleType,
    request: AgentRequest,
    state: CallState,
    *,
    home: Path,
    system: str,
    tools: list[str],
    policy: ToolPolicy | None,
    model: str,
    cli_path: str | Path | None,
    env: dict[str, str],
    stderr: Callable[[str], None] | None,
) -> Any:
    """``ClaudeAgentOptions`` for one session of ``request`` (``env`` is :func:`cli_environment`'s)."""

    async def pre_tool_use(hook_input: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
        name = str(hook_input.get("tool_name", ""))
        try:
            if policy is None:
                raise RefusedError("no tools are available in this call")
            updated = policy.check(name, hook_input.get("tool_input") or {})
        except RefusedError as exc:
            state.refused.append(f"{name}: {exc}")
            reason = f"refused by Conveyor: {exc}"
            denied = {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": reason,
            }
            return {"hookSpecificOutput": denied}
        allowed = {"hookEventName": "PreToolUse", "permissionDecision": "allow", "updatedInput": updated}
        return {"hookSpecificOutput": allowed}

    async def can_use_tool(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        # Not reached in dontAsk mode (the hook decides every call); a second gate if it ever is.
        try:
            if policy is None:
                raise RefusedError("no tools are available in this call")
            return sdk.PermissionResultAllow(updated_input=policy.check(name, tool_input))
        except RefusedError as exc:
            state.refused.append(f"{name}: {exc}")
            return sdk.PermissionResultDeny(message=f"refused by Conveyor: {exc}")

    hook = sdk.HookMatcher(matcher=None, hooks=[pre_tool_use], on_failure="block")
    return sdk.ClaudeAgentOptions(
        tools=list(tools),
        allowed_tools=[],
        disallowed_tools=[],
        system_prompt=system,
        mcp_servers={},
        strict_mcp_config=True,
        permission_mode="dontAsk",
        max_turns=request.limits.max_turns,
        max_budget_usd=request.limits.max_usd,
        model=model,
        cwd=request.workdir or str(home),
        cli_path=cli_path,
        env=env,
        setting_sources=[],
        hooks={"PreToolUse": [hook]},
        can_use_tool=can_use_tool,
        stderr=lambda line: _stderr_line(state, line, stderr),
    )


def _stderr_line(state: CallState, line: str, forward: Callable[[str], None] | None) -> None:
    state.stderr_tail.append(line.rstrip())
    if forward is not None:
        forward(line)


async def run_session(
    sdk: ModuleType,
    models: ModelTable,
    request: AgentRequest,
    state: CallState,
    options: Any,
    *,
    prompt: str,
    timeout: float,
) -> None:
    import anyio

    async def prompts() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "user", "message": {"role": "user", "content": prompt}, "parent_tool_use_id": None}

    with anyio.fail_after(timeout):
        async with contextlib.aclosing(sdk.query(prompt=prompts(), options=options)) as stream:
            async for message in stream:
                observe(sdk, models, request, state, message)


def observe(sdk: ModuleType, models: ModelTable, request: AgentRequest, state: CallState, message: Any) -> None:
    """Record one streamed message; raise StopError when a limit is passed or the agent is stuck."""
    if isinstance(message, sdk.AssistantMessage):
        blocks = [block_dict(block) for block in message.content]
        state.transcript.append({"role": "assistant", "content": blocks})
        state.model = message.model or state.model
        if message.error is not None:
            state.last_error = str(message.error)
        elif message.usage is not None and message.parent_tool_use_id is None:
            key = message.message_id or f"anonymous-{len(state.usage_by_message)}"
            state.usage_by_message[key] = dict(message.usage)
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        state.last_text = text or state.last_text
        for block in blocks:
            if block["type"] == "tool_use":
                count_repeat(request, state, block)
        check_limits(models, request, state)
    elif isinstance(message, sdk.UserMessage):
        content = message.content
        blocks = [block_dict(block) for block in content] if isinstance(content, list) else content
        state.transcript.append({"role": "user", "content": blocks})
    elif isinstance(message, sdk.ResultMessage):
        state.result = message
        state.stop_reason = message.stop_reason
        state.cli_cost_usd += message.total_cost_usd or 0.0
        close_session(models, request, state, message)
        state.transcript.append(
            {
                "role": "result",
                "subtype": message.subtype,
                "is_error": message.is_error,
                "num_turns": message.num_turns,
                "result": message.result,
                "errors": message.errors,
                "cli_total_cost_usd": message.total_cost_usd,
                "usage": message.usage,
                "permission_denials": message.permission_denials,
            }
        )


def block_dict(block: Any) -> dict[str, Any]:
    kind = type(block).__name__
    if kind == "TextBlock":
        return {"type": "text", "text": block.text}
    if kind == "ToolUseBlock":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if kind == "ToolResultBlock":
        return {
            "type": "tool_result",
            "tool_use_id": block.tool_use_id,
            "content": block.content,
            "is_error": block.is_error,
        }
    if kind == "ThinkingBlock":
        return {"type": "thinking", "thinking": block.thinking}
    return {"type": kind}


def run_coroutine(factory: Callable[[], Any]) -> Any:
    """Run ``factory()``'s coroutine to completion from sync code (in a worker thread if a loop is running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="claude-code") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
