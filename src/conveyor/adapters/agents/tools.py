"""The implementer's tools: Anthropic tool definitions and a dispatcher that enforces the rules.

Whatever the model asks, :class:`ToolDispatcher` refuses unknown tools and arguments that do not match the
schema; confines every path to the worktree (:mod:`~conveyor.adapters.agents.tools_paths`); runs only
allow-listed argv lists, never through a shell, in the sandbox with a timeout
(:mod:`~conveyor.adapters.agents.tools_commands`); caps every output; and never raises: a refusal or failure
is a tool_result with ``is_error`` and a message the model can act on. Each call is recorded in ``calls``
with a fingerprint, so the backend can tell a stuck loop.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema

from conveyor.adapters.agents.tools_commands import check_argv, describe_allowed
from conveyor.adapters.agents.tools_paths import Confinement, RefusedError, Resolved, changed_between
from conveyor.domain.agent import ToolName, WorkerStatus
from conveyor.ports import Sandbox

MAX_WRITE_CHARS = 1_000_000
MAX_SCRATCHPAD_CHARS = 50_000
MAX_READ_BYTES = 20_000_000
MAX_SEARCH_FILE_BYTES = 2_000_000
MAX_LIST_ENTRIES = 2_000
SEARCH_TIMEOUT_S = 20.0
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class ToolOutcome:
    """What one tool call gave back: the tool_result content, and what the loop needs to know."""

    content: str
    is_error: bool = False
    changed: list[str] = field(default_factory=list)  # paths (relative to the worktree) this call changed
    progress: bool = False  # the call changed a file or read something not seen before
    finish: dict[str, Any] | None = None  # the finish tool's validated fields


@dataclass(frozen=True)
class ToolCall:
    """One dispatched call, as recorded in :attr:`ToolDispatcher.calls`."""

    name: str
    arguments: str  # canonical JSON
    fingerprint: str
    is_error: bool
    summary: str
    changed: tuple[str, ...]
    progress: bool


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def fingerprint(name: str, arguments: object) -> str:
    """A hash of the tool name and its arguments (canonical JSON): equal calls have equal fingerprints."""
    return hashlib.sha256(f"{name}\n{canonical_json(arguments)}".encode()).hexdigest()[:16]


def cap_text(text: str, cap: int, *, hint: str = "") -> str:
    """``text`` cut to about ``cap`` characters (the head kept), with a note saying so."""
    if len(text) <= cap:
        return text
    note = f"\n[... cut at {cap} of {len(text)} characters{'; ' + hint if hint else ''}]"
    return text[: max(cap - len(note), 0)] + note


def _is_binary(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _schema(properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_PATH = {"type": "string", "description": "Path relative to the worktree root."}

# A search runs in a child process, so a pathological regular expression cannot hang Conveyor.
_SEARCH_WORKER = r"""
import json, re, sys
request = json.load(sys.stdin)
rx = re.compile(request["pattern"])
limit = request["max_results"]
found = []
for rel, full in request["files"]:
    try:
        with open(full, "rb") as handle:
            data = handle.read()
    except OSError:
        continue
    if b"\0" in data[:8192]:
        continue
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if rx.search(line):
            found.append([rel, number, line[:300]])
            if len(found) > limit:
                json.dump(found, sys.stdout)
                sys.exit(0)
json.dump(found, sys.stdout)
"""


class ToolDispatcher:
    """Runs the implementer's tool calls inside one worktree (module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        sandbox: Sandbox,
        allowed_commands: Sequence[Sequence[str]],
        scratchpad: Path,
        command_timeout_s: float,
        output_cap: int = 16_000,
        read_cap: int = 100_000,
    ) -> None:
        self.confinement = Confinement(workdir)
        self.workdir = self.confinement.root
        self.sandbox = sandbox
        self.allowed_commands = [list(prefix) for prefix in allowed_commands if prefix]
        self.command_timeout_s = command_timeout_s
        self.output_cap = output_cap
        self.read_cap = read_cap
        pad = scratchpad if scratchpad.is_absolute() else self.workdir / scratchpad
        pad_real = os.path.realpath(pad)
        if not self.confinement.inside(pad_real) or pad_real == str(self.workdir):
            raise ValueError(f"the scratchpad {scratchpad} is not inside the worktree {self.workdir}")
        self.scratchpad = os.path.relpath(pad_real, self.workdir)
        self.confinement.lexical(self.scratchpad)  # not in .git
        self.calls: list[ToolCall] = []
        self._seen: set[str] = set()
        self._definitions = self._build_definitions()
        self._validators = {d["name"]: jsonschema.Draft202012Validator(d["input_schema"]) for d in self._definitions}

    # -- definitions -----------------------------------------------------------------------------------------

    def definitions(self) -> list[dict[str, Any]]:
        """Anthropic tool definitions (name, description, input_schema) of the eight tools, in ToolName order."""
        return json.loads(json.dumps(self._definitions))  # type: ignore[no-any-return]

    def _build_definitions(self) -> list[dict[str, Any]]:
        allowed = describe_allowed(self.allowed_commands)
        return [
            {
                "name": ToolName.LIST_FILES.value,
                "description": "List the files under a directory of the worktree, recursively, one path per line "
                "(relative to the worktree root). .git, virtualenvs, node_modules and caches are skipped.",
                "input_schema": _schema(
                    {
                        "path": {**_PATH, "description": "Directory to list (default: the root).", "default": "."},
                        "pattern": {
                            "type": "string",
                            "description": "Optional glob. Without '/' it matches file names ('*.py'); with '/' "
                            "the relative path ('src/*/models.py'; '*' also matches '/').",
                        },
                    },
                    [],
                ),
            },
            {
                "name": ToolName.READ_FILE.value,
                "description": "Read a text file. Lines come numbered ('    12\\t...'); the numbers are not part of "
                f"the file. Output stops near {self.read_cap} characters: read on with start_line.",
                "input_schema": _schema(
                    {
                        "path": _PATH,
                        "start_line": {"type": "integer", "minimum": 1, "description": "First line (1-based)."},
                        "end_line": {"type": "integer", "minimum": 1, "description": "Last line, inclusive."},
                    },
                    ["path"],
                ),
            },
            {
                "name": ToolName.SEARCH.value,
                "description": "Search file contents line by line with a Python regular expression. "
                "Returns 'path:line: text' per matching line.",
                "input_schema": _schema(
                    {
                        "pattern": {"type": "string", "minLength": 1, "description": "Python regular expression."},
                        "path": {**_PATH, "description": "File or directory to search (default: the root)."},
                        "max_results": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    },
                    ["pattern"],
                ),
            },
            {
                "name": ToolName.WRITE_FILE.value,
                "description": "Create a file, or replace a file's whole content (parent directories are created). "
                "For a small change to an existing file use edit_file.",
                "input_schema": _schema({"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
            },
            {
                "name": ToolName.EDIT_FILE.value,
                "description": "Replace the exact text `old` with `new` in a file. `old` must match the file exactly "
                "(whitespace and indentation, no line numbers) and occur exactly once: include surrounding lines "
                "to make it unique.",
                "input_schema": _schema(
                    {
                        "path": _PATH,
                        "old": {"type": "string", "minLength": 1, "description": "Text to replace."},
                        "new": {"type": "string", "description": "Replacement text."},
                    },
                    ["path", "old", "new"],
                ),
            },
            {
                "name": ToolName.RUN_COMMAND.value,
                "description": "Run a command in the worktree root; returns the exit code and the output (stdout "
                "and stderr together; the tail is kept when long). argv is a list of arguments and is never run "
                "through a shell: no pipes, redirection, globbing, variables or '&&'. Allowed command prefixes: "
                f"{allowed}. Timeout: {self.command_timeout_s:g} s. No network.",
                "input_schema": _schema(
                    {
                        "argv": {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "description": "The program and its arguments, e.g. ['python', '-m', 'pytest', '-q'].",
                        }
                    },
                    ["argv"],
                ),
            },
            {
                "name": ToolName.UPDATE_SCRATCHPAD.value,
                "description": f"Your working notes for this ticket ({self.scratchpad}): plan, findings, progress, "
                "open problems. They survive a restart or a condensed conversation. mode 'append' (default) adds "
                "to the end; 'replace' rewrites them.",
                "input_schema": _schema(
                    {
                        "content": {"type": "string"},
                        "mode": {"type": "string", "enum": ["append", "replace"], "default": "append"},
                    },
                    ["content"],
                ),
            },
            {
                "name": ToolName.FINISH.value,
                "description": "End the task and report. status: 'success' (the change is complete and the gates "
                "pass), 'failed' (you could not do it; say why), 'escalate' (a person must decide). Conveyor "
                "commits your changes; success without a changed file counts as failed.",
                "input_schema": _schema(
                    {
                        "status": {"type": "string", "enum": [s.value for s in WorkerStatus]},
                        "notes": {
                            "type": "string",
                            "maxLength": 4000,
                            "description": "Brief: what you did, what you checked, what is left.",
                        },
                        "commit_message": {
                            "type": "string",
                            "maxLength": 2000,
                            "description": "One-line summary (optionally a blank line and a body).",
                        },
                    },
                    ["status", "notes"],
                ),
            },
        ]

    # -- dispatch --------------------------------------------------------------------------------------------

    def dispatch(self, name: str, arguments: object) -> ToolOutcome:
        """Run one tool call; never raises. Refusals and failures come back with ``is_error``."""
        try:
            outcome = self._dispatch(name, arguments)
        except RefusedError as exc:
            outcome = ToolOutcome(f"refused: {exc}", is_error=True)
        except Exception as exc:  # a tool must never crash the loop; the model sees what went wrong
            outcome = ToolOutcome(f"error: {type(exc).__name__}: {exc}", is_error=True)
        self.calls.append(
            ToolCall(
                name=str(name),
                arguments=canonical_json(arguments),
                fingerprint=fingerprint(str(name), arguments),
                is_error=outcome.is_error,
                summary=outcome.content.split("\n", 1)[0][:200],
                changed=tuple(outcome.changed),
                progress=outcome.progress,
            )
        )
        return outcome

    def fingerprint(self, name: str, arguments: object) -> str:
        return fingerprint(name, arguments)

    def _dispatch(self, name: str, arguments: object) -> ToolOutcome:
        validator = self._validators.get(name) if isinstance(name, str) else None
        if validator is None:
            known = ", ".join(tool.value for tool in ToolName)
            raise RefusedError(f"unknown tool {name!r}; the tools are: {known}")
        if not isinstance(arguments, dict):
            raise RefusedError(f"the arguments of {name} must be a JSON object")
        errors = sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.path])
        if errors:
            details = "; ".join(
                f"{'/'.join(map(str, e.path)) or 'arguments'}: {cap_text(e.message, 200)}" for e in errors[:5]
            )
            raise RefusedError(f"invalid arguments for {name}: {details}")
        handler = getattr(self, f"_tool_{name}")
        outcome: ToolOutcome = handler(**arguments)
        return outcome

    def _observed(self, name: str, content: str, *, normalise: bool = False) -> bool:
        """True when this output was not seen before (for progress)."""
        key_text = _NUMBERS.sub("N", content) if normalise else content
        key = hashlib.sha256(f"{name}\n{key_text}".encode()).hexdigest()
        new = key not in self._seen
        self._seen.add(key)
        return new

    # -- the tools ---------------------------------------------------------------------------------------------

    def _tool_list_files(self, path: str = ".", pattern: str | None = None) -> ToolOutcome:
        start = self.confinement.existing(path)[0]
        entries: list[str] = []
        total = 0
        for item in self.confinement.walk_files(start):
            name = item.rel if pattern and "/" in pattern else PurePosixPath(item.rel).name
            if pattern and not fnmatch.fnmatchcase(name, pattern):
                continue
            total += 1
            if len(entries) < MAX_LIST_ENTRIES:
                entries.append(item.rel)
        where = "the worktree" if start.rel == "." else start.rel
        head = f"{total} file(s) under {where}" + (f" matching {pattern!r}" if pattern else "")
        if total > len(entries):
            head += f" (first {len(entries)} shown; narrow with path or pattern)"
        content = cap_text("\n".join([head + ":", *entries]), self.output_cap, hint="narrow with path or pattern")
        return ToolOutcome(content, progress=self._observed("list", content))

    def _tool_read_file(self, path: str, start_line: int | None = None, end_line: int | None = None) -> ToolOutcome:
        target = self.confinement.file(path)
        data = self.confinement.read_bytes(target, limit=MAX_READ_BYTES)
        if _is_binary(data):
            return ToolOutcome(f"{target.rel} is a binary file ({len(data)} bytes); not shown as text", is_error=True)
        lines = data.decode("utf-8").splitlines()
        first = start_line or 1
        last = min(end_line or len(lines), len(lines))
        if not lines:
            return ToolOutcome(f"{target.rel} is empty", progress=self._observed("read", target.rel + "\n"))
        if first > len(lines):
            return ToolOutcome(f"{target.rel} has only {len(lines)} lines", is_error=True)
        if last < first:
            return ToolOutcome(f"end_line {end_line} is before start_line {first}", is_error=True)
        out: list[str] = []
        size = 0
        shown = first - 1
        for number in range(first, last + 1):
            line = f"{number:>6}\t{lines[number - 1]}"
            if out and size + len(line) + 1 > self.read_cap:
                break
            out.append(line[: self.read_cap])
            size += len(line) + 1
            shown = number
        header = f"{target.rel} (lines {first}-{shown} of {len(lines)})"
        if shown < last:
            header += f" [cut: call read_file with start_line={shown + 1} to read on]"
        content = "\n".join([header, *out])
        return ToolOutcome(content, progress=self._observed("read", content))

    def _tool_search(self, pattern: str, path: str = ".", max_results: int = 50) -> ToolOutcome:
        try:
            re.compile(pattern)
        except re.error as exc:
            return ToolOutcome(f"invalid regular expression {pattern!r}: {exc}", is_error=True)
        start = self.confinement.existing(path)[0]
        files = [
            [item.rel, str(item.path)]
            for item in self.confinement.walk_files(start)
            if item.path.stat().st_size <= MAX_SEARCH_FILE_BYTES
        ]
        request = json.dumps({"pattern": pattern, "max_results": max_results, "files": files})
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _SEARCH_WORKER],
                input=request,
                capture_output=True,
                text=True,
                timeout=SEARCH_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ToolOutcome(
                f"search timed out after {SEARCH_TIMEOUT_S:g} s: simplify the pattern or narrow the path",
                is_error=True,
            )
        if done.returncode != 0:
            return ToolOutcome(f"search failed: {done.stderr.strip()[-500:]}", is_error=True)
        found: list[list[Any]] = json.loads(done.stdout or "[]")
        more = len(found) > max_results
        lines = [f"{rel}:{number}: {text}" for rel, number, text in found[:max_results]]
        head = f"{len(lines)} match(es) for {pattern!r}" + (" (more not shown; narrow the search)" if more else "")
        content = cap_text("\n".join([head + (":" if lines else ""), *lines]), self.output_cap, hint="narrow it")
        return ToolOutcome(content, progress=self._observed("search", content))

    def _write(self, target: Resolved, text: str) -> ToolOutcome:
        changed = self.confinement.write_bytes(target, text.encode("utf-8"))
        if not changed:
            return ToolOutcome(f"{target.rel} unchanged (it already had this content)")
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return ToolOutcome(f"wrote {target.rel} ({lines} lines)", changed=[target.rel], progress=True)

    def _tool_write_file(self, path: str, content: str) -> ToolOutcome:
        if len(content) > MAX_WRITE_CHARS:
            raise RefusedError(f"content is too long ({len(content)} characters; at most {MAX_WRITE_CHARS})")
        return self._write(self.confinement.writable(path), content)

    def _tool_edit_file(self, path: str, old: str, new: str) -> ToolOutcome:
        target = self.confinement.file(path)
        data = self.confinement.read_bytes(target, limit=MAX_READ_BYTES)
        if _is_binary(data):
            raise RefusedError(f"{target.rel} is a binary file; it cannot be edited as text")
        text = data.decode("utf-8")
        count = text.count(old)
        if count == 0:
            raise RefusedError(
                f"`old` was not found in {target.rel}; it must match exactly (whitespace, indentation, "
                "no line numbers): read the file again"
            )
        if count > 1:
            raise RefusedError(
                f"`old` occurs {count} times in {target.rel}; it must occur exactly once: add surrounding lines"
            )
        updated = text.replace(old, new, 1)
        if len(updated) > MAX_WRITE_CHARS:
            raise RefusedError(f"the edited file would be too long (at most {MAX_WRITE_CHARS} characters)")
        outcome = self._write(self.confinement.writable(target.rel), updated)
        if outcome.changed:
            line = text[: text.index(old)].count("\n") + 1
            return ToolOutcome(f"edited {target.rel} at line {line}", changed=outcome.changed, progress=True)
        return outcome

    def _tool_run_command(self, argv: list[str]) -> ToolOutcome:
        tokens = check_argv(argv, allowed=self.allowed_commands, confinement=self.confinement)
        before = self.confinement.snapshot()
        result = self.sandbox.run(
            tokens, cwd=self.workdir, timeout_s=self.command_timeout_s, output_cap=self.output_cap
        )
        changed = changed_between(before, self.confinement.snapshot())
        if result.error is not None:
            status = f"could not start: {result.error}"
        elif result.timed_out:
            status = f"timed out after {self.command_timeout_s:g} s (killed)"
        else:
            status = f"exit code {result.exit_code}"
        lines = [f"$ {shlex.join(tokens)}", f"{status} [{result.duration_s:.1f} s, sandbox {result.sandbox}]"]
        if result.truncated:
            lines.append("(output truncated: the tail is shown)")
        if changed:
            lines.append("files changed: " + ", ".join(changed[:50]) + (" ..." if len(changed) > 50 else ""))
        content = "\n".join(lines) + "\n" + result.output
        is_error = result.error is not None or result.timed_out
        progress = bool(changed) or (not is_error and self._observed("run", content, normalise=True))
        return ToolOutcome(content, is_error=is_error, changed=changed, progress=progress)

    def _tool_update_scratchpad(self, content: str, mode: str = "append") -> ToolOutcome:
        target = self.confinement.writable(self.scratchpad)
        current = ""
        if mode == "append" and target.path.is_file():
            current = self.confinement.read_bytes(target, limit=MAX_READ_BYTES).decode("utf-8", errors="replace")
            if current and not current.endswith("\n"):
                current += "\n"
        text = current + content if mode == "append" else content
        if text and not text.endswith("\n"):
            text += "\n"
        if len(text) > MAX_SCRATCHPAD_CHARS:
            raise RefusedError(
                f"the scratchpad would be {len(text)} characters (at most {MAX_SCRATCHPAD_CHARS}): "
                "replace it with a condensed version"
            )
        outcome = self._write(target, text)
        return ToolOutcome(
            f"scratchpad {target.rel} {'updated' if outcome.changed else 'unchanged'} ({len(text)} characters)",
            changed=outcome.changed,
            progress=outcome.progress,
        )

    def _tool_finish(self, status: str, notes: str, commit_message: str | None = None) -> ToolOutcome:
        fields: dict[str, Any] = {"status": status, "notes": notes.strip()}
        if commit_message is not None and commit_message.strip():
            fields["commit_message"] = commit_message.strip()
        return ToolOutcome(f"finish recorded: {status}", progress=True, finish=fields)
