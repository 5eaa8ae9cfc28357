"""The implementer as a tool-use loop over the Messages API.

Prompt caching (ARCHITECTURE.md §7): breakpoints sit on the last tool definition, on the last system block
(the system prompt, then the repository map and context: the stable prefix), and on the newest message each
turn, so every request reads what the previous one wrote — three breakpoints, under the limit of four.
The loop ends on ``finish``, on a limit (turns, tokens, USD, wall clock), when it is stuck (the same tool
call repeated, or turns without progress), or on a truncated answer that does not recover.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.adapters.agents.implementer_prompt import IMPLEMENTER_SYSTEM, playbook_context, task_message
from conveyor.adapters.agents.repo_map import build_repo_map
from conveyor.adapters.agents.tools import ToolDispatcher, fingerprint
from conveyor.adapters.git_repo import GitRepo
from conveyor.adapters.sandbox.local import LocalSandbox
from conveyor.domain.agent import AgentRequest, AgentResult, ErrorKind, WorkerStatus

if TYPE_CHECKING:
    from conveyor.adapters.agents.anthropic_backend import AnthropicBackend, CallState

EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
CONDENSE_AT = 0.75  # share of the context window after which the conversation is condensed


def _block_dict(block: Any) -> dict[str, Any]:
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if block.type == "text":
        return {"type": "text", "text": block.text}
    return dict(block.model_dump(mode="json", exclude_none=True))


def with_newest_breakpoint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``messages`` whose newest message's last block carries the only message breakpoint."""
    out = []
    for index, message in enumerate(messages):
        content = message["content"]
        blocks: list[dict[str, Any]] = (
            [{"type": "text", "text": content}] if isinstance(content, str) else [dict(b) for b in content]
        )
        for block in blocks:
            block.pop("cache_control", None)
        if index == len(messages) - 1 and blocks:
            blocks[-1]["cache_control"] = EPHEMERAL
        out.append({"role": message["role"], "content": blocks})
    return out


def _context_text(request: AgentRequest, repo_map: str) -> str:
    sections = ["## Repository map (files and top-level symbols, most relevant first)", repo_map]
    for item in request.context:
        sections += [f"## {item.kind}: {item.name}", item.text]
    return "\n\n".join(sections)


def _condensed(first: dict[str, Any], dispatcher: ToolDispatcher, last_text: str) -> list[dict[str, Any]]:
    """The conversation replaced by one message: the task, progress, files changed, open problems."""
    changed = sorted({path for call in dispatcher.calls for path in call.changed})
    commands = [c for c in dispatcher.calls if c.name == "run_command"][-5:]
    problems = [c for c in dispatcher.calls if c.is_error][-5:]
    lines = [
        "## Progress so far (the conversation was condensed to fit the context window)",
        "Files changed: " + (", ".join(changed) or "none yet"),
        "Recent commands: " + ("; ".join(f"{c.arguments} → {c.summary}" for c in commands) or "none"),
        "Open problems: " + ("; ".join(f"{c.name}: {c.summary}" for c in problems) or "none recorded"),
        "Your last note: " + (last_text[-2000:] or "(none)"),
        "Your scratchpad has your working notes. Continue from here.",
    ]
    text = first["content"][0]["text"] if isinstance(first["content"], list) else str(first["content"])
    return [{"role": "user", "content": [{"type": "text", "text": text + "\n\n" + "\n".join(lines)}]}]


def _limit_hit(backend: AnthropicBackend, request: AgentRequest, state: CallState) -> ErrorKind | None:
    limits = request.limits
    if limits.wall_clock_s is not None and backend.monotonic() - state.started > limits.wall_clock_s:
        return ErrorKind.WALL_CLOCK
    if limits.max_tokens is not None and state.usage.total >= limits.max_tokens:
        return ErrorKind.TOKEN_LIMIT
    if limits.max_usd is not None and state.cost_usd >= limits.max_usd:
        return ErrorKind.BUDGET
    return None


def run_tool_loop(backend: AnthropicBackend, request: AgentRequest, state: CallState) -> AgentResult:
    if request.workdir is None or request.ticket_id is None:
        return backend.result(
            request, state, status=WorkerStatus.FAILED, error=ErrorKind.BAD_REQUEST, detail="implementer needs workdir"
        )
    return _ImplementerLoop(backend, request, state, Path(request.workdir), request.ticket_id).run()


class _ImplementerLoop:
    def __init__(
        self, backend: AnthropicBackend, request: AgentRequest, state: CallState, workdir: Path, ticket_id: str
    ) -> None:
        self.backend, self.request, self.state, self.workdir = backend, request, state, workdir
        self.dispatcher = ToolDispatcher(
            workdir,
            sandbox=backend.sandbox or LocalSandbox(),
            allowed_commands=backend.allowed_commands,
            scratchpad=workdir / "docs" / "scratchpads" / f"{ticket_id}.md",
            command_timeout_s=backend.command_timeout_s,
        )
        wanted = {tool.value for tool in request.tools}
        self.tools = [dict(d) for d in self.dispatcher.definitions() if d["name"] in wanted]
        self.tools[-1]["cache_control"] = EPHEMERAL
        self.system = [
            {"type": "text", "text": request.system or IMPLEMENTER_SYSTEM},
            {"type": "text", "text": self._context(), "cache_control": EPHEMERAL},
        ]
        text = task_message(ticket_id, request.inputs)
        self.first: dict[str, Any] = {"role": "user", "content": [{"type": "text", "text": text}]}
        self.messages: list[dict[str, Any]] = [self.first]
        self.spec = backend.models.spec(request.tier)
        self.last_fingerprint, self.repeats, self.idle = "", 0, 0
        self.nudged, self.truncations, self.last_text = False, 0, ""

    def _context(self) -> str:
        ticket = self.request.inputs.get("ticket", {})
        query = " ".join(str(ticket.get(k, "")) for k in ("title", "description", "source"))
        query += " " + " ".join(ticket.get("touch_set", []))
        repo_map = build_repo_map(self.workdir, query=query, token_budget=self.backend.repo_map_tokens).text
        context = _context_text(self.request, repo_map)
        for name, text in playbook_context(self.workdir):
            context += f"\n\n## playbook: {name}\n\n{text}"
        return context

    def done(self, status: WorkerStatus, error: ErrorKind | None = None, detail: str = "", **kw: Any) -> AgentResult:
        self.state.transcript = self.messages
        return self.backend.result(self.request, self.state, status=status, error=error, detail=detail, **kw)

    def run(self) -> AgentResult:
        for turn in range(self.request.limits.max_turns):
            hit = _limit_hit(self.backend, self.request, self.state)
            if hit is not None:
                return self.done(WorkerStatus.FAILED, hit, f"{hit.value} reached after {turn} turns")
            outcome = self._turn(turn)
            if outcome is not None:
                return outcome
        limit = self.request.limits.max_turns
        return self.done(WorkerStatus.FAILED, ErrorKind.TURN_LIMIT, f"no finish within {limit} turns")

    def _turn(self, turn: int) -> AgentResult | None:
        response = self.backend.send(
            self.request,
            self.state,
            system=self.system,
            tools=self.tools,
            messages=with_newest_breakpoint(self.messages),
        )
        usage = response.usage
        total_input = (
            (usage.input_tokens or 0) + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
        )
        if turn > 0 and not usage.cache_read_input_tokens and total_input >= 2 * self.spec.min_cacheable_tokens:
            self.state.warnings.append(f"turn {turn + 1}: a {total_input}-token prompt read nothing from the cache")
        self.messages.append({"role": "assistant", "content": [_block_dict(b) for b in response.content]})
        self.last_text = "".join(b.text for b in response.content if b.type == "text") or self.last_text
        if response.stop_reason == "max_tokens":
            return self._truncated()
        self.truncations = 0
        tool_uses = [b for b in response.content if b.type == "tool_use"]
        if not tool_uses:
            return self._no_tool_call()
        outcome = self._dispatch(tool_uses)
        if outcome is None and total_input >= CONDENSE_AT * self.spec.context_tokens:
            self.messages = _condensed(self.first, self.dispatcher, self.last_text)
            self.state.warnings.append(f"turn {turn + 1}: conversation condensed at {total_input} input tokens")
        return outcome

    def _truncated(self) -> AgentResult | None:
        self.truncations += 1
        if self.truncations >= 2:
            return self.done(WorkerStatus.FAILED, ErrorKind.MAX_TOKENS, "two answers in a row were cut off")
        # A cut-off tool call cannot be answered; keep the text and ask for shorter steps.
        kept = [b for b in self.messages[-1]["content"] if b["type"] == "text"]
        self.messages[-1]["content"] = kept or [{"type": "text", "text": "(cut off)"}]
        self.messages.append({"role": "user", "content": "Your answer was cut off. Continue with shorter steps."})
        return None

    def _no_tool_call(self) -> AgentResult | None:
        if self.nudged:
            return self.done(
                WorkerStatus.FAILED, ErrorKind.STUCK, "the model stopped without calling finish", text=self.last_text
            )
        self.nudged = True
        self.messages.append({"role": "user", "content": "Call the finish tool with your result to end the task."})
        return None

    def _dispatch(self, tool_uses: list[Any]) -> AgentResult | None:
        results: list[dict[str, Any]] = []
        finish: dict[str, Any] | None = None
        progress = False
        for block in tool_uses:
            mark = fingerprint(block.name, block.input)
            self.repeats = self.repeats + 1 if mark == self.last_fingerprint else 1
            self.last_fingerprint = mark
            outcome = self.dispatcher.dispatch(block.name, block.input)
            progress = progress or outcome.progress
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": block.id,
                    "content": outcome.content,
                    "is_error": outcome.is_error,
                }
            )
            if outcome.finish is not None:
                finish = outcome.finish
        self.messages.append({"role": "user", "content": results})
        if finish is not None:
            return self._finish(finish)
        if self.repeats >= self.request.limits.stuck_repeats:
            return self.done(
                WorkerStatus.FAILED, ErrorKind.STUCK, f"the same tool call was repeated {self.repeats} times"
            )
        self.idle = 0 if progress else self.idle + 1
        if self.idle >= self.request.limits.idle_turns:
            return self.done(WorkerStatus.FAILED, ErrorKind.STUCK, f"{self.idle} turns without progress")
        return None

    def _finish(self, finish: dict[str, Any]) -> AgentResult:
        status = WorkerStatus(finish.get("status", "failed"))
        title = self.request.inputs.get("ticket", {}).get("title", "")
        message = str(finish.get("commit_message") or f"{self.request.ticket_id}: {title}")
        repo = GitRepo(self.workdir)
        name, email = self.backend.author
        sha = repo.commit_all(message, author_name=name, author_email=email) or repo.head_sha()
        return self.done(status, notes=str(finish.get("notes", "")), commit_sha=sha)
