"""automations/build-spec.yaml: the run configuration of a target repository.

Seed 001's kickstart fields map onto it (task prefix, milestone, quality gates, budget cap, workers).
Every field carries a description: ``conveyor init`` writes them as comments next to the defaults, so the
scaffold documents every option. Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EscalationPolicy(StrEnum):
    PAUSE = "pause"
    STOP = "stop"
    SKIP = "skip"
    DEFER = "defer"


class MilestoneSpec(_Spec):
    name: str = Field("0.0.1", description="Human-readable milestone name; archives are named after it.")
    version: str = Field("0.0.1", description="Semantic version of the release: 0.0.x before the MVP.")
    mvp: bool = Field(False, description="True only for the MVP milestone, the one release that may be 0.1.0.")

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not re.fullmatch(r"\d+\.\d+\.\d+", value):
            raise ValueError(f"version {value!r} is not MAJOR.MINOR.PATCH")
        return value


class BudgetSpec(_Spec):
    cap_usd: float | None = Field(
        None, gt=0, description="Run budget cap in USD. Empty: a soft cap is derived from the estimates."
    )
    soft_cap_factor: float = Field(
        1.5, gt=1, description="Derived soft cap = projected cost of the backlog x this factor."
    )
    ticket_cap_usd: float | None = Field(None, gt=0, description="Cap per ticket in USD (empty: none).")
    role_caps_usd: dict[str, float] = Field(
        default_factory=dict, description="Caps per agent role in USD, e.g. {reviewer: 2.0} (empty: none)."
    )


class GateCommand(_Spec):
    name: str = Field(description="Short name shown in reports, e.g. lint.")
    argv: list[str] = Field(min_length=1, description="Command as an argument list; never run through a shell.")
    timeout_s: float = Field(600, gt=0, description="Seconds before the gate is killed and fails.")


class GitSpec(_Spec):
    main_branch: str = Field("main", description="Trunk branch: tickets branch from it and merge back to it.")
    remote: str = Field("origin", description="Remote to sync with and push to, when it exists.")
    bot_name: str = Field("Conveyor", description="Author name of Conveyor's commits (passed per command).")
    bot_email: str = Field("conveyor@localhost", description="Author email of Conveyor's commits.")


class GitHubSpec(_Spec):
    owner: str | None = Field(None, description="Repository owner (empty: read from the remote's URL).")
    name: str | None = Field(None, description="Repository name (empty: read from the remote's URL).")
    api_url: str = Field("https://api.github.com", description="REST API root (GitHub Enterprise: its /api/v3).")
    label: str = Field("conveyor", description="Label put on Conveyor's pull requests.")
    token_block: str | None = Field(
        None, description="Prefect Secret block holding the token (empty: CONVEYOR_GITHUB_TOKEN or GITHUB_TOKEN)."
    )
    checks_timeout_s: float = Field(3600, gt=0, description="Seconds to wait for a PR's checks to finish.")
    poll_interval_s: float = Field(15, gt=0, description="Seconds between polls of a PR's checks.")


class ApprovalSpec(_Spec):
    release: bool = Field(False, description="Pause for a person's approval before tagging a release.")
    merge: bool = Field(False, description="Pause for approval before merging tickets marked approval_required.")


class ModelOverride(_Spec):
    model: str | None = Field(None, description="Anthropic model id for this tier (empty: the default).")
    input_usd_per_mtok: float | None = Field(None, ge=0, description="Input price per million tokens.")
    output_usd_per_mtok: float | None = Field(None, ge=0, description="Output price per million tokens.")


class AgentsSpec(_Spec):
    backend: str = Field(
        "auto",
        description="auto (anthropic with ANTHROPIC_API_KEY, else deterministic) | anthropic | scripted | "
        "claude-code | deterministic.",
    )
    script: str | None = Field(None, description="Script file of the scripted backend (tests and the demo).")
    sandbox: str = Field("auto", description="Where agent commands run: auto (bwrap if it works) | bwrap | none.")
    allowed_commands: list[list[str]] = Field(
        default_factory=list,
        description="Argv prefixes the implementer may run, e.g. [[python, -m, pytest], [ruff, check]].",
    )
    command_timeout_s: float = Field(300, gt=0, description="Seconds before an agent's command is killed.")
    role_tiers: dict[str, str] = Field(
        default_factory=dict, description="Model tier per judgment role, e.g. {reviewer: complex} (default: normal)."
    )
    models: dict[str, ModelOverride] = Field(
        default_factory=dict,
        description="Per tier (easy, normal, complex): model id and prices that override the table.",
    )
    keep_replay_traces: bool = Field(True, description="Write full traces to automations/memory/replay/ (gitignored).")

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        allowed = {"auto", "anthropic", "scripted", "claude-code", "deterministic"}
        if value not in allowed:
            raise ValueError(f"backend {value!r} is not one of: {', '.join(sorted(allowed))}")
        return value

    @field_validator("sandbox")
    @classmethod
    def _sandbox(cls, value: str) -> str:
        if value not in {"auto", "bwrap", "none"}:
            raise ValueError(f"sandbox {value!r} is not one of: auto, bwrap, none")
        return value

    @field_validator("role_tiers", "models")
    @classmethod
    def _tiers(cls, value: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        if info.field_name == "models":
            keys = set(value)
            bad = keys - {"easy", "normal", "complex"}
            if bad:
                raise ValueError(f"unknown tier(s) {sorted(bad)}: use easy, normal, complex")
        else:
            wrong = sorted(str(v) for v in value.values() if v not in {"easy", "normal", "complex"})
            if wrong:
                raise ValueError(f"unknown tier(s) {wrong}: use easy, normal, complex")
        return value


class ImprovementSpec(_Spec):
    """The improvement loop (issue 7 §1, seed 002): scanners, ticket caps and the no-LLM review's limits."""

    scanners: list[str] = Field(
        default_factory=lambda: ["ruff", "ruff-format", "mypy", "bandit", "pytest", "coverage"],
        description="Deterministic scanners to run, by name.",
    )
    commands: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per scanner, the command that runs its tool instead of `python -m <tool>` (an argument list; "
        "the scanner adds its own output options).",
    )
    paths: list[str] = Field(default_factory=lambda: ["."], description="What ruff, mypy and bandit scan.")
    coverage_threshold: float = Field(
        80.0, ge=0, le=100, description="A file whose line coverage is under this percentage is a finding."
    )
    max_tickets_per_loop: int = Field(5, ge=1, le=50, description="Tickets one loop files and runs (seed 002: 5).")
    max_open_tickets: int = Field(
        10, ge=1, description="Cap on open auto-created tickets: a loop files none while this many are open."
    )
    loop_budget_usd: float | None = Field(None, gt=0, description="Budget cap of one loop in USD (empty: none).")
    max_diff_files: int = Field(20, ge=1, description="No-LLM review: most files a mechanical fix may change.")
    max_diff_lines: int = Field(400, ge=1, description="No-LLM review: most lines (added + removed) it may change.")
    timeout_s: float = Field(900, gt=0, description="Seconds before a scanner's tool is killed.")

    @field_validator("scanners")
    @classmethod
    def _scanners(cls, value: list[str]) -> list[str]:
        known = {"ruff", "ruff-format", "mypy", "bandit", "pytest", "coverage"}
        bad = sorted(set(value) - known)
        if bad:
            raise ValueError(f"unknown scanner(s) {bad}: use {', '.join(sorted(known))}")
        return value


class BuildSpec(_Spec):
    project: str | None = Field(None, description="Project name used in reports; empty means the folder name.")
    task_prefix: str = Field("CV", description="Ticket id prefix: ids are PREFIX-CAT-NNN, e.g. CV-SEC-001.")
    milestone: MilestoneSpec = Field(default_factory=MilestoneSpec, description="The active milestone.")
    workers: int = Field(2, ge=1, le=32, description="Tickets delivered in parallel (seed 001 default: 2).")
    max_iterations: int = Field(
        3, ge=1, le=20, description="Review/QA round trips before a ticket is blocked and escalated."
    )
    on_escalation: EscalationPolicy = Field(
        EscalationPolicy.PAUSE, description="What a blocked ticket does in scheduled runs: pause|stop|skip|defer."
    )
    budget: BudgetSpec = Field(default_factory=BudgetSpec, description="Budget guardrail (seed 001 Step 3b).")
    quality_gates: list[GateCommand] = Field(
        default_factory=list, description="QA gates the loop runs itself in each ticket's worktree, in order."
    )
    ops: list[GateCommand] = Field(
        default_factory=list,
        description="Ops step: commands run on main after each merge (smoke test, deploy script); a failure "
        "reverts the merge and files a remediation ticket.",
    )
    on_decline: str = Field(
        "replan",
        description="Three completions in a row, each with a lower reward than the one before: replan (the "
        "planner re-plans the remaining tickets) or halt (stop for a person).",
    )
    git: GitSpec = Field(default_factory=GitSpec, description="Git model.")
    forge: str = Field("local", description="Where merges happen: local (default) or github.")
    github: GitHubSpec = Field(default_factory=GitHubSpec, description="The github forge (forge: github).")
    approvals: ApprovalSpec = Field(default_factory=ApprovalSpec, description="Human approvals.")
    agents: AgentsSpec = Field(default_factory=AgentsSpec, description="Agent backends, sandbox and models.")
    improvement: ImprovementSpec = Field(default_factory=ImprovementSpec, description="The improvement loop.")

    @field_validator("task_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9]*", value):
            raise ValueError(f"task_prefix {value!r} must be upper-case letters and digits, e.g. MS")
        return value

    @field_validator("on_decline")
    @classmethod
    def _decline(cls, value: str) -> str:
        if value not in {"replan", "halt"}:
            raise ValueError(f"on_decline {value!r} is not one of: replan, halt")
        return value

    @field_validator("forge")
    @classmethod
    def _forge(cls, value: str) -> str:
        if value not in {"local", "github"}:
            raise ValueError(f"forge {value!r} is not one of: local, github")
        return value
