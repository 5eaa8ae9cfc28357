"""What the judgment-role programs share: the program base class, prompt versions, program state files and
the runner with its repair round.

A role is a :class:`RoleProgram` (a ``dspy.Module`` around one ``dspy.Predict`` of a typed signature whose
single output field is a pydantic model from :mod:`conveyor.domain.roles`) plus a ``run(...)`` function in
its module. Every ``run`` goes through :func:`run_role`, which:

1. loads the role's prompt (the repository's ``automations/prompts/agents/<role>.prompt.md`` or the packaged
   default) and makes it the signature's instructions;
2. loads learned program state from ``automations/memory/programs/<role>.json`` when the repository has one
   and no program was passed in;
3. computes ``prompt_version`` = short sha256 of (prompt text, program state JSON, program class version) and
   binds it, with run / ticket / stage / attempt / tier, to a :class:`ConveyorLM` over the caller's backend,
   so it is recorded on every AgentRequest;
4. calls the program under ``dspy.context(lm=bound_lm, adapter=...)`` (ChatAdapter without its JSON
   fallback by default, so one program call is exactly one LM call) and validates the output with pydantic;
5. on a parse or validation failure makes ONE repair round: the same program is called again with an extra
   input field, ``previous_answer_problem``, holding the validation error and the rejected answer; if that
   fails too, raises :class:`RoleOutputError` (error kind ``malformed_output``). Backend errors raise
   :class:`AgentCallError` at once (no repair: retries belong to the backend's SDK).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import dspy  # type: ignore[import-untyped]
import pydantic
from dspy.utils.exceptions import AdapterParseError  # type: ignore[import-untyped]

from conveyor.adapters.agents.dspy_lm import ConveyorLM
from conveyor.adapters.agents.prompts import default_prompt, load_prompt
from conveyor.adapters.atomic import write_json
from conveyor.domain.agent import AgentResult, AgentRole, ContextItem, Limits, Usage
from conveyor.domain.errors import InputError
from conveyor.domain.roles import RoleOutputError
from conveyor.domain.ticket import ModelTier, Ticket
from conveyor.ports import AgentBackend

OutputT = TypeVar("OutputT", bound=pydantic.BaseModel)
ProgramT = TypeVar("ProgramT", bound="RoleProgram")

REPAIR_FIELD = "previous_answer_problem"
PROGRAM_STATE_DIR = Path("automations/memory/programs")
STATE_RECORD = "conveyor"
STATE_FORMAT = "conveyor.program-state/1"
VERSION_LENGTH = 12
MAX_PROBLEM_CHARS = 4000
MAX_PREVIOUS_ANSWER_CHARS = 6000


class RoleProgram(dspy.Module):  # type: ignore[misc]
    """One judgment role as a DSPy program. Subclasses set the class attributes below.

    ``VERSION`` is the program's code version: bump it when ``forward`` or the signature's fields change
    meaning. The output model's JSON schema is part of :meth:`class_version` automatically, so a changed
    output type changes every prompt version (and refuses old saved state) without a manual bump.
    """

    ROLE: ClassVar[AgentRole]
    VERSION: ClassVar[str] = "1"
    SIGNATURE: ClassVar[Any]  # a dspy.Signature subclass
    OUTPUT_FIELD: ClassVar[str]
    OUTPUT_TYPE: ClassVar[type[pydantic.BaseModel]]
    DEFAULT_TIER: ClassVar[ModelTier] = ModelTier.NORMAL
    DEFAULT_STAGE: ClassVar[str]

    def __init__(self, instructions: str | None = None) -> None:
        super().__init__()
        text = instructions if instructions is not None else default_prompt(self.ROLE).text
        self.predict = dspy.Predict(self.SIGNATURE.with_instructions(text))

    @property
    def instructions(self) -> str:
        text: str = self.predict.signature.instructions
        return text

    def set_instructions(self, text: str) -> None:
        self.predict.signature = self.predict.signature.with_instructions(text)

    def forward(self, repair_note: str | None = None, **inputs: Any) -> Any:
        if repair_note is None:
            return self.predict(**inputs)
        signature = self.predict.signature.append(
            REPAIR_FIELD,
            dspy.InputField(desc="Why your previous answer was rejected. Fix exactly this in the new answer."),
            type_=str,
        )
        return self.predict(signature=signature, **inputs, **{REPAIR_FIELD: repair_note})

    @classmethod
    def class_version(cls) -> str:
        schema = json.dumps(cls.OUTPUT_TYPE.model_json_schema(), sort_keys=True)
        digest = hashlib.sha256(schema.encode()).hexdigest()[:VERSION_LENGTH]
        return f"{cls.__module__}.{cls.__qualname__}:{cls.VERSION}:{digest}"


def prompt_version(program: RoleProgram) -> str:
    """Short sha256 of the prompt text (the instructions), the program state JSON and the class version."""
    state = json.dumps(program.dump_state(), sort_keys=True, default=str, ensure_ascii=False)
    payload = "\x1f".join((program.instructions, state, program.class_version()))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:VERSION_LENGTH]


def state_path(repo_root: Path, role: AgentRole) -> Path:
    """Where a repository keeps a role's learned program state."""
    return repo_root / PROGRAM_STATE_DIR / f"{role.value}.json"


def save_state(program: RoleProgram, path: Path) -> str:
    """Save the program's state as JSON (DSPy's ``save(..., save_program=False)``) with a ``conveyor`` record
    of role, program class version and prompt version; written atomically. Returns the prompt version."""
    path = Path(path)
    if path.suffix != ".json":
        raise ValueError(f"program state is saved as JSON: {path} must end in .json")
    version = prompt_version(program)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.dspy.json")
    try:
        program.save(str(scratch), save_program=False)
        state = json.loads(scratch.read_text(encoding="utf-8"))
    finally:
        scratch.unlink(missing_ok=True)
    state[STATE_RECORD] = {
        "format": STATE_FORMAT,
        "role": program.ROLE.value,
        "program": program.class_version(),
        "prompt_version": version,
    }
    write_json(path, state)
    return version


def load_state(program: RoleProgram, path: Path) -> str:
    """Load state saved by :func:`save_state` into ``program``; returns the recorded prompt version.

    A file of another role or of another program class version is refused (InputError naming the file):
    its demos were made for a different signature. Learn again or delete the file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.single(str(path), None, f"cannot read program state: {exc}") from None
    record = data.get(STATE_RECORD) if isinstance(data, dict) else None
    if not isinstance(record, dict) or record.get("format") != STATE_FORMAT:
        raise InputError.single(str(path), None, "not a Conveyor program state (no 'conveyor' record)")
    if record.get("role") != program.ROLE.value:
        raise InputError.single(str(path), None, f"state of role {record.get('role')!r}, not {program.ROLE.value!r}")
    if record.get("program") != program.class_version():
        raise InputError.single(
            str(path),
            None,
            f"state saved by program {record.get('program')!r}; this is {program.class_version()!r}: "
            "learn it again or delete the file",
        )
    program.load(str(path))
    return str(record["prompt_version"])


@dataclass(frozen=True)
class RoleCall:
    """Who is asking, and through which backend: the metadata of every AgentRequest of one role call.

    ``stage`` and ``tier`` default to the role's own (see each role module); ``repo_root`` selects the
    repository's prompt override and learned program state; ``adapter`` is a DSPy adapter (default:
    ``dspy.ChatAdapter(use_json_adapter_fallback=False)``).
    """

    backend: AgentBackend
    run_id: str
    ticket_id: str | None = None
    stage: str | None = None
    attempt: int = 1
    tier: ModelTier | None = None
    base_commit: str | None = None
    repo_root: Path | None = None
    limits: Limits | None = None
    context: tuple[ContextItem, ...] = ()
    adapter: Any = None


@dataclass(frozen=True)
class RoleOutcome(Generic[OutputT]):
    """A role's validated output and what it took to get it."""

    role: AgentRole
    output: OutputT
    prompt_version: str
    prompt_source: str  # "package" or "repository"
    calls: int  # AgentRequests made: 1, or 2 after a repair round (0 when no call was needed)
    repaired: bool
    usage: Usage
    cost_usd: float
    last_result: AgentResult | None


def run_role(
    program_cls: type[ProgramT],
    call: RoleCall,
    inputs: Mapping[str, Any],
    output_type: type[OutputT],
    *,
    program: ProgramT | None = None,
) -> RoleOutcome[OutputT]:
    """Run one role program through ``call.backend`` (see the module docstring for the steps)."""
    if program_cls.OUTPUT_TYPE is not output_type:
        raise TypeError(
            f"{program_cls.__name__} returns {program_cls.OUTPUT_TYPE.__name__}, not {output_type.__name__}"
        )
    role = program_cls.ROLE
    prompt = load_prompt(role, call.repo_root)
    if program is not None:
        prog = program.deepcopy()
    else:
        prog = program_cls(prompt.text)
        if call.repo_root is not None and state_path(call.repo_root, role).is_file():
            load_state(prog, state_path(call.repo_root, role))
    prog.set_instructions(prompt.text)
    version = prompt_version(prog)
    lm = ConveyorLM(call.backend).bind(
        role=role,
        run_id=call.run_id,
        ticket_id=call.ticket_id,
        stage=call.stage or program_cls.DEFAULT_STAGE,
        attempt=call.attempt,
        tier=call.tier or program_cls.DEFAULT_TIER,
        prompt_version=version,
        base_commit=call.base_commit,
        context=call.context,
        limits=call.limits or Limits(),
        output_field=program_cls.OUTPUT_FIELD,
    )
    adapter = call.adapter if call.adapter is not None else dspy.ChatAdapter(use_json_adapter_fallback=False)
    problem = ""
    note: str | None = None
    for round_ in range(2):
        try:
            with dspy.context(lm=lm, adapter=adapter, trace=None):
                prediction = prog(repair_note=note, **inputs)
            output = validate_output(output_type, prediction[program_cls.OUTPUT_FIELD])
        except AdapterParseError as exc:
            problem = describe_parse_error(exc)
            note = repair_note(problem, exc.lm_response)
            continue
        except pydantic.ValidationError as exc:
            problem = describe_validation_error(exc)
            note = repair_note(problem, lm.last_result.text if lm.last_result else None)
            continue
        return RoleOutcome(
            role=role,
            output=output,
            prompt_version=version,
            prompt_source=prompt.source,
            calls=lm.calls,
            repaired=round_ > 0,
            usage=lm.usage,
            cost_usd=lm.cost_usd,
            last_result=lm.last_result,
        )
    raise RoleOutputError(role, problem, last=lm.last_result, task_id=call.ticket_id or role.value, calls=lm.calls)


def validate_output(output_type: type[OutputT], value: Any) -> OutputT:
    """Validate ``value`` (what the adapter parsed) as ``output_type``, re-running every validator."""
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="python")
    return output_type.model_validate(value)


def describe_parse_error(exc: Any) -> str:
    """What was wrong with the answer, without DSPy's echo of the whole response."""
    text = str(exc)
    head = text.split("Adapter ", 1)[0].strip()
    if head:
        return _clip(head, MAX_PROBLEM_CHARS)
    expected = list(getattr(exc.signature, "output_fields", {}))
    parsed = list(exc.parsed_result or {}) if isinstance(exc.parsed_result, dict) else []
    missing = [name for name in expected if name not in parsed]
    return (
        f"the answer must contain the output field(s) {', '.join(missing) or ', '.join(expected)} "
        f"in the required format; found {', '.join(parsed) or 'none'}"
    )


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    return _clip(str(exc), MAX_PROBLEM_CHARS)


def repair_note(problem: str, previous_answer: str | None) -> str:
    note = (
        f"Your previous answer could not be used: {problem}\n"
        "Answer again with every output field, in the required format, fixing exactly this problem."
    )
    if previous_answer:
        note += f"\n\nYour previous answer was:\n{_clip(previous_answer, MAX_PREVIOUS_ANSWER_CHARS)}"
    return note


# -- input rendering shared by the roles ---------------------------------------------------------------------


def clip_head(text: str, limit: int) -> str:
    """The first ``limit`` characters, and a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters left out ...]"


def clip_tail(text: str, limit: int) -> str:
    """The last ``limit`` characters (where a log's error usually is), and a marker."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} earlier characters left out ...]\n{text[-limit:]}"


_clip = clip_head


def ticket_text(ticket: Ticket) -> str:
    """A ticket as the roles read it."""
    lines = [f"{ticket.id}: {ticket.title}"]
    if ticket.task_type is not None:
        lines.append(f"type: {ticket.task_type.value}")
    if ticket.severity is not None:
        lines.append(f"severity: {ticket.severity.value}")
    if ticket.source is not None:
        lines.append(f"location: {ticket.source}")
    if ticket.touch_set:
        lines.append(f"expected files: {', '.join(ticket.touch_set)}")
    if ticket.description:
        lines += ["", ticket.description.strip()]
    if ticket.acceptance_criteria:
        lines += ["", "Acceptance criteria:", *(f"- {item}" for item in ticket.acceptance_criteria)]
    return "\n".join(lines)
