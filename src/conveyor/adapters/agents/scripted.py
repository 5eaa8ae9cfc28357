"""The scripted backend: deterministic agent calls driven by a script file, for tests and the demo.

Every result says ``backend="scripted"`` and ``model="scripted"``, so logs and reports show that no model ran.

Script format (YAML, or JSON when the file ends in ``.json``)::

    version: 1
    entries:
      - role: implementer          # an AgentRole value
        ticket: DEMO-FEAT-001      # a ticket id, or "*" (the default) for any ticket and for calls without one
        stage: implementing        # optional: only calls from this stage
        attempt: 1                 # optional: only this attempt
        repeat_last: false         # optional: calls past the last step repeat it (else a SCRIPT error)
        steps:                     # the Nth call of this entry for one (role, ticket, stage) takes step N
          - write: {path: src/app.py, content: "print('hi')\\n"}      # or a list of them
            replace: {path: README.md, old: "# x", new: "# y"}       # exactly one occurrence of old
            delete: docs/old.md                                      # or a list of paths
            edits: [{write: {...}}, {replace: {...}}, {delete: ...}] # ordered, applied first
            message: "{ticket}: {title}"   # commit message (the default); {role} {stage} {attempt} too
            commit: true                   # commit the edits on the current branch (default)
            status: success                # success | failed | escalate
            notes: "done"
            output: {decision: approve}    # validated against request.output_schema
            text: "free text answer"
            usage: {input_tokens: 1200, output_tokens: 300, cache_read_tokens: 0, cache_write_tokens: 0}
            sleep_s: 0.5                   # through the injectable sleep
          - error_kind: overloaded         # inject a failure (status defaults to failed)
            error_detail: "529 from the stub"

Matching: among the entries whose role matches, whose ticket is the request's ticket or ``*``, and whose stage
and attempt (when given) match, the most specific wins (exact ticket, then stage, then attempt; ties: the
first in the file). Step counters are kept per (entry, role, ticket, stage), in memory, or in ``state_path``
(JSON, atomic) so that a resumed process goes on where a killed one stopped. The state file also remembers which
step each request (by replay key) got: a resumed process asked the very same request again gets the same step,
as a killed run's unrecorded call is made again on resume.

Edits are confined to ``request.workdir`` like the real tools: absolute paths, ``..``, ``.git`` and symlinks
pointing out are refused (a SCRIPT error). A step's edits are applied and committed even when the step also
injects a failure (work done, then the call failed); a refused edit leaves earlier edits of the step
uncommitted. A malformed script raises InputError naming the file and line.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.adapters.agents.call_log import Message
from conveyor.adapters.atomic import write_json, write_text
from conveyor.adapters.git_repo import DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME, GitRepo, GitRepoError
from conveyor.adapters.structured_text import load_json, load_yaml, parse_model, read_text
from conveyor.domain.agent import AgentRequest, AgentResult, AgentRole, ErrorKind, Usage, WorkerStatus, used_tokens_text
from conveyor.domain.errors import InputError
from conveyor.domain.models import ModelTable
from conveyor.ports import Sleep

BACKEND = "scripted"
MODEL = "scripted"
ANY_TICKET = "*"
DEFAULT_MESSAGE = "{ticket}: {title}"
_PLACEHOLDERS = ("ticket", "title", "role", "stage", "attempt")
KEPT_TRANSCRIPTS = 64  # transcripts nobody popped (no recording wrapper) are dropped oldest first


# --- the script model ------------------------------------------------------------------------------


class WriteEdit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    content: str


class ReplaceEdit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    old: str = Field(min_length=1)
    new: str


class Edit(BaseModel):
    """One edit of an ordered ``edits`` list: exactly one of write, replace, delete."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    write: WriteEdit | None = None
    replace: ReplaceEdit | None = None
    delete: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Edit:
        given = [name for name in ("write", "replace", "delete") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"an edit has exactly one of write, replace, delete (got {', '.join(given) or 'none'})")
        return self


class Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    edits: list[Edit] = Field(default_factory=list)
    write: WriteEdit | list[WriteEdit] | None = None
    replace: ReplaceEdit | list[ReplaceEdit] | None = None
    delete: str | list[str] | None = None
    message: str | None = Field(None, description='commit message; default "{ticket}: {title}"')
    commit: bool = True
    status: WorkerStatus | None = Field(None, description="default: success, or failed with an error_kind")
    notes: str = ""
    output: dict[str, Any] | None = None
    text: str = ""
    stop_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    sleep_s: float = Field(0.0, ge=0)
    error_kind: ErrorKind | None = None
    error_detail: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Step:
        if self.error_kind is not None and self.status is WorkerStatus.SUCCESS:
            raise ValueError("a step that injects an error_kind cannot have status success")
        return self

    def all_edits(self) -> list[Edit]:
        """``edits`` in order, then the ``write``, ``replace`` and ``delete`` shorthands."""
        out = list(self.edits)
        writes = self.write if isinstance(self.write, list) else [self.write] if self.write else []
        replaces = self.replace if isinstance(self.replace, list) else [self.replace] if self.replace else []
        deletes = self.delete if isinstance(self.delete, list) else [self.delete] if self.delete else []
        out += [Edit(write=w) for w in writes]
        out += [Edit(replace=r) for r in replaces]
        out += [Edit(delete=d) for d in deletes]
        return out

    def resolved_status(self) -> WorkerStatus:
        if self.status is not None:
            return self.status
        return WorkerStatus.FAILED if self.error_kind is not None else WorkerStatus.SUCCESS


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: AgentRole
    ticket: str = Field(ANY_TICKET, min_length=1)
    stage: str | None = None
    attempt: int | None = Field(None, ge=1)
    repeat_last: bool = False
    steps: list[Step] = Field(min_length=1)

    def matches(self, request: AgentRequest) -> bool:
        return (
            self.role is request.role
            and self.ticket in (ANY_TICKET, request.ticket_id)
            and (self.stage is None or self.stage == request.stage)
            and (self.attempt is None or self.attempt == request.attempt)
        )

    def specificity(self) -> tuple[bool, bool, bool]:
        return (self.ticket != ANY_TICKET, self.stage is not None, self.attempt is not None)


class Script(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(1, ge=1, le=1)
    description: str = ""
    entries: list[Entry] = Field(default_factory=list)


def load_script(path: Path, display: str | None = None) -> tuple[Script, list[int | None]]:
    """The script at ``path`` and the 1-based line of each entry; InputError (file and line) when malformed."""
    shown = display or str(path)
    text = read_text(path, shown)
    data = load_json(text, shown) if path.suffix.lower() == ".json" else load_yaml(text, shown)
    if data is None:
        raise InputError.single(shown, 1, "empty script: expected a mapping with `entries`")
    script = parse_model(Script, data, text, shown)
    lines: list[int | None] = [None] * len(script.entries)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    if isinstance(root, yaml.MappingNode):
        node = next((v for k, v in root.value if getattr(k, "value", None) == "entries"), None)
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value[: len(lines)]):
                lines[i] = item.start_mark.line + 1
    return script, lines


# --- edits ---------------------------------------------------------------------------------------------


class ScriptEditError(Exception):
    """A step's edit is refused or cannot be applied."""


def confined_path(workdir: Path, relative: str) -> Path:
    """``relative`` inside ``workdir``; refuses absolute paths, ``..``, ``.git`` and symlinks pointing out."""
    posix = PurePosixPath(relative)
    if not relative or "\\" in relative or "\0" in relative:
        raise ScriptEditError(f"refused path {relative!r}: empty or not a plain relative path")
    if posix.is_absolute() or relative.startswith("~"):
        raise ScriptEditError(f"refused path {relative!r}: absolute paths are outside the worktree")
    if ".." in posix.parts:
        raise ScriptEditError(f"refused path {relative!r}: '..' leaves the worktree")
    if posix.parts and posix.parts[0] == ".git":
        raise ScriptEditError(f"refused path {relative!r}: the .git directory is not editable")
    root = workdir.resolve()
    target = workdir / posix
    if not target.resolve().is_relative_to(root):
        raise ScriptEditError(f"refused path {relative!r}: it resolves outside the worktree (symlink)")
    return target


def apply_edit(workdir: Path, edit: Edit, *, again: bool = False) -> dict[str, Any]:
    """Apply one edit; returns a tool-call-like description for the transcript.

    ``again``: the step is answered a second time (a run killed after the first answer's edits, before its result
    was stored): a replace whose new text is there instead of the old one, or a delete of a file already gone, is
    that first answer's edit, already applied.
    """
    if edit.write is not None:
        target = confined_path(workdir, edit.write.path)
        if target.is_dir():
            raise ScriptEditError(f"cannot write {edit.write.path!r}: it is a directory")
        write_text(target, edit.write.content)
        return {"type": "tool_use", "name": "write_file", "input": {"path": edit.write.path}}
    if edit.replace is not None:
        target = confined_path(workdir, edit.replace.path)
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScriptEditError(f"cannot replace in {edit.replace.path!r}: {exc}") from None
        count = current.count(edit.replace.old)
        if again and count == 0 and edit.replace.new in current:
            return {"type": "tool_use", "name": "edit_file", "input": {"path": edit.replace.path}}
        if count != 1:
            raise ScriptEditError(
                f"cannot replace in {edit.replace.path!r}: the old text occurs {count} times (exactly 1 needed)"
            )
        write_text(target, current.replace(edit.replace.old, edit.replace.new))
        return {"type": "tool_use", "name": "edit_file", "input": {"path": edit.replace.path}}
    if edit.delete is None:  # Edit's validator guarantees exactly one of the three
        raise ScriptEditError("an edit has none of write, replace, delete")
    target = confined_path(workdir, edit.delete)
    if target.is_dir() and not target.is_symlink():
        raise ScriptEditError(f"cannot delete {edit.delete!r}: it is a directory")
    if not target.exists() and not target.is_symlink():
        if again:
            return {"type": "tool_use", "name": "delete_file", "input": {"path": edit.delete}}
        raise ScriptEditError(f"cannot delete {edit.delete!r}: no such file")
    target.unlink()
    return {"type": "tool_use", "name": "delete_file", "input": {"path": edit.delete}}


def ticket_title(request: AgentRequest) -> str:
    inputs = request.inputs
    for candidate in (inputs.get("title"), inputs.get("ticket_title")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    ticket = inputs.get("ticket")
    if isinstance(ticket, dict) and isinstance(ticket.get("title"), str) and ticket["title"].strip():
        return str(ticket["title"]).strip()
    return "scripted change"


def commit_message(template: str | None, request: AgentRequest) -> str:
    values = {
        "ticket": request.ticket_id or request.role.value,
        "title": ticket_title(request),
        "role": request.role.value,
        "stage": request.stage,
        "attempt": str(request.attempt),
    }
    message = template or DEFAULT_MESSAGE
    for name in _PLACEHOLDERS:
        message = message.replace("{" + name + "}", values[name])
    return message


# --- the backend ---------------------------------------------------------------------------------------


class ScriptedBackend:
    """An AgentBackend that plays a script (see the module docstring for the format)."""

    def __init__(
        self,
        script: Path | str | Script,
        *,
        repo_root: Path,
        state_path: Path | None = None,
        models: ModelTable | None = None,
        sleep: Sleep = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        author_name: str = DEFAULT_AUTHOR_NAME,
        author_email: str = DEFAULT_AUTHOR_EMAIL,
    ) -> None:
        self.repo_root = Path(repo_root)
        self.entry_lines: list[int | None]
        if isinstance(script, Script):
            self.script, self.entry_lines = script, [None] * len(script.entries)
            self.script_display = "<script>"
        else:
            path = Path(script)
            path = path if path.is_absolute() else self.repo_root / path
            self.script_display = self._display(path)
            self.script, self.entry_lines = load_script(path, self.script_display)
        self.state_path = state_path
        self.models = models or ModelTable()
        self.sleep = sleep
        self.monotonic = monotonic
        self.author_name, self.author_email = author_name, author_email
        self.calls = 0
        self._lock = threading.Lock()
        self._counters: dict[str, int] = self._load_counters()
        self._assigned: dict[str, int] = self._load_assigned()  # replay key → step index, for a resumed process
        self._earlier: dict[str, int] = dict(self._assigned)
        self._transcripts: dict[str, list[Message]] = {}

    @property
    def name(self) -> str:
        return BACKEND

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_root).as_posix()
        except ValueError:
            return str(path)

    # -- counters ---------------------------------------------------------------------------------------
    @staticmethod
    def counter_key(entry_index: int, request: AgentRequest) -> str:
        return f"{entry_index}/{request.role.value}/{request.ticket_id or '-'}/{request.stage}"

    def _load_counters(self) -> dict[str, int]:
        if self.state_path is None or not self.state_path.is_file():
            return {}
        text = read_text(self.state_path)
        data = load_json(text, str(self.state_path))
        counters = data.get("counters") if isinstance(data, dict) else None
        if not isinstance(counters, dict) or not all(isinstance(v, int) for v in counters.values()):
            raise InputError.single(str(self.state_path), 1, "expected {'counters': {key: int}}")
        return {str(k): int(v) for k, v in counters.items()}

    def _load_assigned(self) -> dict[str, int]:
        if self.state_path is None or not self.state_path.is_file():
            return {}
        data = load_json(read_text(self.state_path), str(self.state_path))
        assigned = data.get("assigned", {}) if isinstance(data, dict) else {}
        return {str(k): int(v) for k, v in assigned.items()} if isinstance(assigned, dict) else {}

    def _advance(self, key: str, request: AgentRequest | None = None) -> int:
        """The 0-based index of this call for ``key`` (and count it).

        A request that an earlier process already answered (same replay key, recorded in ``state_path``) gets the
        same step again instead of the next one: a run killed after the call but before its result was stored
        makes the call again on resume, and must get the answer it got the first time.
        """
        with self._lock:
            replay = request.replay_key() if request is not None else None
            if replay is not None and replay in self._earlier:
                index = self._earlier.pop(replay)
            else:
                index = self._counters.get(key, 0)
                self._counters[key] = index + 1
            if replay is not None:
                self._assigned[replay] = index
            self.calls += 1
            if self.state_path is not None:
                state = {"script": self.script_display, "counters": self._counters, "assigned": self._assigned}
                write_json(self.state_path, state)
            return index

    def calls_for(self, role: AgentRole, ticket_id: str | None, stage: str) -> int:
        """Calls made so far for (role, ticket, stage), over all entries."""
        suffix = f"/{role.value}/{ticket_id or '-'}/{stage}"
        with self._lock:
            return sum(n for key, n in self._counters.items() if key.endswith(suffix))

    # -- the port -----------------------------------------------------------------------------------------
    def pop_transcript(self, request: AgentRequest) -> list[Message] | None:
        with self._lock:
            return self._transcripts.pop(request.replay_key(), None)

    def _match(self, request: AgentRequest) -> tuple[int, Entry] | None:
        best: tuple[int, Entry] | None = None
        for index, entry in enumerate(self.script.entries):
            if entry.matches(request) and (best is None or entry.specificity() > best[1].specificity()):
                best = (index, entry)
        return best

    def _where(self, index: int) -> str:
        line = self.entry_lines[index] if index < len(self.entry_lines) else None
        return f"{self.script_display}:{line}" if line else f"{self.script_display} entry {index + 1}"

    def run(self, request: AgentRequest) -> AgentResult:
        started = self.monotonic()
        transcript: list[Message] = [{"role": "user", "content": json.dumps(request.inputs, sort_keys=True)}]
        call = f"{request.role.value} / {request.ticket_id or '-'} / {request.stage} / attempt {request.attempt}"
        found = self._match(request)
        if found is None:
            self._advance(f"-/{request.role.value}/{request.ticket_id or '-'}/{request.stage}")
            return self._failure(
                request, started, ErrorKind.SCRIPT, f"{self.script_display}: no script entry for {call}", transcript
            )
        index, entry = found
        again = request.replay_key() in self._earlier
        n = self._advance(self.counter_key(index, request), request)
        if n >= len(entry.steps) and not entry.repeat_last:
            detail = (
                f"{self._where(index)}: no step {n + 1} for {call}: the entry has {len(entry.steps)} step(s) "
                "(set repeat_last: true to repeat the last one)"
            )
            return self._failure(request, started, ErrorKind.SCRIPT, detail, transcript)
        step = entry.steps[min(n, len(entry.steps) - 1)]
        if step.sleep_s:
            self.sleep(step.sleep_s)

        content: list[dict[str, Any]] = []
        commit_sha: str | None = None
        edits = step.all_edits()
        if edits:
            if request.workdir is None:
                detail = f"{self._where(index)}: step {n + 1} edits files but the request has no workdir"
                return self._failure(request, started, ErrorKind.SCRIPT, detail, transcript)
            workdir = Path(request.workdir)
            try:
                content += [apply_edit(workdir, edit, again=again) for edit in edits]
                if step.commit:
                    commit_sha = GitRepo(workdir).commit_all(
                        commit_message(step.message, request), self.author_name, self.author_email
                    )
            except (ScriptEditError, GitRepoError) as exc:
                detail = f"{self._where(index)}: step {n + 1}: {exc}"
                return self._failure(request, started, ErrorKind.SCRIPT, detail, transcript)

        status = step.resolved_status()
        error_kind, error_detail = step.error_kind, step.error_detail
        if error_kind is not None and not error_detail:
            error_detail = f"injected by {self._where(index)} step {n + 1}"
        if error_kind is None and request.output_schema is not None:
            problem = self._schema_problem(request.output_schema, step.output, status)
            if problem:
                status, error_kind, error_detail = WorkerStatus.FAILED, ErrorKind.MALFORMED_OUTPUT, problem
        if step.text:
            content.append({"type": "text", "text": step.text})
        if step.output is not None:
            content.append({"type": "text", "text": json.dumps(step.output, sort_keys=True)})
        transcript.append({"role": "assistant", "content": content})
        self._keep(request, transcript)
        usage = step.usage
        cost = self.models.prices().cost_usd(
            request.tier,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_read_tokens=usage.cache_read_tokens,
        )
        return AgentResult(
            task_id=request.ticket_id or request.role.value,
            status=status,
            used=used_tokens_text(usage),
            commit_sha=commit_sha,
            notes=step.notes,
            # Only validated output is returned as ``output``; a failed one stays visible in the transcript.
            output=None if error_kind is ErrorKind.MALFORMED_OUTPUT else step.output,
            text=step.text,
            usage=usage,
            cost_usd=round(cost, 6),
            model=MODEL,
            backend=BACKEND,
            stop_reason=step.stop_reason or ("error" if error_kind else "end_turn"),
            error_kind=error_kind,
            error_detail=error_detail,
            duration_s=max(0.0, self.monotonic() - started),
        )

    @staticmethod
    def _schema_problem(schema: dict[str, Any], output: dict[str, Any] | None, status: WorkerStatus) -> str:
        try:
            validator = jsonschema.Draft202012Validator(schema)
            validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            return f"the request's output_schema is not a valid JSON Schema: {exc.message}"
        if output is None:
            return "the step gives no output but the request needs one" if status is WorkerStatus.SUCCESS else ""
        errors = sorted(validator.iter_errors(output), key=lambda e: list(e.path))
        details = "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:10])
        return f"output does not match the request's schema: {details}" if errors else ""

    def _keep(self, request: AgentRequest, transcript: list[Message]) -> None:
        with self._lock:
            self._transcripts[request.replay_key()] = transcript
            while len(self._transcripts) > KEPT_TRANSCRIPTS:
                del self._transcripts[next(iter(self._transcripts))]

    def _failure(
        self, request: AgentRequest, started: float, kind: ErrorKind, detail: str, transcript: list[Message]
    ) -> AgentResult:
        transcript.append({"role": "assistant", "content": [{"type": "text", "text": f"[{kind.value}] {detail}"}]})
        self._keep(request, transcript)
        return AgentResult(
            task_id=request.ticket_id or request.role.value,
            status=WorkerStatus.FAILED,
            notes=detail,
            model=MODEL,
            backend=BACKEND,
            stop_reason="error",
            error_kind=kind,
            error_detail=detail,
            duration_s=max(0.0, self.monotonic() - started),
        )
