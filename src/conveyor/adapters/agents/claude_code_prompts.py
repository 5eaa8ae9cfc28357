"""The claude-code backend's prompts: the implementer's system prompt (Conveyor's, plus a note on Claude Code's
tool names, the repository map, the context and the playbooks) and a conversation flattened into one prompt."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.adapters.agents.implementer_prompt import IMPLEMENTER_SYSTEM, playbook_context
from conveyor.adapters.agents.repo_map import build_repo_map
from conveyor.adapters.agents.tools_commands import describe_allowed
from conveyor.domain.agent import AgentRequest

CLAUDE_CODE_NOTE = """## Working in Claude Code
Your tools here are Claude Code's: Read (read_file above), Glob (list_files), Grep (search), Write (write_file),
Edit (edit_file){bash}. Paths may be absolute inside your worktree ({root}) or relative to it; anything outside
it, and anything in .git, is refused. Your scratchpad is the file {scratchpad} (write it with Write or Edit).
There is no finish tool: when you are done, end your final message with one line holding the result JSON,
for example {{"status": "success", "notes": "what you did", "commit_message": "one line"}}; status is success,
failed or escalate. Conveyor commits your changes; do not run git yourself."""
BASH_NOTE = (
    " and Bash (run_command): one command per call, run as an argv list without a shell (quoting works as in a "
    "shell, but pipes, redirections, `;`, `&&` and `$(...)` are plain arguments; paths in commands are relative to the "
    "worktree root); allowed command prefixes: {allowed}"
)


def implementer_system(
    request: AgentRequest,
    workdir: Path,
    tools: Sequence[str],
    *,
    allowed_commands: Sequence[Sequence[str]],
    repo_map_tokens: int,
) -> str:
    """The implementer's system prompt for a Claude Code session in ``workdir`` with ``tools``."""
    bash = BASH_NOTE.format(allowed=describe_allowed(allowed_commands)) if "Bash" in tools else ""
    note = CLAUDE_CODE_NOTE.format(
        bash=bash,
        root=os.path.realpath(workdir),
        scratchpad=f"docs/scratchpads/{request.ticket_id}.md",
    )
    ticket = request.inputs.get("ticket", {})
    query = " ".join(str(ticket.get(k, "")) for k in ("title", "description", "source"))
    query += " " + " ".join(ticket.get("touch_set", []))
    repo_map = build_repo_map(workdir, query=query, token_budget=repo_map_tokens).text
    sections = [request.system or IMPLEMENTER_SYSTEM, note]
    sections += ["## Repository map (files and top-level symbols, most relevant first)", repo_map]
    for item in request.context:
        sections += [f"## {item.kind}: {item.name}", item.text]
    for name, text in playbook_context(workdir):
        sections += [f"## playbook: {name}", text]
    return "\n\n".join(sections)


def flatten_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """A conversation as one prompt (Claude Code takes user turns only)."""
    if len(messages) == 1 and messages[0].get("role") == "user" and isinstance(messages[0].get("content"), str):
        return str(messages[0]["content"])
    parts = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            content = "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
        parts.append(f"[{message.get('role', 'user')}]\n{content}")
    return "\n\n".join(parts)
