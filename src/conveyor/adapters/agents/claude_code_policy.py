"""The claude-code backend's tool policy: which Claude Code tools a request gets, and Conveyor's confinement
rules applied to every call of them (the PreToolUse hook's decisions).

The rules are those of Conveyor's own dispatcher: paths resolve inside the worktree (absolute paths outside it,
``..``, ``~``, symlinks leading out, device files and anything in ``.git`` are refused), and a Bash command is
split into an argv (shlex), checked against the allow-list like ``run_command`` and handed back re-quoted
(``shlex.join``), so ``;``, ``&&``, ``|`` and ``$(...)`` reach the program as plain arguments instead of the shell.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.adapters.agents.tools_commands import check_argv
from conveyor.adapters.agents.tools_paths import Confinement, RefusedError
from conveyor.domain.agent import AgentRequest, ToolName

# Conveyor's tools -> the Claude Code tools that do the same job.
TOOL_MAP: dict[ToolName, tuple[str, ...]] = {
    ToolName.READ_FILE: ("Read",),
    ToolName.LIST_FILES: ("Glob",),
    ToolName.SEARCH: ("Grep",),
    ToolName.WRITE_FILE: ("Write",),
    ToolName.EDIT_FILE: ("Edit",),
    ToolName.UPDATE_SCRATCHPAD: ("Write", "Edit"),
    ToolName.RUN_COMMAND: ("Bash",),
}
TOOL_ORDER = ("Read", "Glob", "Grep", "Write", "Edit", "Bash")
_GIT_IN_PATTERN = re.compile(r"(?i)(^|[/{,])\.git($|[/},])")


class ToolPolicy:
    """Conveyor's confinement rules applied to Claude Code's tool calls (the PreToolUse hook's decisions)."""

    def __init__(
        self,
        workdir: Path | str,
        *,
        tools: Sequence[str],
        allowed_commands: Sequence[Sequence[str]] = (),
        command_timeout_s: float = 300.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.confinement = Confinement(self.workdir)
        self.roots = tuple(dict.fromkeys([str(self.confinement.root), str(Path(self.workdir).absolute())]))
        self.tools = frozenset(tools)
        self.allowed_commands = [list(prefix) for prefix in allowed_commands]
        self.command_timeout_s = command_timeout_s
        # Worktree-relative paths of every Write/Edit call allowed: the agent's own files, which the cleanup of the
        # sandbox's placeholder files never removes (claude_code_stubs.remove_stubs).
        self.written: set[str] = set()

    def check(self, tool: str, tool_input: Mapping[str, Any]) -> dict[str, Any]:
        """The input to run the call with (possibly rewritten), or RefusedError saying why it is refused."""
        if tool not in self.tools:
            raise RefusedError(f"tool {tool!r} is not available here; use one of {', '.join(sorted(self.tools))}")
        data = dict(tool_input)
        if tool == "Read":
            self._readable(data.get("file_path"), what="file_path")
        elif tool in ("Write", "Edit"):
            target = self.confinement.writable(self.relative(data.get("file_path"), what="file_path"), what="file_path")
            self.written.add(target.rel)
        elif tool == "Glob":
            self._pattern(data.get("pattern"), what="pattern")
            self._directory(data.get("path"))
        elif tool == "Grep":
            self._directory(data.get("path"), allow_file=True)
            if data.get("glob") is not None:
                self._pattern(data.get("glob"), what="glob")
        elif tool == "Bash":
            return self._bash(data)
        return data

    # -- paths ------------------------------------------------------------------------------------------------

    def relative(self, raw: object, *, what: str) -> str:
        """``raw`` relative to the worktree root (Claude Code sends absolute paths), or RefusedError."""
        if not isinstance(raw, str) or not raw.strip():
            raise RefusedError(f"{what} must be a non-empty string")
        if raw.startswith("~"):
            raise RefusedError(f"{what} {raw!r} points into a home directory, outside the worktree")
        if not raw.startswith("/"):
            return raw
        normal = posixpath.normpath(raw)
        for root in self.roots:
            rel = posixpath.relpath(normal, root)
            if rel != ".." and not rel.startswith("../"):
                return rel
        raise RefusedError(f"{what} {raw!r} is outside the worktree {self.roots[0]}")

    def _readable(self, raw: object, *, what: str) -> None:
        target = self.confinement.resolve(self.relative(raw, what=what), what=what)
        try:
            info = target.path.stat()
        except OSError:
            return  # a missing file: the tool itself says so
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            raise RefusedError(f"{what} {raw!r} is not a regular file (device, FIFO or socket)")

    def _directory(self, raw: object, *, allow_file: bool = False) -> None:
        if raw is None or raw == "":
            return  # the worktree root
        if allow_file:
            self._readable(raw, what="path")
        else:
            self.confinement.resolve(self.relative(raw, what="path"), what="path")

    @staticmethod
    def _pattern(raw: object, *, what: str) -> None:
        if not isinstance(raw, str) or not raw.strip():
            raise RefusedError(f"{what} must be a non-empty string")
        if raw.startswith(("/", "~")):
            raise RefusedError(f"{what} {raw!r} must be relative to the worktree (or pass path=)")
        if ".." in raw:
            raise RefusedError(f"{what} {raw!r} may lead out of the worktree ('..' is not allowed in patterns)")
        if _GIT_IN_PATTERN.search(raw):
            raise RefusedError(f"{what} {raw!r} reaches into .git, which is off limits")

    # -- commands ---------------------------------------------------------------------------------------------

    def _bash(self, data: dict[str, Any]) -> dict[str, Any]:
        command = data.get("command")
        if not isinstance(command, str) or not command.strip():
            raise RefusedError("command must be a non-empty string")
        if data.get("run_in_background"):
            raise RefusedError("background commands are not allowed; run the command in the foreground")
        try:
            argv = shlex.split(command, comments=False, posix=True)
        except ValueError as exc:
            raise RefusedError(f"the command cannot be split into arguments: {exc}") from None
        checked = check_argv(argv, allowed=self.allowed_commands, confinement=self.confinement)
        cap_ms = int(self.command_timeout_s * 1000)
        timeout = data.get("timeout")
        out: dict[str, Any] = {
            "command": shlex.join(checked),
            "timeout": min(int(timeout), cap_ms) if isinstance(timeout, int | float) and timeout > 0 else cap_ms,
        }
        if isinstance(data.get("description"), str):
            out["description"] = data["description"]
        return out


def claude_tools(request: AgentRequest, *, commands_allowed: bool) -> list[str]:
    """The Claude Code tools a request's Conveyor tools map to (Bash only when a command may run)."""
    wanted = {name for tool in request.tools for name in TOOL_MAP.get(tool, ())}
    if not commands_allowed:
        wanted.discard("Bash")
    return [name for name in TOOL_ORDER if name in wanted]
