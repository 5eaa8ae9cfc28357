"""The execution loop's preflight (issue 5 §0): is this repository ready for a run?

The target must be a git repository with a clean checkout on the build-spec's main branch; the build-spec,
TASKS.md (with run-state.json and run-queue.json) and the gate commands must be valid; the agent backend must
be able to answer (an API key, a scripted backend with its script, or deterministic mode, which is stated); a
budget cap is set, or a soft cap is derived from the open tickets' estimates and recorded; the lease is free.

:func:`preflight` never raises for a problem it can describe: it collects every problem, so a failed preflight
lists them all at once and the caller starts nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from conveyor.adapters.build_spec_file import BUILD_SPEC_PATH
from conveyor.adapters.git_repo import GitRepo, GitRepoError
from conveyor.adapters.lease import LEASE_DIR, read_lease
from conveyor.domain.backlog import Backlog
from conveyor.domain.budget import derive_soft_cap, mode_for, open_estimates_usd, percent_of_cap
from conveyor.domain.errors import InputError, Problem
from conveyor.domain.ticket import TicketKind
from conveyor.services.agents import backend_name, model_table
from conveyor.services.backlog_loader import RUN_QUEUE_PATH, RUN_STATE_PATH, TASKS_PATH, load_backlog
from conveyor.settings import Settings, load_settings

RUNS_DIR = "automations/runs"
# What a killed run may leave modified in the main checkout: tolerated when resuming that run.
TRACKING_PATHS = frozenset({TASKS_PATH, RUN_STATE_PATH, RUN_QUEUE_PATH})
_MAX_LISTED_PATHS = 20
_USD_DIGITS = 6


@dataclass(frozen=True)
class PreflightReport:
    problems: list[str] = field(default_factory=list)  # every blocking problem, each a full sentence
    notes: list[str] = field(default_factory=list)  # what the run should know: backend, budget, warnings
    backend: str = "deterministic"  # backend_name(settings), or "unknown" when the settings did not load
    cap_usd: float | None = None  # the cap in force: the explicit one or the derived soft cap
    cap_source: str = "none"  # "explicit" | "derived" | "none" (nothing to estimate)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok:
            lines = ["Preflight passed."]
        else:
            lines = [f"Preflight failed with {len(self.problems)} problem(s); nothing was started:"]
            lines += [f"  - {p}" for p in self.problems]
        if self.notes:
            lines.append("Notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)


def _input_problems(exc: InputError) -> tuple[list[str], list[str]]:
    """An InputError's errors (as problems) and warnings (as notes), each naming file and line."""
    errors = [str(p) for p in exc.problems if p.severity != "warning"]
    warnings = [str(p) for p in exc.problems if p.severity == "warning"]
    return errors or [str(exc)], warnings


def _is_tracking(path: str) -> bool:
    return path in TRACKING_PATHS or PurePosixPath(path).is_relative_to(RUNS_DIR)


def dirty_paths(repo: Path) -> list[str]:
    """Paths with staged, unstaged or untracked (non-ignored) changes, as ``git status`` names them."""
    done = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain=v1", "-z", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise GitRepoError(f"{repo}: git status failed ({done.returncode}): {done.stderr.strip()}")
    entries = done.stdout.split("\0")
    paths: list[str] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        paths.append(path)
        if "R" in status or "C" in status:  # a rename or copy: the source path follows
            paths.append(entries[i])
            i += 1
    return sorted(set(paths))


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:_MAX_LISTED_PATHS])
    more = len(paths) - _MAX_LISTED_PATHS
    return f"{shown} and {more} more" if more > 0 else shown


def _check_git(repo: Path, main_branch: str | None, resume: bool) -> list[str]:
    try:
        checkout = GitRepo(repo)
    except GitRepoError:
        return [f"git: {repo} is not a git repository (the top of a git checkout); run `git init` there first."]
    problems: list[str] = []
    try:
        checkout.head_sha()
    except GitRepoError:
        return [f"git: {repo} has no commit yet; commit the project once before a run."]
    try:
        operation = checkout.operation_in_progress()
        if operation is not None:
            problems.append(f"git: a {operation} is in progress in {repo}; finish it or run `git {operation} --abort`.")
        dirty = [
            p
            for p in dirty_paths(repo)
            if not PurePosixPath(p).is_relative_to(LEASE_DIR) and not (resume and _is_tracking(p))
        ]
        if dirty:
            problems.append(
                f"git: the checkout of {repo} is not clean ({len(dirty)} changed or untracked path(s): "
                f"{_listed(dirty)}); commit or stash them before a run."
            )
        if main_branch is not None:
            branch = checkout.branch_of()
            if branch is None:
                problems.append(
                    f"git: HEAD is detached in {repo}; check out {main_branch} (git.main_branch in "
                    f"{BUILD_SPEC_PATH}) with `git switch {main_branch}`."
                )
            elif branch != main_branch:
                problems.append(
                    f"git: the checkout is on branch {branch}, not on {main_branch} (git.main_branch in "
                    f"{BUILD_SPEC_PATH}); run `git switch {main_branch}`."
                )
    except GitRepoError as exc:
        problems.append(f"git: {exc}")
    return problems


def _check_backlog(backlog: Backlog) -> list[str]:
    problems: list[str] = []
    if len(backlog) == 0:
        problems.append(f"backlog: {TASKS_PATH} holds no ticket; run `conveyor bootstrap` or add rows first.")
    for tid, missing in backlog.unknown_dependencies().items():
        problems.append(f"backlog: {TASKS_PATH}: {tid} depends on unknown ticket(s) {', '.join(missing)}.")
    cycle = backlog.find_cycle()
    if cycle is not None:
        problems.append(f"backlog: {TASKS_PATH}: the dependencies form a cycle: {' -> '.join(cycle)}.")
    return problems


def _check_gates(repo: Path, settings: Settings) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    for gate in settings.quality_gates:
        command = gate.argv[0]
        if shutil.which(command) is None and not (repo / command).is_file():
            problems.append(
                f"quality gate {gate.name!r} ({BUILD_SPEC_PATH}): its command {command!r} is not on PATH "
                "and is not a file in the repository."
            )
    notes = [] if settings.quality_gates else [f"gates: {BUILD_SPEC_PATH} sets no quality gate; QA runs none."]
    return problems, notes


def _check_backend(repo: Path, settings: Settings, open_changes: int | None) -> tuple[str, list[str], list[str]]:
    name = backend_name(settings)
    spec = settings.agents
    if name == "deterministic":
        why = " (agents.backend is auto and ANTHROPIC_API_KEY is not set)" if spec.backend == "auto" else ""
        which = f"the {open_changes} open change ticket(s)" if open_changes else "change tickets"
        return (
            name,
            [],
            [
                f"agents: deterministic mode (no LLM){why}: {which} cannot be implemented "
                "(except improvement-loop tickets that a mechanical fixer implements)."
            ],
        )
    if name == "scripted":
        if not spec.script:
            return name, ["agents: agents.backend is scripted but agents.script names no script file."], []
        script = Path(spec.script) if Path(spec.script).is_absolute() else repo / spec.script
        if not script.is_file():
            return name, [f"agents: the scripted backend's script {spec.script} (agents.script) does not exist."], []
        return name, [], [f"agents: scripted backend named explicitly, script {spec.script}."]
    if name in {"anthropic", "claude-code"}:
        if settings.anthropic_api_key is None:
            return name, [f"agents: agents.backend is {name} but ANTHROPIC_API_KEY is not set."], []
        return name, [], [f"agents: {name} backend (ANTHROPIC_API_KEY is set)."]
    return name, [f"agents: agent backend {name!r} is not available in this build."], []


def _budget(settings: Settings, backlog: Backlog | None) -> tuple[float | None, str, list[str]]:
    explicit = settings.budget.cap_usd
    open_usd: float | None = None
    count = 0
    if backlog is not None:
        estimates = open_estimates_usd(backlog, model_table(settings.agents).prices())
        open_usd, count = round(sum(estimates.values()), _USD_DIGITS), len(estimates)
    if explicit is not None:
        note = f"budget: cap ${explicit:.2f} set explicitly"
        if open_usd is not None:
            pct = percent_of_cap(open_usd, explicit)
            mode = mode_for(open_usd, explicit)
            note += f"; {count} open ticket(s) estimated at ${open_usd:.2f} ({pct:.1f} % of the cap: {mode} mode)"
        return explicit, "explicit", [f"{note}."]
    if open_usd is None:
        return None, "none", ["budget: no cap set, and no soft cap derived without a valid backlog."]
    if count == 0 or open_usd <= 0:
        return None, "none", ["budget: no cap set and no open ticket to estimate; no soft cap derived."]
    factor = settings.budget.soft_cap_factor
    cap = derive_soft_cap(open_usd, factor)
    return (
        cap,
        "derived",
        [
            f"budget: no cap set; soft cap ${cap:.2f} derived from the estimates of {count} open ticket(s) "
            f"(${open_usd:.2f} x factor {factor:g})."
        ],
    )


def _check_lease(repo: Path, own_run_id: str | None) -> tuple[list[str], list[str]]:
    holder = read_lease(repo)
    if holder is None or holder.run_id == own_run_id:
        return [], []
    if holder.is_live():
        return [f"lease: {repo} is leased by {holder.describe()}; wait for it to finish or stop it."], []
    return [], [f"lease: the stale lease of {holder.describe()} (holder dead or expired) will be reclaimed."]


def _open_changes(backlog: Backlog) -> int:
    return sum(1 for t in backlog if t.kind is TicketKind.CHANGE and not t.state.is_terminal)


def _warnings(problems: Iterable[Problem]) -> list[str]:
    return [str(p) for p in problems]


def preflight(
    repo: Path,
    settings: Settings | None = None,
    *,
    resume: bool = False,
    own_run_id: str | None = None,
    check_lease: bool = True,
) -> PreflightReport:
    """Check everything a run needs and report every problem (module docstring); never starts anything.

    ``settings`` are loaded from ``repo`` when not given. ``resume`` tolerates Conveyor's own tracking files
    (TASKS.md, run-state.json, run-queue.json, automations/runs/**) left modified by a killed run;
    ``own_run_id`` is the run whose lease does not count as held (the run being resumed or started).
    """
    if not repo.is_dir():
        return PreflightReport(problems=[f"repository: {repo} does not exist or is not a directory."])
    problems: list[str] = []
    notes: list[str] = []

    if settings is None:
        try:
            settings = load_settings(repo)
        except InputError as exc:
            errors, warns = _input_problems(exc)
            problems += [f"build-spec: {e}" for e in errors]
            notes += warns
            notes.append("build-spec: the gate, backend, branch and budget checks need a valid build-spec.")
    if settings is not None and not (repo / BUILD_SPEC_PATH).exists():
        notes.append(f"build-spec: {BUILD_SPEC_PATH} is absent; the defaults apply.")

    problems += _check_git(repo, settings.git.main_branch if settings is not None else None, resume)

    backlog: Backlog | None = None
    try:
        loaded = load_backlog(repo)
        backlog = loaded.backlog
        notes += _warnings(loaded.warnings)
        problems += _check_backlog(backlog)
    except InputError as exc:
        errors, warns = _input_problems(exc)
        problems += [f"backlog: {e}" for e in errors]
        notes += warns
    except ValueError as exc:  # the Backlog itself refuses (duplicate ids)
        problems.append(f"backlog: {TASKS_PATH}: {exc}.")

    backend, cap_usd, cap_source = "unknown", None, "none"
    if settings is not None:
        gate_problems, gate_notes = _check_gates(repo, settings)
        problems += gate_problems
        notes += gate_notes
        backend, backend_problems, backend_notes = _check_backend(
            repo, settings, _open_changes(backlog) if backlog is not None else None
        )
        problems += backend_problems
        notes += backend_notes
        cap_usd, cap_source, budget_notes = _budget(settings, backlog)
        notes += budget_notes

    if check_lease:
        lease_problems, lease_notes = _check_lease(repo, own_run_id)
        problems += lease_problems
        notes += lease_notes

    return PreflightReport(problems=problems, notes=notes, backend=backend, cap_usd=cap_usd, cap_source=cap_source)
